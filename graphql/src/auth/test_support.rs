//! Fixtures and helpers shared by the auth unit tests: signing keys, token builders, an
//! assertion that a header is rejected with a given message, and a local JWKS endpoint.
//!
//! What it is not: a test of its own; it is compiled only with `cfg(test)`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::Authenticator;

pub(super) const SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes+";
pub(super) const RSA_PEM: &str = include_str!("../../tests/fixtures/jwt_rsa.pem");
pub(super) const EC_PEM: &str = include_str!("../../tests/fixtures/jwt_ec.pem");
pub(super) const JWKS: &str = include_str!("../../tests/fixtures/jwks.json");

pub(super) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub(super) fn hs256() -> Authenticator {
    Authenticator::hs256(SECRET).expect("the test secret is long enough")
}

pub(super) fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("test token signs")
}

pub(super) fn hs_token(secret: &[u8], claims: &Value) -> String {
    sign(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

pub(super) fn rsa_token(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("RSA fixture loads");
    sign(&header, claims, &key)
}

pub(super) fn ec_token(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_ec_pem(EC_PEM.as_bytes()).expect("EC fixture loads");
    sign(&header, claims, &key)
}

pub(super) fn valid_claims(sub: &str) -> Value {
    json!({ "sub": sub, "iat": now(), "exp": now() + 600 })
}

pub(super) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub(super) fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Asserts the header is rejected with exactly `message`, and that the message does not
/// leak the token.
pub(super) async fn assert_rejected(auth: &Authenticator, header: Option<&str>, message: &str) {
    let err = auth
        .authenticate(header)
        .await
        .expect_err("the header must be rejected");
    let text = err.to_string();
    assert_eq!(text, message, "{header:?}");
    if let Some(token) = header.and_then(|h| h.split_once(' ')).map(|(_, t)| t)
        && token.len() > 3
    {
        assert!(!text.contains(token), "the message leaks the token");
    }
}

/// A JWKS endpoint on 127.0.0.1 that counts its hits and whose body can be swapped.
pub(super) struct JwksServer {
    pub(super) url: String,
    pub(super) hits: Arc<AtomicUsize>,
    pub(super) body: Arc<Mutex<String>>,
}

#[derive(Clone)]
struct ServerState {
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
}

pub(super) async fn serve_jwks(body: &str) -> JwksServer {
    async fn jwks(State(state): State<ServerState>) -> ([(&'static str, &'static str); 1], String) {
        state.hits.fetch_add(1, Ordering::SeqCst);
        let body = state.body.lock().expect("body lock").clone();
        ([(CONTENT_TYPE.as_str(), "application/json")], body)
    }
    let state = ServerState {
        hits: Arc::new(AtomicUsize::new(0)),
        body: Arc::new(Mutex::new(body.to_owned())),
    };
    let app = Router::new()
        .route("/jwks.json", get(jwks))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer {
        url: format!("http://{addr}/jwks.json"),
        hits: state.hits,
        body: state.body,
    }
}
