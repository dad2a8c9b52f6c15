//! Transport and auth: the real server on port 0, talked to over HTTP like a client.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use graphql::config::ServerConfig;
use serde_json::{Value, json};

const SECRET: &str = "an-http-test-secret-that-is-long-enough";

struct TestServer {
    base: String,
    client: reqwest::Client,
    _db: support::TestDb,
    _stop: support::StopOnDrop,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// As [`TestServer::start`], with `configure` applied to the configuration first.
    async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let db = support::TestDb::empty(support::Backend::Sqlite)
            .await
            .unwrap();
        let mut config = ServerConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            jwt_jwks_url: None,
            jwt_audience: None,
            jwt_issuer: None,
            ..ServerConfig::default()
        };
        configure(&mut config);
        let app = support::start_app(config).await;
        TestServer {
            base: format!("http://{}", app.addr),
            client: reqwest::Client::new(),
            _db: db,
            _stop: support::StopOnDrop(app.shutdown),
        }
    }

    fn token(&self, sub: &str) -> String {
        graphql::auth::Authenticator::hs256(SECRET.as_bytes())
            .unwrap()
            .issue_token(sub, Duration::from_secs(600))
            .unwrap()
    }

    async fn post(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn query(&self, token: Option<&str>, query: &str) -> (u16, Value) {
        self.post(token, json!({ "query": query }).to_string())
            .await
    }
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_request_without_a_valid_token_gets_401_unauthenticated() {
    let server = TestServer::start().await;
    let (status, body) = server.query(None, "{ me { id } }").await;
    assert_eq!(status, 401);
    assert_eq!(code(&body), "UNAUTHENTICATED");

    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "alice", "exp": chrono::Utc::now().timestamp() - 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "alice", "exp": chrono::Utc::now().timestamp() + 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-that-is-long-enough!!"),
    )
    .unwrap();
    let valid = server.token("alice");
    let mut parts: Vec<&str> = valid.split('.').collect();
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({ "sub": "mallory", "exp": chrono::Utc::now().timestamp() + 3600 }).to_string(),
    );
    parts[1] = &forged_payload;
    let tampered = parts.join(".");
    for (name, token) in [
        ("expired", expired),
        ("wrong key", other_key),
        ("tampered", tampered),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let (status, body) = server.query(Some(&token), "{ me { id } }").await;
        assert_eq!(status, 401, "{name}");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{name}");
    }
    let (status, body) = server.query(Some(&valid), "{ me { id } }").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["me"]["id"], "alice");
}

#[tokio::test]
async fn a_token_for_another_user_sees_none_of_the_first_users_tasks() {
    let server = TestServer::start().await;
    let alice = server.token("alice");
    let (_, created) = server
        .query(
            Some(&alice),
            "mutation { createTask(input: { title: \"Secret\" }) { id } }",
        )
        .await;
    let id = created["data"]["createTask"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = server.token("bob");
    let (status, body) = server
        .query(
            Some(&bob),
            &format!("{{ task(id: \"{id}\") {{ title }} tasks {{ totalCount }} }}"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["task"], Value::Null);
    assert_eq!(body["data"]["tasks"]["totalCount"], 0);
}

#[tokio::test]
async fn batches_malformed_bodies_and_huge_bodies_are_rejected() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let batch = json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }]).to_string();
    let (status, body) = server.post(Some(&token), batch).await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("batch")
    );

    let (status, body) = server.post(Some(&token), "{ not json").await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "BAD_USER_INPUT");

    let huge =
        json!({ "query": "{ me { id } }", "variables": { "pad": "x".repeat(10 * 1024 * 1024) } })
            .to_string();
    let (status, _) = server.post(Some(&token), huge).await;
    assert_eq!(status, 413);

    let (status, body) = server.query(Some(&token), "{ me { id nope } }").await;
    assert_eq!(status, 200);
    assert_eq!(
        code(&body),
        "BAD_USER_INPUT",
        "validation errors carry a code too"
    );
}

#[tokio::test]
async fn health_readiness_graphiql_and_request_ids_are_served() {
    let server = TestServer::start().await;
    let health = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = server
        .client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert!(ready.headers().contains_key("x-request-id"));
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    let page = server
        .client
        .get(format!("{}/graphiql", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/graphql"));
    assert!(
        !html.contains("Bearer "),
        "outside development mode GraphiQL carries no token"
    );
}

#[tokio::test]
async fn development_mode_prints_a_working_token_and_fills_graphiql() {
    let db = support::TestDb::empty(support::Backend::Sqlite)
        .await
        .unwrap();
    let config = ServerConfig {
        database_url: db.url.clone(),
        jwt_secret: None,
        jwt_jwks_url: None,
        ..ServerConfig::default()
    };
    let gateway = graphql::startup::build(&config).await.unwrap();
    let token = gateway
        .dev_token
        .clone()
        .expect("development mode issues a token");
    let html = gateway.state.graphiql_html.clone().unwrap();
    assert!(
        html.contains(&token),
        "GraphiQL has the token in its Authorization header"
    );
    let user = gateway
        .state
        .auth
        .authenticate(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(user.id, graphql::startup::DEV_USER);
}

/// Asserts a request was refused by a document limit: 200 with BAD_USER_INPUT naming `flag`.
fn assert_refused_by(status: u16, body: &Value, flag: &str) {
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], flag, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(flag),
        "{body}"
    );
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
}

#[tokio::test]
async fn input_nested_two_thousand_deep_is_refused_and_the_server_keeps_serving() {
    // Before the document guard this ~4 KB request overflowed the stack and aborted the process.
    let server = TestServer::start().await;
    let token = server.token("alice");
    let deep = format!(
        "mutation {{ createTask(input: {{ title: \"x\", tags: {}\"x\"{} }}) {{ id }} }}",
        "[".repeat(2_000),
        "]".repeat(2_000)
    );
    let (status, body) = server.query(Some(&token), &deep).await;
    assert_refused_by(status, &body, "MAX_QUERY_NESTING");

    let mut filter = json!({});
    for _ in 0..12 {
        filter = json!({ "not": filter });
    }
    let (status, body) = server
        .post(
            Some(&token),
            json!({
                "query": "query Q($f: TaskFilter) { tasks(filter: $f) { totalCount } }",
                "variables": { "f": filter }
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        code(&body),
        "BAD_USER_INPUT",
        "filters nested too deep: {body}"
    );

    let (status, body) = server.query(Some(&token), "{ me { id } }").await;
    assert_eq!((status, &body["data"]["me"]["id"]), (200, &json!("alice")));
    let (_, tasks) = server.query(Some(&token), "{ tasks { totalCount } }").await;
    assert_eq!(
        tasks["data"]["tasks"]["totalCount"], 0,
        "nothing was written"
    );
}

#[tokio::test]
async fn doubling_fragments_are_refused_without_expanding_them() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let mut doc = String::from("query { ...F25 }\nfragment F0 on Query { me { id } }\n");
    for n in 1..=25 {
        doc.push_str(&format!(
            "fragment F{n} on Query {{ ...F{m} ...F{m} }}\n",
            m = n - 1
        ));
    }
    let (status, body) = server.query(Some(&token), &doc).await;
    assert_refused_by(status, &body, "MAX_QUERY_FIELDS");

    let cycle =
        "query { ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }";
    let (status, body) = server.query(Some(&token), cycle).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("spreads itself"),
        "{body}"
    );
}

#[tokio::test]
async fn thousands_of_aliased_root_fields_are_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let previews: String = (0..2_000)
        .map(|i| {
            format!(
                "p{i}: previewRecurrence(recurrence: {{ rule: \"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO\" }}, dueAt: \"2030-01-01T00:00:00Z\", count: 50) "
            )
        })
        .collect();
    let (status, body) = server
        .query(Some(&token), &format!("{{ {previews} }}"))
        .await;
    assert_refused_by(status, &body, "MAX_ROOT_FIELDS");

    let creates: String = (0..21)
        .map(|i| format!("c{i}: createTask(input: {{ title: \"t{i}\" }}) {{ id }} "))
        .collect();
    let (status, body) = server
        .query(Some(&token), &format!("mutation {{ {creates} }}"))
        .await;
    assert_refused_by(status, &body, "MAX_ROOT_FIELDS");
    let (_, tasks) = server.query(Some(&token), "{ tasks { totalCount } }").await;
    assert_eq!(
        tasks["data"]["tasks"]["totalCount"], 0,
        "nothing was written"
    );

    let aliases: String = (0..51).map(|i| format!("a{i}: id ")).collect();
    let (status, body) = server
        .query(Some(&token), &format!("{{ me {{ {aliases} }} }}"))
        .await;
    assert_refused_by(status, &body, "MAX_QUERY_ALIASES");
}

#[tokio::test]
async fn a_tag_list_of_a_hundred_thousand_names_is_refused_by_its_length() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let (status, body) = server
        .post(
            Some(&token),
            json!({
                "query": "mutation C($t: [String!]) { createTask(input: { title: \"x\", tags: $t }) { id } }",
                "variables": { "t": vec!["same"; 100_000] }
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "input.tags has 100000 tags; the limit is 50"
    );
}

#[tokio::test]
async fn the_standard_introspection_query_works_at_the_default_limits() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let query = include_str!("fixtures/introspection_query_graphql_js_16.graphql");
    let (status, body) = server.query(Some(&token), query).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Task"));
}

#[tokio::test]
async fn a_halted_embedded_subscriber_makes_readyz_fail_naming_it() {
    use sea_orm::ActiveModelTrait as _;
    // Arrange: the recurrence consumer's stored offset lies past the end of the log, so it
    // halts as soon as it starts (it never skips records).
    let db = support::TestDb::empty(support::Backend::Sqlite)
        .await
        .unwrap();
    let config = ServerConfig {
        database_url: db.url.clone(),
        jwt_secret: Some(SECRET.to_owned()),
        ..ServerConfig::default()
    };
    let db_conn = graphql::db::connect(&db.url).await.unwrap();
    graphql::db::migrate(&db_conn).await.unwrap();
    entities::consumer_offset::ActiveModel {
        consumer: sea_orm::Set(subscribers::recurrence::CONSUMER.to_owned()),
        topic: sea_orm::Set(stream::topics::TASK_EVENTS.to_owned()),
        partition: sea_orm::Set(0),
        next_offset: sea_orm::Set(1_000),
        updated_at: sea_orm::Set(entities::to_db_precision(chrono::Utc::now())),
    }
    .insert(&db_conn)
    .await
    .unwrap();

    // Act
    let app = support::start_app(config).await;
    let _stop = support::StopOnDrop(app.shutdown.clone());
    let base = format!("http://{}", app.addr);

    // Assert
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
        if response.status() == 503 {
            break response.json::<Value>().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed ready with a halted subscriber"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let state = body["components"]["subscriber recurrence"]
        .as_str()
        .unwrap();
    assert!(state.starts_with("halted: "), "{body}");
    assert_eq!(
        body["components"]["subscriber reminder"], "running",
        "{body}"
    );
    assert!(
        telemetry::metrics::render()
            .contains("taskstream_component_up{component=\"subscriber recurrence\"} 0")
    );
}

#[tokio::test]
async fn the_idempotency_key_header_replays_the_first_response() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let send = |key: &'static str, body: String| {
        server
            .client
            .post(format!("{}/graphql", server.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let create = json!({ "query": "mutation { createTask(input: { title: \"Once\" }) { id } }" })
        .to_string();

    let first = send("0b7c7c3e-4f0e", create.clone()).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = send("0b7c7c3e-4f0e", create.clone()).await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    let (_, tasks) = server.query(Some(&token), "{ tasks { totalCount } }").await;
    assert_eq!(tasks["data"]["tasks"]["totalCount"], 1);

    let both = json!({
        "query": "mutation { createTask(input: { title: \"Once\" }) { id } }",
        "extensions": { "idempotencyKey": "another" }
    })
    .to_string();
    let mismatch = send("0b7c7c3e-4f0e", both).await.unwrap();
    assert_eq!(mismatch.status(), 400);
    let bad = send("not ascii é", create).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(code(&bad.json::<Value>().await.unwrap()), "BAD_USER_INPUT");
}

#[tokio::test]
async fn responses_follow_the_selection_order_with_aliases_and_nesting() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let query = "{ d: me { timezone id } b: tasks { totalCount nodes { id } } \
                 c: me { id timezone } a: me { id } }";
    // The engine resolves fields concurrently; ask often enough that any completion-order
    // leak would show.
    for _ in 0..20 {
        let text = server
            .client
            .post(format!("{}/graphql", server.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(json!({ "query": query }).to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let at = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {text}"))
        };
        assert!(at("\"d\"") < at("\"b\""), "{text}");
        assert!(
            at("\"b\"") < at("\"c\"") && at("\"c\"") < at("\"a\""),
            "{text}"
        );
        assert!(at("\"totalCount\"") < at("\"nodes\""), "{text}");
        assert_eq!(
            text,
            "{\"data\":{\"d\":{\"timezone\":\"UTC\",\"id\":\"alice\"},\"b\":{\"totalCount\":0,\
             \"nodes\":[]},\"c\":{\"id\":\"alice\",\"timezone\":\"UTC\"},\"a\":{\"id\":\"alice\"}}}"
        );
    }
}

// GraphQL over HTTP: GET, content negotiation, status codes, persisted queries, CORS.

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A reply as a client sees it: status, headers and the body as JSON (or a string).
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }
}

impl TestServer {
    /// POST /graphql with `token`, `accept` and a JSON `body`.
    async fn post_accepting(&self, token: &str, accept: &str, body: Value) -> Reply {
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    /// GET /graphql with `token`, `accept` and URL `params`.
    async fn get(&self, token: &str, accept: &str, params: &[(&str, String)]) -> Reply {
        let response = self
            .client
            .get(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .header("accept", accept)
            .query(params)
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }
}

#[tokio::test]
async fn a_query_over_get_runs_and_a_mutation_over_get_is_refused_with_405() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");

    // Act
    let query = server
        .get(
            &token,
            "application/json",
            &[
                (
                    "query",
                    "query Me($n: String!) { me { id } __type(name: $n) { name } }".into(),
                ),
                ("operationName", "Me".into()),
                ("variables", json!({ "n": "Task" }).to_string()),
            ],
        )
        .await;
    let mutation = server
        .get(
            &token,
            GRAPHQL_RESPONSE,
            &[(
                "query",
                "mutation { createTask(input: { title: \"x\" }) { id } }".into(),
            )],
        )
        .await;

    // Assert
    assert_eq!(query.status, 200, "{}", query.body);
    assert_eq!(query.body["data"]["me"]["id"], "alice");
    assert_eq!(query.body["data"]["__type"]["name"], "Task");
    assert_eq!(mutation.status, 405, "{}", mutation.body);
    assert_eq!(mutation.headers["allow"], "POST");
    let (_, tasks) = server.query(Some(&token), "{ tasks { totalCount } }").await;
    assert_eq!(
        tasks["data"]["tasks"]["totalCount"], 0,
        "nothing was written"
    );
}

#[tokio::test]
async fn graphql_response_json_answers_request_errors_with_400_and_no_data() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");
    let aliases: String = (0..51).map(|i| format!("a{i}: id ")).collect();
    let refused = [
        ("parse", json!({ "query": "{" })),
        ("validation", json!({ "query": "{ me { nope } }" })),
        (
            "variable coercion",
            json!({ "query": "query Q($id: ID!) { task(id: $id) { id } }", "variables": { "id": null } }),
        ),
        (
            "document limit",
            json!({ "query": format!("{{ me {{ {aliases} }} }}") }),
        ),
    ];

    for (what, body) in refused {
        // Act
        let reply = server
            .post_accepting(&token, GRAPHQL_RESPONSE, body.clone())
            .await;
        let legacy = server
            .post_accepting(&token, "application/json", body)
            .await;

        // Assert
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert!(reply.content_type().starts_with(GRAPHQL_RESPONSE), "{what}");
        assert!(reply.body.get("data").is_none(), "{what}: {}", reply.body);
        assert_eq!(code(&reply.body), "BAD_USER_INPUT", "{what}");
        assert_eq!(legacy.status, 200, "{what}: application/json keeps 200");
        assert_eq!(legacy.content_type(), "application/json", "{what}");
        assert_eq!(code(&legacy.body), "BAD_USER_INPUT", "{what}");
    }

    let executed = server
        .post_accepting(
            &token,
            "application/graphql-response+json, application/json;q=0.9",
            json!({ "query": "{ me { id } task(id: \"nope\") { id } }" }),
        )
        .await;
    assert_eq!(executed.status, 200, "{}", executed.body);
    assert!(executed.content_type().starts_with(GRAPHQL_RESPONSE));
    assert_eq!(executed.body["data"]["me"]["id"], "alice");
}

#[tokio::test]
async fn unsupported_content_types_unacceptable_accepts_and_missing_queries_are_refused() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");
    let post = |content_type: Option<&'static str>, accept: &'static str, body: &'static str| {
        let mut request = server
            .client
            .post(format!("{}/graphql", server.base))
            .bearer_auth(&token)
            .header("accept", accept)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let query = r#"{"query":"{ me { id } }"}"#;

    // Act
    let no_type = post(None, "application/json", query).await;
    let text = post(Some("text/plain"), "application/json", query).await;
    let latin1 = post(Some("application/json; charset=latin1"), "*/*", query).await;
    let html_only = post(Some("application/json"), "text/html", query).await;
    let empty = post(Some("application/json"), "application/json", "").await;
    let no_query = post(
        Some("application/json"),
        GRAPHQL_RESPONSE,
        r#"{"qeury":"{ me { id } }"}"#,
    )
    .await;
    let utf8 = post(Some("application/json; charset=utf-8"), "*/*", query).await;

    // Assert
    for (what, reply, status) in [
        ("no content type", &no_type, 415),
        ("text/plain", &text, 415),
        ("latin1", &latin1, 415),
        ("Accept: text/html", &html_only, 406),
        ("empty body", &empty, 400),
        ("no query", &no_query, 400),
    ] {
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert_eq!(code(&reply.body), "BAD_USER_INPUT", "{what}");
    }
    assert_eq!(utf8.status, 200);
    assert_eq!(
        utf8.content_type(),
        "application/json",
        "*/* gets application/json"
    );
    assert_eq!(utf8.body["data"]["me"]["id"], "alice");
}

/// The persisted-query extension for `query`, with `hash` (the query's own when `None`).
fn persisted(query: &str, version: i64, hash: Option<&str>) -> Value {
    use sha2::Digest as _;
    let own: String = sha2::Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({ "persistedQuery": { "version": version, "sha256Hash": hash.unwrap_or(&own) } })
}

#[tokio::test]
async fn a_persisted_query_misses_then_registers_then_hits_over_get() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");
    let query = "query Me { me { id } }";
    let hashed = [
        ("operationName", "Me".to_owned()),
        ("extensions", persisted(query, 1, None).to_string()),
    ];

    // Act
    let miss = server.get(&token, GRAPHQL_RESPONSE, &hashed).await;
    let register = server
        .post_accepting(
            &token,
            GRAPHQL_RESPONSE,
            json!({ "query": query, "extensions": persisted(query, 1, None) }),
        )
        .await;
    let hit = server.get(&token, GRAPHQL_RESPONSE, &hashed).await;
    let other_user = server
        .get(&server.token("bob"), "application/json", &hashed)
        .await;

    // Assert
    assert_eq!(miss.status, 200, "{}", miss.body);
    assert_eq!(miss.body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(code(&miss.body), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(register.body["data"]["me"]["id"], "alice");
    assert_eq!(hit.status, 200, "{}", hit.body);
    assert_eq!(hit.body["data"]["me"]["id"], "alice");
    assert_eq!(
        code(&other_user.body),
        "PERSISTED_QUERY_NOT_FOUND",
        "one user's registrations never answer another's"
    );
}

#[tokio::test]
async fn a_persisted_query_with_a_wrong_hash_or_an_unknown_version_is_a_bad_request() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");
    let query = "{ me { id } }";
    let wrong = "0".repeat(64);

    // Act
    let mismatch = server
        .post_accepting(
            &token,
            "application/json",
            json!({ "query": query, "extensions": persisted(query, 1, Some(&wrong)) }),
        )
        .await;
    let version = server
        .post_accepting(
            &token,
            "application/json",
            json!({ "query": query, "extensions": persisted(query, 2, None) }),
        )
        .await;
    let after = server
        .post_accepting(
            &token,
            "application/json",
            json!({ "extensions": persisted(query, 1, Some(&wrong)) }),
        )
        .await;

    // Assert
    assert_eq!(mismatch.status, 400, "{}", mismatch.body);
    assert_eq!(code(&mismatch.body), "BAD_USER_INPUT");
    assert_eq!(
        mismatch.body["errors"][0]["message"],
        "provided sha does not match query"
    );
    assert_eq!(version.status, 400, "{}", version.body);
    assert!(
        version.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("version 2"),
        "{}",
        version.body
    );
    assert_eq!(
        code(&after.body),
        "PERSISTED_QUERY_NOT_FOUND",
        "nothing was registered"
    );
}

#[tokio::test]
async fn the_persisted_query_cache_holds_at_most_apq_cache_entries() {
    // Arrange
    let server = TestServer::start_with(|c| c.apq_cache_entries = 2).await;
    let token = server.token("alice");
    let queries = [
        "{ me { id } }",
        "{ me { timezone } }",
        "{ me { id timezone } }",
    ];

    // Act
    for query in queries {
        let registered = server
            .post_accepting(
                &token,
                "application/json",
                json!({ "query": query, "extensions": persisted(query, 1, None) }),
            )
            .await;
        assert!(
            registered.body.get("errors").is_none(),
            "{}",
            registered.body
        );
    }
    let mut found = Vec::new();
    for query in queries {
        let reply = server
            .post_accepting(
                &token,
                "application/json",
                json!({ "extensions": persisted(query, 1, None) }),
            )
            .await;
        found.push(reply.body.get("errors").is_none());
    }

    // Assert: the oldest was evicted; the two newest answer.
    assert_eq!(found, [false, true, true]);
}

#[tokio::test]
async fn with_apq_cache_entries_zero_persisted_queries_are_not_supported() {
    let server = TestServer::start_with(|c| c.apq_cache_entries = 0).await;
    let token = server.token("alice");
    let query = "{ me { id } }";
    let reply = server
        .post_accepting(
            &token,
            "application/json",
            json!({ "query": query, "extensions": persisted(query, 1, None) }),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["errors"][0]["message"],
        "PersistedQueryNotSupported"
    );
    assert_eq!(code(&reply.body), "PERSISTED_QUERY_NOT_SUPPORTED");
}

/// An `OPTIONS /graphql` preflight from `origin` for a POST with a token.
async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    server
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key,traceparent",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_allowed_origin_passes_the_preflight_and_another_origin_does_not() {
    // Arrange
    let server = TestServer::start_with(|c| {
        c.cors_allowed_origins = Some("https://app.example.com, http://127.0.0.1:5173".into());
    })
    .await;
    let token = server.token("alice");

    // Act
    let allowed = preflight(&server, "https://app.example.com").await;
    let denied = preflight(&server, "https://evil.example.com").await;
    let actual = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&token)
        .header("origin", "http://127.0.0.1:5173")
        .header("content-type", "application/json")
        .body(json!({ "query": "{ me { id } }" }).to_string())
        .send()
        .await
        .unwrap();

    // Assert
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "authorization",
        "content-type",
        "idempotency-key",
        "traceparent",
    ] {
        assert!(allowed_headers.contains(name), "{allowed_headers}");
    }
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(headers.get("access-control-allow-credentials").is_none());
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
}

#[tokio::test]
async fn without_cors_allowed_origins_no_cors_headers_are_sent() {
    let server = TestServer::start().await;
    let token = server.token("alice");
    let preflight = preflight(&server, "https://app.example.com").await;
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let actual = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&token)
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body(json!({ "query": "{ me { id } }" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 200);
    assert!(
        actual
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        actual.headers()
    );
}

#[tokio::test]
async fn a_bad_cors_allowed_origins_stops_start_up_naming_the_flag() {
    let db = support::TestDb::empty(support::Backend::Sqlite)
        .await
        .unwrap();
    for bad in [
        "*, https://app.example.com",
        "https://app.example.com/graphql",
    ] {
        let config = ServerConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            cors_allowed_origins: Some(bad.into()),
            ..ServerConfig::default()
        };
        let Err(err) = graphql::startup::build(&config).await else {
            panic!("{bad} was accepted");
        };
        assert!(
            err.to_string().contains("CORS_ALLOWED_ORIGINS"),
            "{bad}: {err}"
        );
    }
}
