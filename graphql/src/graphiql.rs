//! GraphiQL at `GET /graphiql`, served entirely from the binary: it works with no network, and
//! what runs in the browser is pinned.
//!
//! Routes (both 404 when `DISABLE_GRAPHIQL` is set):
//! - `GET /graphiql`: the page. Never stored (`no-store`: it may carry the development token,
//!   and each response has its own style nonce), with a strict content security policy
//!   ([`CONTENT_SECURITY_POLICY`]). It loads only the assets below, each with a subresource
//!   integrity hash, and carries its settings (endpoints, the style nonce and, in development
//!   mode, the token) as a JSON data block that `taskstream-graphiql.js` reads: no inline
//!   script.
//! - `GET /graphiql/assets/{version}/{file}`: the assets. `version` is the GraphiQL version and
//!   a hash of every asset, so a URL never changes meaning and is cached for a year
//!   (`immutable`); any other version is a 404.
//!
//! The assets live in `graphql/graphiql/`: the npm packages' browser bundles, byte for byte
//! (GraphiQL [`GRAPHIQL_VERSION`] and React/ReactDOM [`REACT_VERSION`], UMD production builds;
//! GraphiQL's bundle includes its own dependencies, graphql-ws among them), fetched and
//! checked against `SHA256SUMS` by `scripts/vendor-graphiql.sh`, plus Taskstream's own
//! start-up script and stylesheet.
//!
//! What it deliberately is not: a CDN page. async-graphql's `GraphiQLSource` loads unpinned
//! scripts from unpkg without integrity hashes, and offline it never gets past "Loading...".

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

use crate::http::AppState;

/// The vendored GraphiQL (npm `graphiql`). Bump it with `scripts/vendor-graphiql.sh`.
pub const GRAPHIQL_VERSION: &str = "3.9.0";

/// The vendored React and ReactDOM (npm `react`, `react-dom`): GraphiQL 3's UMD bundle expects
/// them as the globals `React` and `ReactDOM`, and React 18 is the last with UMD builds.
pub const REACT_VERSION: &str = "18.3.1";

/// The GraphiQL routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/graphiql", get(graphiql))
        .route("/graphiql/assets/{version}/{file}", get(asset))
}

/// The asset version in the page's URLs: [`GRAPHIQL_VERSION`] and a hash of every asset.
pub fn assets_version() -> &'static str {
    &ASSETS_VERSION
}

/// The GraphiQL page; with `dev_token`, GraphiQL opens with it in its Headers tab, and its
/// requests and subscriptions carry it. The page is a template: each response puts its own
/// style nonce in place of [`STYLE_NONCE_PLACEHOLDER`].
pub fn page(dev_token: Option<&str>) -> String {
    let settings = serde_json::json!({
        "endpoint": "/graphql",
        "subscriptionEndpoint": "/graphql/ws",
        "styleNonce": STYLE_NONCE_PLACEHOLDER,
        "token": dev_token,
    });
    // A JSON block inside <script> ends at the first "</script"; escaping `<` (and `>` and `&`
    // for good measure) keeps any value from closing it.
    let settings = settings
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let url = |name: &str| format!("/graphiql/assets/{}/{name}", assets_version());
    let script = |name: &str| {
        format!(
            r#"<script defer src="{}" integrity="{}"></script>"#,
            url(name),
            integrity(name)
        )
    };
    let stylesheets = STYLESHEETS
        .iter()
        .map(|name| {
            format!(
                r#"<link rel="stylesheet" href="{}" integrity="{}">"#,
                url(name),
                integrity(name)
            )
        })
        .collect::<Vec<_>>()
        .join("\n    ");
    // `defer` scripts run in document order, after parsing: React, ReactDOM, GraphiQL, then
    // the start-up script that reads the settings block.
    let scripts = SCRIPTS
        .iter()
        .map(|name| script(name))
        .collect::<Vec<_>>()
        .join("\n    ");
    format!(
        r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <title>Taskstream GraphiQL</title>
    <link rel="icon" href="data:,">
    {stylesheets}
    <script id="graphiql-settings" type="application/json">{settings}</script>
    {scripts}
  </head>
  <body>
    <div id="graphiql">Loading...</div>
    <noscript>GraphiQL needs JavaScript.</noscript>
  </body>
</html>
"#
    )
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
            body: include_str!(concat!("../graphiql/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page may load (the licences ship with the binary too, for the record).
const ASSETS: &[Asset] = &[
    asset!("react.production.min.js", JS),
    asset!("react-dom.production.min.js", JS),
    asset!("graphiql.min.js", JS),
    asset!("graphiql.min.css", "text/css; charset=utf-8"),
    asset!("taskstream-graphiql.js", JS),
    asset!("taskstream-graphiql.css", "text/css; charset=utf-8"),
    asset!("LICENSE.graphiql", "text/plain; charset=utf-8"),
    asset!("LICENSE.react", "text/plain; charset=utf-8"),
];

/// The scripts of the page, in the order they must run.
const SCRIPTS: &[&str] = &[
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "taskstream-graphiql.js",
];

/// The stylesheets of the page, in cascade order.
const STYLESHEETS: &[&str] = &["graphiql.min.css", "taskstream-graphiql.css"];

/// What the page template has where each response's style nonce goes.
pub const STYLE_NONCE_PLACEHOLDER: &str = "{{STYLE_NONCE}}";

/// The page runs only this origin's scripts (no inline script, no eval) and talks only to
/// this origin: `'self'`, which CSP Level 3 browsers also match against the same-origin
/// WebSocket, plus that WebSocket's `ws:`/`wss:` origin spelled out for browsers that do not
/// (added per request from `Host`, see [`policy_for`]). Fonts and icons are `data:` URLs in
/// GraphiQL's stylesheet.
///
/// Styles need no `'unsafe-inline'` either. GraphiQL 3, CodeMirror 5 and React change styles
/// through the CSSOM (`element.style`), which the policy does not govern, and write no `style`
/// attributes; the one `<style>` element is the scroll lock of GraphiQL's dialogs (Radix UI's
/// `react-remove-scroll`), which gives it the nonce of the global `__webpack_nonce__`, so each
/// response allows a fresh random nonce ([`policy_for`]) that the start-up script sets there.
/// The browser tests fail on any policy violation while using the editor, the docs, hints,
/// dialogs, results and subscriptions.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
    object-src 'none'";

/// Assets are addressed by content, so they may be cached for as long as browsers allow.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

static ASSETS_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for asset in ASSETS {
        hash.update(asset.name.as_bytes());
        hash.update([0]);
        hash.update(asset.body.as_bytes());
    }
    let hash = hash.finalize();
    let short: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{GRAPHIQL_VERSION}-{short}")
});

/// The `integrity` attribute value of the asset `name` (SHA-384, as browsers recommend).
fn integrity(name: &str) -> String {
    let body = ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.body)
        .expect("BUG: the page names an asset that is not embedded");
    let digest = Sha384::digest(body.as_bytes());
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// A fresh style nonce: 128 random bits, base64.
fn style_nonce() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// [`CONTENT_SECURITY_POLICY`] allowing `<style nonce="{nonce}">`, and with the WebSocket
/// origins of the host the page was requested from when `Host` is a plain `host[:port]`
/// (anything else keeps just `'self'`).
fn policy_for(headers: &HeaderMap, nonce: &str) -> HeaderValue {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    let policy = CONTENT_SECURITY_POLICY.replace(
        "style-src 'self'",
        &format!("style-src 'self' 'nonce-{nonce}'"),
    );
    let policy = match host {
        Some(host) => policy.replace(
            "connect-src 'self'",
            &format!("connect-src 'self' ws://{host} wss://{host}"),
        ),
        None => policy,
    };
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY))
}

async fn graphiql(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let Some(html) = &state.graphiql_html else {
        return (StatusCode::NOT_FOUND, "GraphiQL is disabled").into_response();
    };
    // The development token goes only to a page addressed to this machine, as `/dev/token`
    // does: a DNS-rebinding page on another name gets GraphiQL without it.
    let tokenless;
    let html =
        if state.auth.is_development() && crate::web::loopback_request(&uri, &headers).is_err() {
            tokenless = page(None);
            &tokenless
        } else {
            html
        };
    let nonce = style_nonce();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                policy_for(&headers, &nonce),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        html.replace(STYLE_NONCE_PLACEHOLDER, &nonce),
    )
        .into_response()
}

async fn asset(
    State(state): State<Arc<AppState>>,
    Path((version, file)): Path<(String, String)>,
) -> Response {
    if state.graphiql_html.is_none() {
        return (StatusCode::NOT_FOUND, "GraphiQL is disabled").into_response();
    }
    let found = ASSETS.iter().find(|a| a.name == file);
    let Some(asset) = found.filter(|_| version == assets_version()) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_block_cannot_be_closed_by_a_value() {
        let html = page(Some("</script><script>alert(1)</script>"));
        assert_eq!(html.matches("</script>").count(), SCRIPTS.len() + 1);
        assert!(html.contains("\\u003c/script\\u003e"));
    }

    #[test]
    fn a_host_with_other_characters_keeps_the_policy_as_it_is() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("evil; script-src *"));
        let policy = policy_for(&headers, "bm9uY2U=");
        assert!(policy.to_str().unwrap().contains("connect-src 'self';"));
        assert!(!policy.to_str().unwrap().contains("evil"));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let policy = policy_for(&headers, "bm9uY2U=");
        let policy = policy.to_str().unwrap();
        assert!(policy.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
        assert!(policy.contains("style-src 'self' 'nonce-bm9uY2U=';"));
    }
}
