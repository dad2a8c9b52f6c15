//! The bearer token before and after jsonwebtoken looks at it: extracting it from the
//! `Authorization` header, reading its header (`alg`, `kid`, `crit`) before the signature is
//! checked, the claims read and issued, and the mapping of jsonwebtoken's failures to a
//! client-facing [`AuthError`].
//!
//! What it is not: it checks no signature, picks no key and decides no accepted algorithm (the
//! [`Authenticator`](super::Authenticator) does).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// The parts of a token's header read before the signature is checked.
#[derive(Deserialize)]
pub(super) struct RawHeader {
    pub(super) alg: String,
    #[serde(default)]
    pub(super) kid: Option<String>,
    #[serde(default)]
    pub(super) crit: Option<serde_json::Value>,
}

/// The claims this module checks itself; jsonwebtoken checks `exp`, `nbf`, `aud` and `iss`.
#[derive(Deserialize)]
pub(super) struct Claims {
    pub(super) sub: Option<String>,
    /// Read again (after jsonwebtoken has checked it) to close a WebSocket when it passes; a
    /// JSON number, which may be written with a fraction.
    #[serde(default)]
    pub(super) exp: Option<f64>,
}

#[derive(Serialize)]
pub(super) struct IssuedClaims<'a> {
    pub(super) sub: &'a str,
    pub(super) iat: u64,
    pub(super) exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) iss: Option<&'a str>,
}

/// Extracts the token from `Bearer <token>`: the scheme in any case, exactly one space, and a
/// non-empty token without whitespace.
pub(super) fn bearer_token(value: &str) -> Result<&str, AuthError> {
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedHeader)?;
    if !scheme.eq_ignore_ascii_case("Bearer")
        || token.is_empty()
        || token.contains(|c: char| c.is_ascii_whitespace())
    {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// Reads the header of a three-part compact JWS. Done here rather than with
/// `jsonwebtoken::decode_header` so that an unknown `alg` such as `none` is reported as not
/// accepted instead of as malformed, and so that `crit` is visible.
pub(super) fn parse_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

/// The `alg` from a token's header as it may appear in an error message: verbatim when it looks
/// like an algorithm name, otherwise a placeholder, so arbitrary client text is not echoed.
pub(super) fn printable_algorithm(name: &str) -> String {
    let looks_like_a_name = !name.is_empty()
        && name.len() <= 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '+');
    if looks_like_a_name {
        name.to_owned()
    } else {
        "(unrecognised)".to_owned()
    }
}

/// Maps a jsonwebtoken failure to the client-facing reason.
pub(super) fn rejection(err: jsonwebtoken::errors::Error, alg: Algorithm) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingExpiry,
            "aud" => AuthError::MissingAudience,
            "iss" => AuthError::MissingIssuer,
            _ => AuthError::Malformed,
        },
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::AlgorithmNotAccepted(format!("{alg:?}"))
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::Malformed,
        other => {
            // Key or crypto failures (e.g. a JWKS key ring cannot use): the token did not verify.
            tracing::debug!(error = ?other, "token verification failed");
            AuthError::InvalidSignature
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::auth::MAX_TOKEN_BYTES;
    use crate::auth::test_support::*;

    // Header and token shape.

    #[tokio::test]
    async fn a_missing_header_is_rejected() {
        assert_rejected(&hs256(), None, "missing Authorization header").await;
    }

    #[tokio::test]
    async fn a_scheme_other_than_bearer_is_rejected() {
        let message = "Authorization header must be 'Bearer <token>'";
        assert_rejected(&hs256(), Some("Basic x"), message).await;
        assert_rejected(&hs256(), Some("Bearer"), message).await;
        assert_rejected(&hs256(), Some(""), message).await;
    }

    #[tokio::test]
    async fn an_empty_token_is_rejected() {
        let message = "Authorization header must be 'Bearer <token>'";
        assert_rejected(&hs256(), Some("Bearer "), message).await;
    }

    #[tokio::test]
    async fn extra_whitespace_around_the_token_is_rejected() {
        let token = hs256()
            .issue_token("user-1", Duration::from_secs(60))
            .expect("HS256 issues");
        let message = "Authorization header must be 'Bearer <token>'";
        assert_rejected(&hs256(), Some(&format!("Bearer  {token}")), message).await;
        assert_rejected(&hs256(), Some(&format!("Bearer {token} x")), message).await;
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive() {
        let auth = hs256();
        let token = auth
            .issue_token("user-1", Duration::from_secs(60))
            .expect("HS256 issues");
        let user = auth
            .authenticate(Some(&format!("bEaReR {token}")))
            .await
            .expect("any case of Bearer is accepted");
        assert_eq!(user.id, "user-1");
    }

    #[tokio::test]
    async fn a_garbage_token_is_rejected() {
        let auth = hs256();
        assert_rejected(&auth, Some("Bearer not-a-jwt"), "token is malformed").await;
        assert_rejected(&auth, Some("Bearer a.b.c"), "token is malformed").await;
        assert_rejected(&auth, Some("Bearer a.b.c.d"), "token is malformed").await;
        // With a readable header, the signature is checked before the payload is even decoded.
        let header = b64(&json!({ "alg": "HS256" }));
        let message = "token signature is invalid";
        assert_rejected(&auth, Some(&format!("Bearer {header}.%%%.x")), message).await;
    }

    #[tokio::test]
    async fn an_over_long_token_is_rejected() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_rejected(
            &hs256(),
            Some(&bearer(&token)),
            "token is longer than 8192 bytes",
        )
        .await;
    }

    // Signature and algorithm.

    #[tokio::test]
    async fn a_tampered_payload_is_rejected() {
        let auth = hs256();
        let token = auth
            .issue_token("user-1", Duration::from_secs(600))
            .expect("HS256 issues");
        let mut parts = token.split('.');
        let (header, _, signature) = (parts.next(), parts.next(), parts.next());
        let forged_payload = b64(&valid_claims("admin"));
        let forged = format!(
            "{}.{forged_payload}.{}",
            header.expect("header part"),
            signature.expect("signature part")
        );
        assert_rejected(&auth, Some(&bearer(&forged)), "token signature is invalid").await;
    }

    #[tokio::test]
    async fn a_token_signed_with_another_secret_is_rejected() {
        let token = hs_token(
            b"another-secret-that-is-also-32-bytes",
            &valid_claims("user-1"),
        );
        assert_rejected(
            &hs256(),
            Some(&bearer(&token)),
            "token signature is invalid",
        )
        .await;
    }

    #[tokio::test]
    async fn an_alg_none_token_is_rejected() {
        let header = b64(&json!({ "alg": "none", "typ": "JWT" }));
        let payload = b64(&valid_claims("user-1"));
        let token = format!("{header}.{payload}.");
        let message = "token algorithm none is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_unprintable_algorithm_is_not_echoed() {
        let header = b64(&json!({ "alg": "<script>alert(1)</script>" }));
        let token = format!("{header}.{}.sig", b64(&valid_claims("user-1")));
        let message = "token algorithm (unrecognised) is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_rs256_token_is_rejected_by_an_hs256_authenticator() {
        let token = rsa_token(Some("rsa-1"), &valid_claims("user-1"));
        let message = "token algorithm RS256 is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_hs512_token_is_rejected_by_an_hs256_authenticator() {
        let token = sign(
            &Header::new(Algorithm::HS512),
            &valid_claims("user-1"),
            &EncodingKey::from_secret(SECRET),
        );
        let message = "token algorithm HS512 is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn a_token_with_a_crit_header_is_rejected() {
        let header = b64(&json!({ "alg": "HS256", "crit": ["exp"] }));
        let payload = b64(&valid_claims("user-1"));
        let token = format!("{header}.{payload}.sig");
        let message = "token has critical header parameters, which are not supported";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }
}
