//! Sign-in to the web app through an OpenID Connect provider (authorization code flow with
//! PKCE, run by the browser). This module holds the settings (`OIDC_*` flags), checks them at
//! start-up and serves them to the app at `GET /auth/oidc`.
//!
//! What it deliberately is not: a relying-party backend. The server never sees a code, a
//! client secret or a refresh token; the app (a public client) exchanges the code itself and
//! sends the resulting JWT as its bearer token, which the gateway verifies like any other
//! against the provider's keys (`JWT_JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`). That is why OIDC
//! sign-in requires `JWT_JWKS_URL`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::http::AppState;

/// The web app's OpenID Connect sign-in. Off unless both the issuer and the client id are set.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OidcArgs {
    /// OpenID Connect issuer URL for the web app's "Sign in with…" button (the provider's
    /// discovery document is at ISSUER/.well-known/openid-configuration). https://, or http://
    /// on a loopback address. Needs OIDC_CLIENT_ID and JWT_JWKS_URL (the provider's keys).
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The web app's client id at the provider: a public client (no secret) allowed the
    /// authorization code flow with PKCE and this server's `/` as redirect URI.
    #[arg(long, env = "OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// Scopes the app asks for (space-separated; must include `openid`).
    #[arg(long, env = "OIDC_SCOPES", default_value = "openid profile email")]
    pub oidc_scopes: String,

    /// Which token the app sends to the API: `id_token` (always a JWT whose audience is the
    /// client id; set JWT_AUDIENCE to the client id) or `access_token` (for providers that
    /// issue JWT access tokens for an API scope).
    #[arg(long, env = "OIDC_TOKEN", value_enum, default_value_t = OidcToken::IdToken)]
    pub oidc_token: OidcToken,
}

/// The token the app uses as its bearer token.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum OidcToken {
    #[default]
    IdToken,
    AccessToken,
}

/// Checked settings, as served to the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcSettings {
    /// The issuer without a trailing slash.
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub token: OidcToken,
    /// The issuer's origin, which the page's content security policy lets the app connect to
    /// (discovery and the token endpoint). A provider whose endpoints live on another origin
    /// is refused by the browser; the app says so.
    #[serde(skip)]
    pub origin: String,
}

impl OidcArgs {
    /// The settings, `None` when OIDC sign-in is off. `jwks_configured`: whether the gateway
    /// verifies tokens against a JWKS (otherwise the provider's tokens could not be accepted).
    /// Errors name the flag at fault.
    pub fn settings(&self, jwks_configured: bool) -> anyhow::Result<Option<OidcSettings>> {
        let (issuer, client_id) = match (set(&self.oidc_issuer), set(&self.oidc_client_id)) {
            (None, None) => return Ok(None),
            (Some(issuer), Some(client_id)) => (issuer, client_id),
            (Some(_), None) => anyhow::bail!("OIDC_ISSUER is set without OIDC_CLIENT_ID"),
            (None, Some(_)) => anyhow::bail!("OIDC_CLIENT_ID is set without OIDC_ISSUER"),
        };
        let url = reqwest::Url::parse(issuer)
            .map_err(|e| anyhow::anyhow!("OIDC_ISSUER is not a URL ({e}): {issuer:?}"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        anyhow::ensure!(
            url.scheme() == "https" || (url.scheme() == "http" && loopback),
            "OIDC_ISSUER must be an https:// URL (http:// only on a loopback address), not {issuer:?}"
        );
        anyhow::ensure!(
            url.query().is_none() && url.fragment().is_none() && url.username().is_empty(),
            "OIDC_ISSUER must not carry a query, a fragment or credentials: {issuer:?}"
        );
        anyhow::ensure!(
            client_id.chars().all(|c| c.is_ascii_graphic()) && client_id.len() <= 255,
            "OIDC_CLIENT_ID must be printable ASCII without spaces, at most 255 characters"
        );
        anyhow::ensure!(
            self.oidc_scopes.split_whitespace().any(|s| s == "openid"),
            "OIDC_SCOPES must include `openid`, not {:?}",
            self.oidc_scopes
        );
        anyhow::ensure!(
            jwks_configured,
            "OIDC_ISSUER needs JWT_JWKS_URL (the provider's jwks_uri, with JWT_ISSUER and \
             JWT_AUDIENCE), or the gateway cannot accept the tokens the app signs in with"
        );
        Ok(Some(OidcSettings {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            scopes: self
                .oidc_scopes
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            token: self.oidc_token,
            origin: url.origin().ascii_serialization(),
        }))
    }
}

/// A flag's trimmed value, `None` when unset or blank.
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /auth/oidc`: the settings as JSON, or 404 when OIDC sign-in is off.
pub async fn settings(State(state): State<Arc<AppState>>) -> Response {
    let Some(oidc) = &state.oidc else {
        return (StatusCode::NOT_FOUND, "OIDC sign-in is not configured").into_response();
    };
    let mut response = axum::Json(oidc).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(issuer: Option<&str>, client_id: Option<&str>) -> OidcArgs {
        OidcArgs {
            oidc_issuer: issuer.map(str::to_owned),
            oidc_client_id: client_id.map(str::to_owned),
            oidc_scopes: "openid profile email".to_owned(),
            oidc_token: OidcToken::IdToken,
        }
    }

    #[test]
    fn off_without_settings_and_checked_when_set() {
        assert_eq!(args(None, None).settings(false).unwrap(), None);
        let on = args(
            Some("https://login.example.com/tenant/v2.0/"),
            Some("taskstream-web"),
        )
        .settings(true)
        .unwrap()
        .unwrap();
        assert_eq!(on.issuer, "https://login.example.com/tenant/v2.0");
        assert_eq!(on.origin, "https://login.example.com");
        assert_eq!(on.client_id, "taskstream-web");
        let json = serde_json::to_value(&on).unwrap();
        assert_eq!(json["token"], "id_token");
        assert_eq!(json["clientId"], "taskstream-web");
        assert!(json.get("origin").is_none());
        let local = args(Some("http://127.0.0.1:9000"), Some("web")).settings(true);
        assert!(local.unwrap().is_some());
    }

    #[test]
    fn bad_settings_are_refused_naming_the_flag() {
        let cases = [
            (args(Some("https://idp.example"), None), "OIDC_CLIENT_ID"),
            (args(None, Some("web")), "OIDC_ISSUER"),
            (args(Some("idp.example"), Some("web")), "OIDC_ISSUER"),
            (args(Some("http://idp.example"), Some("web")), "https://"),
            (args(Some("https://idp.example/?x=1"), Some("web")), "query"),
            (
                args(Some("https://idp.example"), Some("a b")),
                "OIDC_CLIENT_ID",
            ),
        ];
        for (args, named) in cases {
            let err = args.settings(true).unwrap_err().to_string();
            assert!(err.contains(named), "{args:?}: {err}");
        }
        let no_jwks = args(Some("https://idp.example"), Some("web")).settings(false);
        assert!(no_jwks.unwrap_err().to_string().contains("JWT_JWKS_URL"));
        let mut no_openid = args(Some("https://idp.example"), Some("web"));
        no_openid.oidc_scopes = "profile email".to_owned();
        let err = no_openid.settings(true).unwrap_err().to_string();
        assert!(err.contains("OIDC_SCOPES"), "{err}");
    }
}
