use std::time::{Duration, Instant};

use async_graphql::parser::parse_query;

use super::*;

/// The query graphql-js 16.15 `getIntrospectionQuery()` returns (what GraphiQL, Apollo's
/// tooling and code generators send).
const INTROSPECTION: &str =
    include_str!("../../tests/fixtures/introspection_query_graphql_js_16.graphql");

fn check(limits: &DocumentLimits, query: &str) -> Result<(), LimitExceeded> {
    limits.check_text(query)?;
    let doc = parse_query(query).expect("the test document parses");
    limits.check_document(&doc)
}

fn nested_list(depth: usize) -> String {
    format!(
        "{{ tasks(filter: {{ tags: {{ any: {}\"x\"{} }} }}) {{ totalCount }} }}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// `fragment F0 on Query { me { id } }`, then each `Fn` spreads `Fn-1` twice.
fn doubling_fragments(levels: usize) -> String {
    let mut doc = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ me {{ id }} }}\n");
    for n in 1..=levels {
        doc.push_str(&format!(
            "fragment F{n} on Query {{ ...F{m} ...F{m} }}\n",
            m = n - 1
        ));
    }
    doc
}

#[test]
fn the_standard_introspection_query_passes_the_default_limits() {
    assert_eq!(check(&DocumentLimits::default(), INTROSPECTION), Ok(()));
}

#[test]
fn a_deep_query_outside_introspection_is_refused_at_the_depth_limit() {
    let limits = DocumentLimits::default();
    let deep = format!(
        "{{ {} id {} }}",
        "task(id: \"x\") { nextOccurrence { ".repeat(7),
        "} } ".repeat(7)
    );
    let err = check(&limits, &deep).unwrap_err();
    assert_eq!(err, LimitExceeded::Depth { found: 15, max: 12 });
    assert_eq!(err.flag(), Some("MAX_QUERY_DEPTH"));
}

#[test]
fn introspection_has_its_own_depth_limit() {
    let limits = DocumentLimits {
        max_introspection_depth: 5,
        ..DocumentLimits::default()
    };
    let err = check(&limits, INTROSPECTION).unwrap_err();
    assert!(
        matches!(err, LimitExceeded::IntrospectionDepth { max: 5, found } if found > 12),
        "{err:?}"
    );
}

#[test]
fn input_nested_two_thousand_deep_is_refused_before_parsing() {
    let query = nested_list(2_000);
    let err = DocumentLimits::default().check_text(&query).unwrap_err();
    assert_eq!(err, LimitExceeded::Nesting { found: 65, max: 64 });
    // Parsing it would overflow the stack; the guard never lets it reach the parser.
}

#[test]
fn nesting_at_the_limit_is_accepted_and_parses() {
    let limits = DocumentLimits::default();
    // Four brackets of the query around the list: `{ tasks( filter: { tags: { any:`.
    let query = nested_list(limits.max_nesting - 4);
    assert_eq!(limits.check_text(&query), Ok(()));
    assert!(parse_query(&query).is_ok());
    let too_deep = nested_list(limits.max_nesting - 3);
    assert!(limits.check_text(&too_deep).is_err());
}

#[test]
fn brackets_inside_strings_block_strings_and_comments_do_not_count() {
    let limits = DocumentLimits {
        max_nesting: 3,
        ..DocumentLimits::default()
    };
    let query = r#"{ a(x: "[[[[[[ \" [[[[") # {{{{{{{
      b(y: """ [[[[[[ \""" ((((( """) { c } }"#;
    assert_eq!(limits.check_text(query), Ok(()));
}

#[test]
fn doubling_fragments_are_measured_in_linear_time_and_refused() {
    let limits = DocumentLimits::default();
    let query = doubling_fragments(60);
    let started = Instant::now();
    let err = check(&limits, &query).unwrap_err();
    assert!(
        matches!(err, LimitExceeded::Fields { max: 2_000, .. }),
        "{err:?}"
    );
    // 2^60 expanded fields, measured by visiting each fragment once.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_fragment_that_spreads_itself_is_refused() {
    let query = "query { ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A }";
    let err = check(&DocumentLimits::default(), query).unwrap_err();
    assert!(matches!(err, LimitExceeded::FragmentCycle(_)), "{err:?}");
}

#[test]
fn root_fields_are_counted_through_fragments() {
    let limits = DocumentLimits::default();
    let fields: String = (0..11).map(|i| format!("p{i}: me {{ id }} ")).collect();
    let query = format!("query {{ ...R ...R }} fragment R on Query {{ {fields} }}");
    let err = check(&limits, &query).unwrap_err();
    assert_eq!(err, LimitExceeded::RootFields { found: 22, max: 20 });
    let ok: String = (0..20).map(|i| format!("p{i}: me {{ id }} ")).collect();
    assert_eq!(check(&limits, &format!("{{ {ok} }}")), Ok(()));
}

#[test]
fn aliases_are_counted_at_every_level() {
    let limits = DocumentLimits::default();
    let inner: String = (0..51).map(|i| format!("a{i}: id ")).collect();
    let err = check(&limits, &format!("{{ me {{ {inner} }} }}")).unwrap_err();
    assert_eq!(err, LimitExceeded::Aliases { found: 51, max: 50 });
}

#[test]
fn variables_nested_past_the_limit_are_refused() {
    let limits = DocumentLimits {
        max_nesting: 10,
        ..DocumentLimits::default()
    };
    let mut value = serde_json::json!("x");
    for _ in 0..11 {
        value = serde_json::json!([value]);
    }
    let variables = Variables::from_json(serde_json::json!({ "v": value }));
    let err = limits.check_variables(&variables).unwrap_err();
    assert!(
        matches!(err, LimitExceeded::VariableNesting { max: 10, .. }),
        "{err:?}"
    );
    let flat = Variables::from_json(serde_json::json!({ "v": [["x"]] }));
    assert_eq!(limits.check_variables(&flat), Ok(()));
}

#[test]
fn a_subscription_larger_than_its_byte_limit_is_refused_and_a_query_is_not() {
    let limits = DocumentLimits::default();
    let names: String = (0..3_000).map(|i| format!("\"t{i}\",")).collect();
    let subscription = format!(
        "subscription {{ taskChanged(filter: {{ tags: {{ any: [{names}] }} }}) {{ kind }} }}"
    );
    let doc = parse_query(&subscription).unwrap();
    assert!(subscribes(&doc));
    let err = limits
        .check_subscription_size(subscription.len())
        .unwrap_err();
    assert!(
        matches!(err, LimitExceeded::SubscriptionSize { max: 16_384, .. }),
        "{err:?}"
    );
    let query = subscription.replacen("subscription", "query", 1);
    assert!(!subscribes(&parse_query(&query).unwrap()));
}

/// A small schema with the guard (and the selection-order extension after it, as in the
/// gateway), keeping its parsed documents in the returned cache.
fn guarded(
    limits: DocumentLimits,
) -> (
    async_graphql::Schema<Echo, async_graphql::EmptyMutation, async_graphql::EmptySubscription>,
    Arc<ParsedDocuments>,
) {
    let parsed = Arc::new(ParsedDocuments::default());
    let schema = async_graphql::Schema::build(
        Echo,
        async_graphql::EmptyMutation,
        async_graphql::EmptySubscription,
    )
    .extension(DocumentGuard::new(limits, Arc::clone(&parsed)))
    .extension(crate::selection_order::SelectionOrder)
    .finish();
    (schema, parsed)
}

struct Echo;

#[async_graphql::Object]
impl Echo {
    async fn echo(
        &self,
        value: async_graphql::Json<serde_json::Value>,
    ) -> async_graphql::Json<serde_json::Value> {
        value
    }

    async fn nested(&self) -> Echo {
        Echo
    }
}

fn request(query: &str, value: serde_json::Value) -> async_graphql::Request {
    async_graphql::Request::new(query)
        .variables(Variables::from_json(serde_json::json!({ "v": value })))
}

#[tokio::test]
async fn a_document_is_parsed_once_and_answers_every_request_with_its_own_variables() {
    let (schema, parsed) = guarded(DocumentLimits::default());
    let query = "query Q($v: JSON!) { b: echo(value: $v) a: nested { echo(value: $v) } }";
    for i in 0..3 {
        let response = schema.execute(request(query, serde_json::json!(i))).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        // In selection order, from the kept document too (read from the engine's value:
        // `serde_json::Value` would sort the keys).
        let async_graphql::Value::Object(map) = &response.data else {
            panic!("no data: {:?}", response.data);
        };
        assert_eq!(
            map.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        let data = response.data.into_json().unwrap();
        assert_eq!(data, serde_json::json!({ "b": i, "a": { "echo": i } }));
    }
    assert_eq!(parsed.len(), 1);
}

#[tokio::test]
async fn variables_are_checked_on_every_request_of_a_kept_document() {
    let limits = DocumentLimits {
        max_nesting: 10,
        ..DocumentLimits::default()
    };
    let (schema, parsed) = guarded(limits);
    let query = "query Q($v: JSON!) { echo(value: $v) }";
    let flat = schema.execute(request(query, serde_json::json!([1]))).await;
    assert!(flat.errors.is_empty(), "{:?}", flat.errors);
    assert_eq!(parsed.len(), 1);
    let mut deep = serde_json::json!(1);
    for _ in 0..20 {
        deep = serde_json::json!([deep]);
    }
    let refused = schema.execute(request(query, deep)).await;
    assert_eq!(refused.errors.len(), 1, "{:?}", refused.errors);
    assert!(refused.data == async_graphql::Value::Null);
    assert!(
        refused.errors[0].message.starts_with("the variables nest"),
        "{}",
        refused.errors[0].message
    );
}

#[tokio::test]
async fn a_refused_document_is_refused_every_time_and_never_kept() {
    let limits = DocumentLimits {
        max_depth: 3,
        ..DocumentLimits::default()
    };
    let (schema, parsed) = guarded(limits);
    let deep = "{ nested { nested { nested { nested { echo(value: 1) } } } } }";
    for _ in 0..2 {
        let response = schema.execute(deep).await;
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
        assert!(
            response.errors[0].message.contains("MAX_QUERY_DEPTH"),
            "{}",
            response.errors[0].message
        );
    }
    assert!(parsed.is_empty());
    // One that does not parse is not kept either, and says why each time.
    for _ in 0..2 {
        let response = schema.execute("{ echo(value: ").await;
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    }
    assert!(parsed.is_empty());
}

#[tokio::test]
async fn the_kept_documents_are_bounded_in_number_and_size() {
    let (schema, parsed) = guarded(DocumentLimits::default());
    for i in 0..PARSED_DOCUMENTS + 10 {
        let response = schema
            .execute(format!("{{ e{i}: echo(value: {i}) }}"))
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    assert_eq!(parsed.len(), PARSED_DOCUMENTS);
    let (schema, parsed) = guarded(DocumentLimits::default());
    let long = format!(
        "{{ echo(value: \"{}\") }}",
        "x".repeat(PARSED_DOCUMENT_MAX_BYTES)
    );
    let response = schema.execute(long.as_str()).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert!(parsed.is_empty());
}
