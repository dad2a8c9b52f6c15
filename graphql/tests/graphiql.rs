//! GraphiQL's routes on the real server: the page (its policy, its references, the development
//! token), the vendored assets (content types, caching, integrity, the recorded sums) and
//! `DISABLE_GRAPHIQL`. GraphiQL itself is tested in a browser with every other origin blocked
//! (`web/tests/graphiql.test.mjs`).
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine;
use graphql::config::ServerConfig;
use sha2::{Digest, Sha256, Sha384};

const SECRET: &str = "a-graphiql-test-secret-that-is-long-enough";

type GraphiqlServer = support::HttpServer;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The values of every `attribute="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!(" {attribute}=\"");
    html.match_indices(&marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// The page's assets: `(url, integrity)` of each script and stylesheet, in page order.
fn assets(html: &str) -> Vec<(String, String)> {
    html.lines()
        .filter(|line| line.contains("<script defer ") || line.contains("<link rel=\"stylesheet\""))
        .map(|line| {
            let url = attribute_values(line, "src")
                .into_iter()
                .chain(attribute_values(line, "href"))
                .next()
                .unwrap();
            let integrity = attribute_values(line, "integrity")[0];
            (url.to_owned(), integrity.to_owned())
        })
        .collect()
}

fn directive<'a>(policy: &'a str, name: &str) -> &'a str {
    policy
        .split(';')
        .map(str::trim)
        .find(|d| d.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {policy}"))
}

#[tokio::test]
async fn the_page_is_never_stored_locked_to_its_origin_and_references_nothing_else() {
    let server = GraphiqlServer::start(Some(SECRET)).await;

    let page = server.get("/graphiql").await;

    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let host = server.base.trim_start_matches("http://");
    let policy = header(&page, "content-security-policy").to_owned();
    assert_eq!(directive(&policy, "default-src"), "default-src 'self'");
    assert_eq!(directive(&policy, "script-src"), "script-src 'self'");
    let style_src = directive(&policy, "style-src").to_owned();
    let nonce = style_src
        .strip_prefix("style-src 'self' 'nonce-")
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{style_src}"));
    assert!(nonce.len() >= 22, "a nonce of 128 bits or more: {nonce}");
    assert_eq!(
        directive(&policy, "connect-src"),
        format!("connect-src 'self' ws://{host} wss://{host}"),
        "the API and the WebSocket on the page's own host, nothing else"
    );
    assert_eq!(directive(&policy, "object-src"), "object-src 'none'");
    assert_eq!(
        directive(&policy, "frame-ancestors"),
        "frame-ancestors 'none'"
    );
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(r#""styleNonce":"{nonce}""#)),
        "the page gets the nonce its policy allows"
    );
    let again = server.get("/graphiql").await;
    let again = header(&again, "content-security-policy").to_owned();
    assert_ne!(
        directive(&again, "style-src"),
        style_src,
        "a new nonce each time"
    );
    for other_origin in ["http:", "https:", "ws:", "wss:", "//"] {
        let urls = attribute_values(&html, "src")
            .into_iter()
            .chain(attribute_values(&html, "href"));
        for url in urls {
            assert!(!url.starts_with(other_origin), "{url}");
        }
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(
        html.contains(r#""endpoint":"/graphql""#)
            && html.contains(r#""subscriptionEndpoint":"/graphql/ws""#)
    );
    let scripts_with_code = html
        .match_indices("<script")
        .filter(|(at, _)| {
            let tag = &html[*at..*at + html[*at..].find('>').unwrap()];
            !tag.contains(" src=") && !tag.contains(r#"type="application/json""#)
        })
        .count();
    assert_eq!(
        scripts_with_code, 0,
        "no inline script: the policy forbids it"
    );
}

#[tokio::test]
async fn every_asset_is_served_pinned_typed_and_cached_for_a_year() {
    let server = GraphiqlServer::start(Some(SECRET)).await;
    let html = server.get("/graphiql").await.text().await.unwrap();
    let prefix = format!("/graphiql/assets/{}/", graphql::graphiql::assets_version());
    assert!(prefix.starts_with(&format!(
        "/graphiql/assets/{}-",
        graphql::graphiql::GRAPHIQL_VERSION
    )));

    let assets = assets(&html);

    let names: Vec<&str> = assets
        .iter()
        .map(|(url, _)| url.strip_prefix(&prefix).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "graphiql.min.css",
            "taskstream-graphiql.css",
            "react.production.min.js",
            "react-dom.production.min.js",
            "graphiql.min.js",
            "taskstream-graphiql.js",
        ],
        "React, then ReactDOM, then GraphiQL, then the start-up script"
    );
    for (url, integrity) in &assets {
        let response = server.get(url).await;
        assert_eq!(response.status(), 200, "{url}");
        let expected_type = if url.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(header(&response, "content-type"), expected_type, "{url}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let body = response.bytes().await.unwrap();
        let name = url.strip_prefix(&prefix).unwrap();
        let on_disk = std::fs::read(format!("{}/graphiql/{name}", env!("CARGO_MANIFEST_DIR")));
        assert_eq!(body, on_disk.unwrap(), "{name} is served byte for byte");
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body));
        assert_eq!(integrity, &format!("sha384-{digest}"), "{url}");
    }
    let stale = format!("/graphiql/assets/0.0.0-000000000000/{}", names[0]);
    assert_eq!(server.get(&stale).await.status(), 404);
    assert_eq!(
        server
            .get(&format!("{prefix}graphiql.min.js.map"))
            .await
            .status(),
        404
    );
}

#[test]
fn the_vendored_files_match_their_recorded_sha256_sums() {
    let dir = format!("{}/graphiql", env!("CARGO_MANIFEST_DIR"));
    let sums = std::fs::read_to_string(format!("{dir}/SHA256SUMS")).unwrap();
    let mut names = Vec::new();
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").unwrap();
        let body = std::fs::read(format!("{dir}/{name}")).unwrap();
        let digest: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest, sum,
            "{name} differs from what scripts/vendor-graphiql.sh fetched"
        );
        names.push(name);
    }
    for vendored in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(names.contains(&vendored), "{vendored} has no recorded sum");
    }
}

#[tokio::test]
async fn disable_graphiql_removes_the_page_and_its_assets() {
    let server = GraphiqlServer::start_with(ServerConfig {
        jwt_secret: None,
        jwt_jwks_url: None,
        disable_graphiql: true,
        ..ServerConfig::default()
    })
    .await;
    let prefix = format!("/graphiql/assets/{}/", graphql::graphiql::assets_version());

    assert_eq!(server.get("/graphiql").await.status(), 404);
    for name in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "taskstream-graphiql.js",
    ] {
        let response = server.get(&format!("{prefix}{name}")).await;
        assert_eq!(response.status(), 404, "{name}");
    }
}

#[tokio::test]
async fn only_development_mode_puts_the_token_in_the_page() {
    let development = GraphiqlServer::start(None).await;
    let with_secret = GraphiqlServer::start(Some(SECRET)).await;
    let token = development.dev_token.clone().unwrap();

    let development_page = development.get("/graphiql").await.text().await.unwrap();
    let secret_page = with_secret.get("/graphiql").await.text().await.unwrap();

    assert!(
        development_page.contains(&format!(r#""token":"{token}""#)),
        "the token printed at start-up is the one GraphiQL sends"
    );
    assert!(secret_page.contains(r#""token":null"#));
    assert!(!secret_page.contains("Bearer"));

    // A page asked for under another name (DNS rebinding) or from another origin gets no token.
    for (header, value) in [
        ("host", "attacker.example:8080"),
        ("origin", "http://attacker.example"),
    ] {
        let page = reqwest::Client::new()
            .get(format!("{}/graphiql", development.base))
            .header(header, value)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(r#""token":null"#), "{header}: {value}");
        assert!(!page.contains(&token), "{header}: {value}");
    }
}
