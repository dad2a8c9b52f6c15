//! Unit tests of JWKS authenticators: loading the set, key selection by `kid`, refetching and
//! rotation, URL and fetch failures, and binding keys to the algorithms that fit them.
//!
//! What it is not: the tests of shared-secret authenticators (in `auth::tests`).

use std::sync::atomic::Ordering;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::auth::test_support::*;
use crate::auth::{Authenticator, Verifier};

fn jwks_keys(auth: &Authenticator) -> &JwksKeys {
    match &*auth.verifier {
        Verifier::Jwks(jwks) => jwks,
        Verifier::Hmac(_) => panic!("not a JWKS authenticator"),
    }
}

/// Lets the next unknown `kid` refetch, as if `JWKS_REFETCH_INTERVAL` had passed.
async fn forget_last_fetch(auth: &Authenticator) {
    *jwks_keys(auth).last_fetch.lock().await = None;
}

#[tokio::test]
async fn rs256_and_es256_tokens_with_known_kids_are_accepted() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    assert!(!auth.is_development());
    let rsa = rsa_token(Some("rsa-1"), &valid_claims("rsa-user"));
    let ec = ec_token(Some("ec-1"), &valid_claims("ec-user"));
    let rsa_user = auth
        .authenticate(Some(&bearer(&rsa)))
        .await
        .expect("RS256 verifies");
    let ec_user = auth
        .authenticate(Some(&bearer(&ec)))
        .await
        .expect("ES256 verifies");
    assert_eq!(rsa_user.id, "rsa-user");
    assert_eq!(ec_user.id, "ec-user");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "known kids need no refetch"
    );
}

#[tokio::test]
async fn jwks_tokens_are_checked_like_any_other() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url)
        .await
        .expect("JWKS loads")
        .with_audience(Some("taskstream".to_owned()));
    let expired = rsa_token(
        Some("rsa-1"),
        &json!({ "sub": "u", "exp": now() - 3600, "aud": "taskstream" }),
    );
    assert_rejected(&auth, Some(&bearer(&expired)), "token has expired").await;
    let no_aud = ec_token(Some("ec-1"), &valid_claims("u"));
    assert_rejected(&auth, Some(&bearer(&no_aud)), "token has no audience (aud)").await;
    let token = rsa_token(Some("rsa-1"), &valid_claims("user-1"));
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next(), parts.next(), parts.next());
    let claims = json!({ "sub": "admin", "exp": now() + 600, "aud": "taskstream" });
    let forged = format!(
        "{}.{}.{}",
        header.expect("header part"),
        b64(&claims),
        signature.expect("signature part")
    );
    assert_rejected(&auth, Some(&bearer(&forged)), "token signature is invalid").await;
}

#[tokio::test]
async fn an_hs256_token_is_rejected_by_a_jwks_authenticator() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".to_owned());
    // The classic confusion attack: the public key used as an HMAC secret.
    let token = sign(
        &header,
        &valid_claims("user-1"),
        &EncodingKey::from_secret(JWKS.as_bytes()),
    );
    let message = "token algorithm HS256 is not accepted";
    assert_rejected(&auth, Some(&bearer(&token)), message).await;
    let header = b64(&json!({ "alg": "none", "kid": "rsa-1" }));
    let none = format!("{header}.{}.", b64(&valid_claims("user-1")));
    let message = "token algorithm none is not accepted";
    assert_rejected(&auth, Some(&bearer(&none)), message).await;
}

#[tokio::test]
async fn a_jwks_token_without_kid_is_rejected() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    let token = rsa_token(None, &valid_claims("user-1"));
    assert_rejected(&auth, Some(&bearer(&token)), "token has no key id (kid)").await;
}

#[tokio::test]
async fn a_token_whose_alg_does_not_fit_its_key_is_rejected() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    let token = ec_token(Some("rsa-1"), &valid_claims("user-1"));
    let message = "token algorithm does not match its signing key";
    assert_rejected(&auth, Some(&bearer(&token)), message).await;
}

#[tokio::test]
async fn an_unknown_kid_is_rejected_and_refetches_at_most_once_per_interval() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    let token = rsa_token(Some("rsa-unknown"), &valid_claims("user-1"));
    let message = "token signing key (kid) is unknown";

    // Right after the start-up fetch: no refetch.
    assert_rejected(&auth, Some(&bearer(&token)), message).await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // Once the interval has passed: one refetch, then none for the next attempts.
    forget_last_fetch(&auth).await;
    for _ in 0..3 {
        assert_rejected(&auth, Some(&bearer(&token)), message).await;
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    let mut only_rsa: Value = serde_json::from_str(JWKS).expect("fixture is JSON");
    if let Some(keys) = only_rsa["keys"].as_array_mut() {
        keys.retain(|key| key["kid"] == "rsa-1");
    }
    let server = serve_jwks(&only_rsa.to_string()).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    let token = ec_token(Some("ec-1"), &valid_claims("user-1"));
    assert_rejected(
        &auth,
        Some(&bearer(&token)),
        "token signing key (kid) is unknown",
    )
    .await;

    *server.body.lock().expect("body lock") = JWKS.to_owned();
    forget_last_fetch(&auth).await;
    let user = auth
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("the new key is fetched");
    assert_eq!(user.id, "user-1");
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_cached_keys() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    *server.body.lock().expect("body lock") = "not json".to_owned();
    forget_last_fetch(&auth).await;
    let unknown = rsa_token(Some("rsa-unknown"), &valid_claims("user-1"));
    assert_rejected(
        &auth,
        Some(&bearer(&unknown)),
        "token signing key (kid) is unknown",
    )
    .await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    let known = rsa_token(Some("rsa-1"), &valid_claims("user-1"));
    assert!(auth.authenticate(Some(&bearer(&known))).await.is_ok());
}

#[tokio::test]
async fn an_unreachable_jwks_url_fails_with_a_message_naming_jwt_jwks_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let err = Authenticator::jwks(&format!("http://{addr}/jwks.json"))
        .await
        .expect_err("nothing listens there");
    let text = err.to_string();
    assert!(text.contains("JWT_JWKS_URL"), "{text}");
    assert!(text.contains(&addr.to_string()), "{text}");
}

#[tokio::test]
async fn a_jwks_url_answering_an_error_status_fails() {
    let server = serve_jwks(JWKS).await;
    let url = server.url.replace("/jwks.json", "/missing");
    let err = Authenticator::jwks(&url).await.expect_err("404 fails");
    let text = err.to_string();
    assert!(
        text.contains("JWT_JWKS_URL") && text.contains("HTTP 404"),
        "{text}"
    );
}

#[tokio::test]
async fn a_jwks_without_usable_keys_fails() {
    let body = json!({ "keys": [
        { "kty": "oct", "kid": "shared", "k": "c2VjcmV0" },
        { "kty": "RSA", "n": "AQAB", "e": "AQAB" },
        { "kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": "AA", "y": "AA" },
    ] });
    let server = serve_jwks(&body.to_string()).await;
    let err = Authenticator::jwks(&server.url)
        .await
        .expect_err("no usable keys");
    let text = err.to_string();
    assert!(
        text.contains("JWT_JWKS_URL") && text.contains("no usable signing keys"),
        "{text}"
    );
    let server = serve_jwks(r#"{"keys":[]}"#).await;
    assert!(Authenticator::jwks(&server.url).await.is_err());
}

#[tokio::test]
async fn a_non_http_jwks_url_is_rejected() {
    for url in [
        "ftp://127.0.0.1/jwks.json",
        "file:///etc/jwks.json",
        "not a url",
        "",
    ] {
        let err = Authenticator::jwks(url).await.expect_err("only http(s)");
        let text = err.to_string();
        assert!(text.contains("JWT_JWKS_URL"), "{text}");
    }
}

#[tokio::test]
async fn a_jwks_authenticator_issues_no_tokens() {
    let server = serve_jwks(JWKS).await;
    let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
    assert!(
        auth.issue_token("user-1", Duration::from_secs(60))
            .is_none()
    );
}

#[test]
fn jwk_keys_are_bound_to_the_algorithms_that_fit_them() {
    let jwks: Value = serde_json::from_str(JWKS).expect("fixture is JSON");
    let mut rsa = jwks["keys"][0].clone();
    let jwk: Jwk = serde_json::from_value(rsa.clone()).expect("RSA JWK");
    assert_eq!(
        jwk_key(&jwk).expect("usable").1.algorithms,
        [Algorithm::RS256]
    );
    rsa.as_object_mut().expect("object").remove("alg");
    let jwk: Jwk = serde_json::from_value(rsa.clone()).expect("RSA JWK");
    assert_eq!(jwk_key(&jwk).expect("usable").1.algorithms, RSA_ALGORITHMS);
    rsa["alg"] = json!("ES256");
    let jwk: Jwk = serde_json::from_value(rsa).expect("RSA JWK");
    assert!(jwk_key(&jwk).is_err());
    let mut ec = jwks["keys"][1].clone();
    ec.as_object_mut().expect("object").remove("alg");
    let jwk: Jwk = serde_json::from_value(ec).expect("EC JWK");
    assert_eq!(
        jwk_key(&jwk).expect("usable").1.algorithms,
        [Algorithm::ES256]
    );
}

#[test]
fn bit_length_counts_significant_bits() {
    assert_eq!(bit_length(&[]), 0);
    assert_eq!(bit_length(&[0, 0]), 0);
    assert_eq!(bit_length(&[0, 1]), 1);
    assert_eq!(bit_length(&[0x80, 0]), 16);
    assert_eq!(bit_length(&[0, 0x7f, 0]), 15);
}
