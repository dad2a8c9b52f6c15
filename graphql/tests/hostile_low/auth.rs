//! The JWT `sub` over HTTP: a subject that is only whitespace or holds a NUL character names no
//! user, so the token is refused with 401 `UNAUTHENTICATED` (not an internal error from
//! PostgreSQL, and not a row written for a blank user).

use graphql::config::ServerConfig;

use super::*;

const SECRET: &str = "a-hostile-input-test-secret-long-enough";

/// Posts `{ me { id } }` with a token for `sub` to a real server over `t`'s database; returns
/// the status and the body.
async fn me_over_http(t: &support::TestDb, sub: &str) -> (u16, Value) {
    let config = ServerConfig {
        database_url: t.url.clone(),
        jwt_secret: Some(SECRET.to_owned()),
        jwt_jwks_url: None,
        ..ServerConfig::default()
    };
    let app = support::start_app(config).await;
    let base = format!("http://{}", app.addr);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": sub, "exp": chrono::Utc::now().timestamp() + 600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(r#"{"query":"{ me { id } updateSettings(input: {}) { id } }"}"#)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    app.stop().await.unwrap();
    (status, body)
}

on_both_databases!(
    a_token_whose_sub_is_blank_or_holds_a_nul_is_unauthenticated,
    |t| {
        for (sub, message) in [
            ("   ", "token has no subject"),
            ("\t\n", "token has no subject"),
            ("alice\u{0}", "token subject contains a NUL character"),
            ("\u{0}", "token subject contains a NUL character"),
        ] {
            // Act
            let (status, body) = me_over_http(t, sub).await;

            // Assert
            assert_eq!(status, 401, "{sub:?}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{sub:?}: {body}"
            );
            assert_eq!(body["errors"][0]["message"], message, "{sub:?}");
        }
        let app = TestApp::on(t);
        assert_eq!(app.count("users").await, 0);
    }
);
