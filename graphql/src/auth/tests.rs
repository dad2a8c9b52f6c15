//! Unit tests of [`Authenticator`](super::Authenticator) with a shared secret: time claims, the
//! subject, issuing tokens, secrets and modes, audience and issuer.
//!
//! What it is not: the tests of the header and token shape (in `token`) or of JWKS keys (in
//! `jwks`).

use std::time::Duration;

use serde_json::json;

use super::test_support::*;
use super::{AuthUser, Authenticator};

// Time claims.

#[tokio::test]
async fn an_expired_token_is_rejected() {
    let token = hs_token(SECRET, &json!({ "sub": "user-1", "exp": now() - 3600 }));
    assert_rejected(&hs256(), Some(&bearer(&token)), "token has expired").await;
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_accepted() {
    let token = hs_token(SECRET, &json!({ "sub": "user-1", "exp": now() - 10 }));
    let user = hs256()
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("10 s past exp is within the 30 s leeway");
    assert_eq!(user.id, "user-1");
}

#[tokio::test]
async fn a_token_without_exp_is_rejected() {
    let token = hs_token(SECRET, &json!({ "sub": "user-1" }));
    assert_rejected(&hs256(), Some(&bearer(&token)), "token has no expiry (exp)").await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_rejected() {
    let claims = json!({ "sub": "user-1", "nbf": now() + 3600, "exp": now() + 7200 });
    let token = hs_token(SECRET, &claims);
    assert_rejected(&hs256(), Some(&bearer(&token)), "token is not yet valid").await;
}

// Subject.

#[tokio::test]
async fn a_token_without_sub_is_rejected() {
    let token = hs_token(SECRET, &json!({ "exp": now() + 600 }));
    assert_rejected(&hs256(), Some(&bearer(&token)), "token has no subject").await;
}

#[tokio::test]
async fn a_token_with_an_empty_sub_is_rejected() {
    let token = hs_token(SECRET, &valid_claims(""));
    assert_rejected(&hs256(), Some(&bearer(&token)), "token has no subject").await;
}

#[tokio::test]
async fn a_token_with_a_whitespace_only_sub_is_rejected_like_an_empty_one() {
    for sub in [" ", "\t\n", "\u{3000}\u{a0}"] {
        let token = hs_token(SECRET, &valid_claims(sub));
        assert_rejected(&hs256(), Some(&bearer(&token)), "token has no subject").await;
    }
}

#[tokio::test]
async fn a_token_whose_sub_contains_a_nul_character_is_rejected() {
    for sub in ["\u{0}", "alice\u{0}", "\u{0}alice"] {
        let token = hs_token(SECRET, &valid_claims(sub));
        let message = "token subject contains a NUL character";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }
}

#[tokio::test]
async fn a_sub_with_surrounding_spaces_is_kept_verbatim() {
    let token = hs_token(SECRET, &valid_claims(" alice "));
    let user = hs256()
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("a subject with a non-whitespace character is accepted");
    assert_eq!(user.id, " alice ");
}

#[tokio::test]
async fn a_token_with_a_non_string_sub_is_rejected() {
    let token = hs_token(SECRET, &json!({ "sub": 42, "exp": now() + 600 }));
    assert_rejected(&hs256(), Some(&bearer(&token)), "token is malformed").await;
}

#[tokio::test]
async fn a_token_with_an_over_long_sub_is_rejected() {
    let token = hs_token(SECRET, &valid_claims(&"é".repeat(256)));
    let message = "token subject is longer than 255 characters";
    assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
}

#[tokio::test]
async fn a_sub_of_255_characters_is_accepted() {
    let sub = "é".repeat(255);
    let token = hs_token(SECRET, &valid_claims(&sub));
    let user = hs256()
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("255 characters are allowed, whatever their byte length");
    assert_eq!(user.id, sub);
}

// Issuing, secrets and modes.

#[tokio::test]
async fn an_issued_hs256_token_round_trips() {
    let auth = hs256();
    let token = auth
        .issue_token("user-42", Duration::from_secs(300))
        .expect("HS256 issues");
    let user = auth
        .authenticate(Some(&bearer(&token)))
        .await
        .expect("its own token verifies");
    assert_eq!(
        user,
        AuthUser {
            id: "user-42".to_owned()
        }
    );
}

#[test]
fn a_short_secret_is_rejected_with_a_message_naming_jwt_secret() {
    let err = Authenticator::hs256(&[b'x'; 31]).expect_err("31 bytes are too short");
    let text = err.to_string();
    assert!(text.contains("JWT_SECRET"), "{text}");
    assert!(text.contains("32"), "{text}");
    assert!(Authenticator::hs256(&[b'x'; 32]).is_ok());
}

#[tokio::test]
async fn development_authenticators_are_marked_and_do_not_share_secrets() {
    let first = Authenticator::development();
    let second = Authenticator::development();
    assert!(first.is_development());
    assert!(!hs256().is_development());
    let token = first
        .issue_token("dev", Duration::from_secs(60))
        .expect("development issues");
    assert_eq!(
        first
            .authenticate(Some(&bearer(&token)))
            .await
            .expect("own token verifies")
            .id,
        "dev"
    );
    assert_rejected(&second, Some(&bearer(&token)), "token signature is invalid").await;
}

#[test]
fn debug_output_does_not_show_the_secret() {
    let text = format!("{:?}", hs256().with_audience(Some("tasks".to_owned())));
    assert!(text.contains("hs256") && text.contains("tasks"), "{text}");
    assert!(!text.contains("an-hs256-test-secret"), "{text}");
}

// Audience and issuer.

#[tokio::test]
async fn a_configured_audience_is_required() {
    let auth = hs256().with_audience(Some("taskstream".to_owned()));
    let missing = hs_token(SECRET, &valid_claims("user-1"));
    assert_rejected(
        &auth,
        Some(&bearer(&missing)),
        "token has no audience (aud)",
    )
    .await;
    let claims = json!({ "sub": "user-1", "exp": now() + 600, "aud": "billing" });
    let wrong = hs_token(SECRET, &claims);
    assert_rejected(
        &auth,
        Some(&bearer(&wrong)),
        "token audience is not accepted",
    )
    .await;
    let claims = json!({ "sub": "user-1", "exp": now() + 600, "aud": ["billing", "taskstream"] });
    let right = hs_token(SECRET, &claims);
    assert!(auth.authenticate(Some(&bearer(&right))).await.is_ok());
    let issued = auth
        .issue_token("user-1", Duration::from_secs(60))
        .expect("HS256 issues");
    assert!(auth.authenticate(Some(&bearer(&issued))).await.is_ok());
}

#[tokio::test]
async fn without_a_configured_audience_any_audience_is_accepted() {
    let auth = hs256().with_audience(Some(String::new()));
    let claims = json!({ "sub": "user-1", "exp": now() + 600, "aud": "anything" });
    let token = hs_token(SECRET, &claims);
    assert!(auth.authenticate(Some(&bearer(&token))).await.is_ok());
}

#[tokio::test]
async fn a_configured_issuer_is_required() {
    let auth = hs256().with_issuer(Some("https://id.example".to_owned()));
    let missing = hs_token(SECRET, &valid_claims("user-1"));
    assert_rejected(&auth, Some(&bearer(&missing)), "token has no issuer (iss)").await;
    let claims = json!({ "sub": "user-1", "exp": now() + 600, "iss": "https://evil.example" });
    let wrong = hs_token(SECRET, &claims);
    assert_rejected(&auth, Some(&bearer(&wrong)), "token issuer is not accepted").await;
    let issued = auth
        .issue_token("user-1", Duration::from_secs(60))
        .expect("HS256 issues");
    assert!(auth.authenticate(Some(&bearer(&issued))).await.is_ok());
}
