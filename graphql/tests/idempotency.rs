//! `Idempotency-Key` on mutations, through the schema on both databases (the key in the
//! request's `extensions`, as the WebSocket carries it); the HTTP header is covered in
//! `http.rs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use graphql::auth::AuthUser;
use graphql::schema::{Clock, RequestMeta, SchemaLimits, TaskstreamSchema, build_schema};
use serde_json::{Value, json};

const CREATE: &str = "mutation C($t: String!) { createTask(input: { title: $t }) { id title } }";

fn schema(t: &support::TestDb, limits: SchemaLimits) -> TaskstreamSchema {
    build_schema(
        t.db.clone(),
        Clock::System,
        &limits,
        graphql::live::LiveHub::new(),
    )
}

/// Runs `query` as alice with `variables` and, when given, an idempotency key.
async fn send(
    t: &support::TestDb,
    schema: &TaskstreamSchema,
    query: &str,
    variables: Value,
    key: Option<&str>,
) -> async_graphql::Response {
    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables));
    if let Some(key) = key {
        request.extensions.insert(
            "idempotencyKey".to_owned(),
            async_graphql::Value::String(key.to_owned()),
        );
    }
    let request = graphql::schema::prepare_request(
        request,
        &t.db,
        RequestMeta {
            user: AuthUser { id: "alice".into() },
            request_id: None,
        },
    );
    graphql::schema::execute(schema, request).await
}

fn code(response: &async_graphql::Response) -> String {
    response.errors[0]
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .map(|v| v.to_string().trim_matches('"').to_owned())
        .unwrap_or_default()
}

on_both_databases!(
    a_retry_with_the_same_key_returns_the_first_result_and_writes_nothing,
    |t| {
        // Arrange
        let app = support::TestApp::on(t);
        let schema = schema(t, SchemaLimits::default());
        let first = send(t, &schema, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        let outbox_after_first = app.count("outbox").await;

        // Act
        let retry = send(t, &schema, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;

        // Assert
        assert_eq!(retry.data, first.data);
        assert_eq!(
            retry.http_headers.get("idempotent-replayed").unwrap(),
            "true"
        );
        assert_eq!(app.count("tasks").await, 1);
        assert_eq!(app.count("outbox").await, outbox_after_first);
        let other_key = send(t, &schema, CREATE, json!({ "t": "Pay rent" }), Some("k-2")).await;
        assert!(other_key.errors.is_empty());
        assert_eq!(
            app.count("tasks").await,
            2,
            "another key is another request"
        );
    }
);

on_both_databases!(the_same_key_with_a_different_request_is_a_conflict, |t| {
    // Arrange
    let app = support::TestApp::on(t);
    let schema = schema(t, SchemaLimits::default());
    send(t, &schema, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;

    // Act
    let other = send(t, &schema, CREATE, json!({ "t": "Pay tax" }), Some("k-1")).await;

    // Assert
    assert_eq!(code(&other), "CONFLICT");
    assert!(other.errors[0].message.contains("different request"));
    assert_eq!(app.count("tasks").await, 1);
});

on_both_databases!(keys_are_per_user, |t| {
    // Arrange
    let app = support::TestApp::on(t);
    let schema = schema(t, SchemaLimits::default());
    send(t, &schema, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;

    // Act: bob uses the same key for the same request.
    let mut request = async_graphql::Request::new(CREATE).variables(
        async_graphql::Variables::from_json(json!({ "t": "Pay rent" })),
    );
    request.extensions.insert(
        "idempotencyKey".to_owned(),
        async_graphql::Value::String("k-1".into()),
    );
    let request = graphql::schema::prepare_request(
        request,
        &t.db,
        RequestMeta {
            user: AuthUser { id: "bob".into() },
            request_id: None,
        },
    );
    let bobs = graphql::schema::execute(&schema, request).await;

    // Assert
    assert!(bobs.errors.is_empty(), "{:?}", bobs.errors);
    assert_eq!(app.count("tasks").await, 2);
});

on_both_databases!(a_bad_key_is_refused_and_nothing_is_written, |t| {
    let app = support::TestApp::on(t);
    let schema = schema(t, SchemaLimits::default());
    for bad in ["", "with space", "é", &"k".repeat(256)] {
        let response = send(t, &schema, CREATE, json!({ "t": "x" }), Some(bad)).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{bad:?}");
    }
    assert_eq!(app.count("tasks").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
});

on_both_databases!(queries_ignore_the_key, |t| {
    let app = support::TestApp::on(t);
    let schema = schema(t, SchemaLimits::default());
    for _ in 0..2 {
        let response = send(t, &schema, "{ tasks { totalCount } }", json!({}), Some("q")).await;
        assert!(response.errors.is_empty());
    }
    assert_eq!(app.count("idempotency_keys").await, 0);
});

on_both_databases!(
    a_request_cut_off_by_the_timeout_is_never_run_again_with_its_key,
    |t| {
        // Arrange: a zero execution timeout cuts the mutation off at its first wait.
        let app = support::TestApp::on(t);
        let cut = schema(
            t,
            SchemaLimits {
                execution_timeout: Duration::ZERO,
                ..SchemaLimits::default()
            },
        );
        let first = send(t, &cut, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;
        assert!(first.errors[0].message.contains("outcome is unknown"));

        // Act: the client retries with the key, within a normal timeout.
        let normal = schema(t, SchemaLimits::default());
        support::wait_until("the cut-off key is marked", || async {
            let retry = send(t, &normal, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;
            retry
                .errors
                .first()
                .is_some_and(|e| e.message.contains("was cut off"))
        })
        .await;

        // Assert: refused, not run a second time.
        assert!(app.count("tasks").await <= 1);
        let retry = send(t, &normal, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;
        assert_eq!(code(&retry), "CONFLICT");
    }
);

on_both_databases!(an_expired_key_runs_the_request_again, |t| {
    let app = support::TestApp::on(t);
    let schema = schema(
        t,
        SchemaLimits {
            idempotency_ttl: Duration::ZERO,
            ..SchemaLimits::default()
        },
    );
    for _ in 0..2 {
        let response = send(t, &schema, CREATE, json!({ "t": "Pay rent" }), Some("k-1")).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    assert_eq!(app.count("tasks").await, 2);
});
