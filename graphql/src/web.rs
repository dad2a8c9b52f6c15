//! The web app: plain ES modules and one stylesheet (no framework, no build step) embedded in
//! the binary, so `cargo run --release` serves a complete task UI with no Node.js anywhere.
//! It talks to the public GraphQL API only (`POST /graphql`, `/graphql/ws`); this module
//! serves files and, in development mode, a token.
//!
//! Routes:
//! - `GET /`: the page. It is revalidated on every load (`no-cache`) and carries a strict
//!   content security policy (scripts, styles and connections from this origin only).
//! - `GET /app/{version}/{file}`: the assets. `version` is a hash of every asset's contents,
//!   so a URL never changes meaning and is cached for a year (`immutable`); the modules import
//!   each other by relative path and so stay within one version. An outdated version still
//!   gets the current file, uncached, so a page loaded just before an upgrade keeps working.
//! - `GET /auth/oidc`: the OpenID Connect sign-in settings ([`crate::oidc`]), 404 when off.
//!   With them on, the page's policy also lets the app connect to the provider's origin.
//! - `GET /dev/token`: only in development mode (the server generated its own signing key),
//!   a fresh token for [`DEV_USER`], the user of the token printed at start-up, so tasks made
//!   in GraphiQL show up in the app. The route does not exist otherwise (404). It answers only a
//!   request addressed to a loopback name (`Host` is `localhost`, a `*.localhost` name,
//!   `127.0.0.0/8` or `[::1]`, any port) and, when the request carries an `Origin`, coming from
//!   a loopback origin too; anything else gets 403. A web page on another site cannot read the
//!   token anyway (no CORS), but with DNS rebinding its own name resolves to 127.0.0.1, the
//!   request becomes same-origin, and only the `Host` it carries gives it away.
//!
//! What it deliberately is not: an asset pipeline. The files are few and small; they are
//! embedded with `include_str!` rather than a crate that walks a directory.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::http::AppState;
use crate::startup::{DEV_TOKEN_TTL, DEV_USER};

/// The web app's routes; `development` adds `GET /dev/token`.
pub fn router(development: bool) -> Router<Arc<AppState>> {
    let router = Router::new()
        .route("/", get(index))
        .route("/app/{version}/{file}", get(asset))
        .route("/auth/oidc", get(crate::oidc::settings));
    if development {
        router.route("/dev/token", get(dev_token))
    } else {
        router
    }
}

/// The asset version: a hash of every embedded file, in the asset URLs of the page.
pub fn version() -> &'static str {
    &VERSION
}

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../../web/app/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page may load. A file missing from this list is a 404, so adding a module
/// means adding a line here (`tests/web.rs` follows the imports from `main.js` and would
/// catch the omission).
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("api.js", JS),
    asset!("live.js", JS),
    asset!("dom.js", JS),
    asset!("time.js", JS),
    asset!("recurrence.js", JS),
    asset!("tasks.js", JS),
    asset!("task_views.js", JS),
    asset!("task_controls.js", JS),
    asset!("quick_add.js", JS),
    asset!("quick_add_words.js", JS),
    asset!("quick_add_form.js", JS),
    asset!("phrases.js", JS),
    asset!("undo.js", JS),
    asset!("history.js", JS),
    asset!("history_words.js", JS),
    asset!("deleted.js", JS),
    asset!("editor.js", JS),
    asset!("reminders.js", JS),
    asset!("tags.js", JS),
    asset!("notifications.js", JS),
    asset!("operations.js", JS),
    asset!("priority.js", JS),
    asset!("store.js", JS),
    asset!("task_store.js", JS),
    asset!("deleted_store.js", JS),
    asset!("tag_store.js", JS),
    asset!("notification_store.js", JS),
    asset!("signin.js", JS),
    asset!("oidc.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

const INDEX_TEMPLATE: &str = include_str!("../../web/app/index.html");

/// A page may run only this origin's scripts and styles and talk only to this origin (which
/// includes its WebSocket), so injected markup can neither run nor exfiltrate anything.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Assets are addressed by content, so they may be cached for as long as browsers allow.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and platforms, and collisions only cost a stale cache.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let files = ASSETS.iter().map(|a| a.body).chain([INDEX_TEMPLATE]);
    for byte in files.flat_map(str::bytes) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
});

static INDEX: LazyLock<String> = LazyLock::new(|| INDEX_TEMPLATE.replace("{{VERSION}}", version()));

async fn index(State(state): State<Arc<AppState>>) -> Response {
    // The OIDC provider's discovery document and token endpoint are fetched by the app.
    let policy = match &state.oidc {
        Some(oidc) => CONTENT_SECURITY_POLICY.replace(
            "connect-src 'self'",
            &format!("connect-src 'self' {}", oidc.origin),
        ),
        None => CONTENT_SECURITY_POLICY.to_owned(),
    };
    let policy =
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, policy),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        INDEX.as_str(),
    )
        .into_response()
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let cache = if version == self::version() {
        IMMUTABLE
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}

async fn dev_token(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Response {
    // The route exists only in development mode; checking again keeps a wiring mistake from
    // handing out tokens signed with a real secret.
    if !state.auth.is_development() {
        return (StatusCode::NOT_FOUND, "not in development mode").into_response();
    }
    if let Err(reason) = loopback_request(&uri, &headers) {
        return (StatusCode::FORBIDDEN, reason).into_response();
    }
    let Some(token) = state.auth.issue_token(DEV_USER, DEV_TOKEN_TTL) else {
        return (StatusCode::NOT_FOUND, "not in development mode").into_response();
    };
    let mut response = axum::Json(json!({ "token": token, "user": DEV_USER })).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A token is a credential: other origins must not read it.
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Checks that a request was addressed to this machine by a loopback name (`Host`, or the
/// URI's authority under HTTP/2) and, when it has an `Origin`, comes from a loopback origin.
/// The error is the sentence the client gets.
pub(crate) fn loopback_request(uri: &Uri, headers: &HeaderMap) -> Result<(), &'static str> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    if !host.is_some_and(is_loopback_authority) {
        return Err(
            "the development token is only given to requests addressed to localhost, \
                    127.0.0.1 or [::1]",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let authority = origin.to_str().ok().and_then(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
        });
        if !authority.is_some_and(is_loopback_authority) {
            return Err(
                "the development token is only given to pages served from localhost, \
                        127.0.0.1 or [::1]",
            );
        }
    }
    Ok(())
}

/// Whether `authority` (`host` or `host:port`, an IPv6 host in brackets) names this machine:
/// `localhost` or a name under it (RFC 6761 reserves them for loopback), an address in
/// `127.0.0.0/8`, or `[::1]`. Anything with a path, user info or an unbracketed IPv6 address is
/// not an authority and is refused.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || is_port_suffix(after)) {
            return false;
        }
        return inside
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    } else {
        match authority.split_once(':') {
            Some((host, port)) if is_port_suffix(&format!(":{port}")) => host,
            Some(_) => return false,
            None => authority,
        }
    };
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return ip.is_loopback();
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    name == "localhost"
        || name
            .strip_suffix(".localhost")
            .is_some_and(|sub| sub.split('.').all(label_ok))
}

/// Whether `suffix` is `:` and a port number.
fn is_port_suffix(suffix: &str) -> bool {
    suffix
        .strip_prefix(':')
        .is_some_and(|port| !port.is_empty() && port.len() <= 5 && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_with_any_port_are_loopback_authorities() {
        for authority in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:3000",
            "app.localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:80",
        ] {
            assert!(is_loopback_authority(authority), "{authority}");
        }
    }

    #[test]
    fn other_hosts_and_malformed_authorities_are_not_loopback() {
        for authority in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evillocalhost",
            "10.0.0.1:8080",
            "0.0.0.0:8080",
            "[::ffff:127.0.0.1]:8080",
            "[::]:8080",
            "::1",
            "[::1]x",
            "localhost:",
            "localhost:99999",
            "localhost:80:80",
            "user@localhost",
            "localhost/x",
            "a..localhost",
        ] {
            assert!(!is_loopback_authority(authority), "{authority}");
        }
    }

    #[test]
    fn a_request_needs_a_loopback_host_and_if_any_a_loopback_origin() {
        let uri: Uri = "/dev/token".parse().expect("BUG: test URI");
        let headers = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), HeaderValue::from_static(value));
            }
            map
        };
        assert!(loopback_request(&uri, &headers(&[(header::HOST, "localhost:8080")])).is_ok());
        assert!(
            loopback_request(
                &uri,
                &headers(&[
                    (header::HOST, "127.0.0.1:8080"),
                    (header::ORIGIN, "http://localhost:8080")
                ])
            )
            .is_ok()
        );
        assert!(loopback_request(&uri, &headers(&[])).is_err());
        assert!(loopback_request(&uri, &headers(&[(header::HOST, "rebound.example")])).is_err());
        for origin in ["null", "https://evil.example", "http://localhost:8080/path"] {
            let map = headers(&[(header::HOST, "localhost:8080"), (header::ORIGIN, origin)]);
            assert!(loopback_request(&uri, &map).is_err(), "{origin}");
        }
    }
}
