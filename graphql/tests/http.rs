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
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    async fn start() -> TestServer {
        let db = support::TestDb::empty(support::Backend::Sqlite)
            .await
            .unwrap();
        let config = ServerConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            jwt_jwks_url: None,
            jwt_audience: None,
            jwt_issuer: None,
            ..ServerConfig::default()
        };
        let gateway = graphql::startup::build(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(graphql::http::serve(listener, gateway.router, async {
            rx.await.ok();
        }));
        TestServer {
            base,
            client: reqwest::Client::new(),
            _db: db,
            shutdown: Some(tx),
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

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
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
