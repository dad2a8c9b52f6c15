//! The web app's routes on the real server: the page, its assets (content types, caching), the
//! OpenID Connect sign-in settings (and the page's policy allowing the provider) and the
//! development token route, which exists only in development mode. The app itself is tested in
//! a browser (`web/tests`), sign-in with a real provider included.
#![allow(clippy::unwrap_used)]

mod support;

use graphql::config::ServerConfig;
use graphql::oidc::{OidcArgs, OidcToken};
use serde_json::{Value, json};

const SECRET: &str = "a-web-test-secret-that-is-long-enough";

type WebServer = support::HttpServer;

/// The user `token` signs in as (`{ me { id } }`).
async fn me(server: &support::HttpServer, token: &str) -> Value {
    let response = server
        .client
        .post(format!("{}/graphql", server.base))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(r#"{"query":"{ me { id } }"}"#)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// A provider's keys (the test fixture) served on a loopback port; returns the JWKS URL.
async fn serve_jwks() -> String {
    const JWKS: &str = include_str!("fixtures/jwks.json");
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(|| async { ([("content-type", "application/json")], JWKS) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Sign-in with `issuer`'s provider for the client `taskstream-web`.
fn oidc(issuer: &str) -> OidcArgs {
    OidcArgs {
        oidc_issuer: Some(issuer.to_owned()),
        oidc_client_id: Some("taskstream-web".to_owned()),
        oidc_scopes: "openid profile email".to_owned(),
        oidc_token: OidcToken::IdToken,
    }
}

/// The `connect-src` directive of a content security policy.
fn connect_src(policy: &str) -> &str {
    policy
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("connect-src"))
        .unwrap_or_else(|| panic!("no connect-src in {policy}"))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_revalidated_and_locked_to_its_origin() {
    let server = WebServer::start(Some(SECRET)).await;

    let page = server.get("/").await;

    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    let html = page.text().await.unwrap();
    let version = graphql::web::version();
    assert!(html.contains(&format!("/app/{version}/main.js")), "{html}");
    assert!(html.contains(&format!("/app/{version}/style.css")));
    assert!(!html.contains("{{VERSION}}"));
}

#[tokio::test]
async fn assets_have_their_content_types_and_are_cached_by_version() {
    let server = WebServer::start(Some(SECRET)).await;
    let version = graphql::web::version();

    let script = server.get(&format!("/app/{version}/main.js")).await;
    let style = server.get(&format!("/app/{version}/style.css")).await;
    let icon = server.get(&format!("/app/{version}/icon.svg")).await;
    let outdated = server.get("/app/0000000000000000/tasks.js").await;
    let missing = server.get(&format!("/app/{version}/secrets.js")).await;
    let traversal = server.get(&format!("/app/{version}/..%2FCargo.toml")).await;

    assert_eq!(script.status().as_u16(), 200);
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header(&script, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&script, "x-content-type-options"), "nosniff");
    assert!(script.text().await.unwrap().contains("import "));
    assert_eq!(header(&style, "content-type"), "text/css; charset=utf-8");
    assert_eq!(header(&icon, "content-type"), "image/svg+xml");
    assert_eq!(outdated.status().as_u16(), 200);
    assert_eq!(
        header(&outdated, "cache-control"),
        "no-cache",
        "another version's URL is served, but not cached"
    );
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(traversal.status().as_u16(), 404);
}

#[tokio::test]
async fn every_module_the_page_imports_is_served() {
    let server = WebServer::start(Some(SECRET)).await;
    let version = graphql::web::version();
    let mut pending = vec!["main.js".to_owned()];
    let mut seen = std::collections::BTreeSet::new();

    while let Some(file) = pending.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let response = server.get(&format!("/app/{version}/{file}")).await;
        assert_eq!(response.status().as_u16(), 200, "{file} is served");
        let source = response.text().await.unwrap();
        for import in source.split("from './").skip(1) {
            let name = import.split('\'').next().unwrap();
            pending.push(name.to_owned());
        }
    }

    assert!(seen.len() >= 5, "{seen:?}");
}

#[tokio::test]
async fn development_mode_hands_the_app_a_token_for_the_development_user() {
    let server = WebServer::start(None).await;

    let response = server.get("/dev/token").await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], graphql::startup::DEV_USER);
    let token = body["token"].as_str().unwrap();
    let me = me(&server, token).await;
    assert_eq!(me["data"]["me"]["id"], graphql::startup::DEV_USER);
}

#[tokio::test]
async fn development_mode_gives_a_token_to_any_loopback_host_and_origin() {
    let server = WebServer::start(None).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();

    for (host, origin) in [
        (format!("localhost:{port}"), None),
        (
            format!("127.0.0.1:{port}"),
            Some(format!("http://127.0.0.1:{port}")),
        ),
        (
            format!("[::1]:{port}"),
            Some(format!("http://localhost:{port}")),
        ),
        (
            format!("app.localhost:{port}"),
            Some("https://app.localhost".to_owned()),
        ),
    ] {
        let mut headers = vec![("host", host.as_str())];
        if let Some(origin) = &origin {
            headers.push(("origin", origin.as_str()));
        }
        let response = server.get_with("/dev/token", &headers).await;

        assert_eq!(response.status().as_u16(), 200, "{host} {origin:?}");
    }
}

#[tokio::test]
async fn development_mode_refuses_a_token_to_a_rebound_host_or_a_foreign_origin() {
    let server = WebServer::start(None).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let loopback = format!("127.0.0.1:{port}");

    for (host, origin, reason) in [
        ("rebound.example", None, "addressed to localhost"),
        ("rebound.example:80", None, "addressed to localhost"),
        ("localhost.rebound.example", None, "addressed to localhost"),
        ("10.0.0.5", None, "addressed to localhost"),
        (
            loopback.as_str(),
            Some("http://rebound.example"),
            "served from localhost",
        ),
        (loopback.as_str(), Some("null"), "served from localhost"),
    ] {
        let mut headers = vec![("host", host)];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }

        let response = server.get_with("/dev/token", &headers).await;

        assert_eq!(response.status().as_u16(), 403, "{host} {origin:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(reason), "{body}");
        assert!(!body.contains("\"token\""), "no token in {body}");
    }
}

#[tokio::test]
async fn outside_development_mode_there_is_no_token_route() {
    let server = WebServer::start(Some(SECRET)).await;

    let response = server.get("/dev/token").await;

    assert_eq!(response.status().as_u16(), 404);
    assert!(!response.text().await.unwrap().contains("ey"));
}

#[tokio::test]
async fn with_oidc_sign_in_the_app_gets_the_settings_and_may_connect_to_the_provider() {
    let server = WebServer::start_with(ServerConfig {
        jwt_secret: None,
        jwt_jwks_url: Some(serve_jwks().await),
        jwt_issuer: Some("https://login.example.com/realms/tasks".to_owned()),
        jwt_audience: Some("taskstream-web".to_owned()),
        oidc: oidc("https://login.example.com/realms/tasks/"),
        ..ServerConfig::default()
    })
    .await;

    let settings = server.get("/auth/oidc").await;
    let page = server.get("/").await;

    assert_eq!(settings.status().as_u16(), 200);
    assert_eq!(header(&settings, "cache-control"), "no-cache");
    let body: Value = settings.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "issuer": "https://login.example.com/realms/tasks",
            "clientId": "taskstream-web",
            "scopes": "openid profile email",
            "token": "id_token",
        })
    );
    assert_eq!(page.status().as_u16(), 200);
    let csp = header(&page, "content-security-policy");
    assert_eq!(
        connect_src(csp),
        "connect-src 'self' https://login.example.com"
    );
    assert!(csp.contains("script-src 'self';"), "{csp}");
}

#[tokio::test]
async fn without_oidc_there_are_no_settings_and_the_page_connects_to_its_origin_only() {
    let server = WebServer::start(Some(SECRET)).await;

    let settings = server.get("/auth/oidc").await;
    let page = server.get("/").await;

    assert_eq!(settings.status().as_u16(), 404);
    assert_eq!(
        connect_src(header(&page, "content-security-policy")),
        "connect-src 'self'"
    );
}

#[tokio::test]
async fn oidc_sign_in_without_a_jwks_is_refused_at_start_up_naming_jwt_jwks_url() {
    let db = support::TestDb::empty(support::Backend::Sqlite)
        .await
        .unwrap();
    let config = ServerConfig {
        database_url: db.url.clone(),
        jwt_secret: Some(SECRET.to_owned()),
        jwt_jwks_url: None,
        oidc: oidc("https://login.example.com"),
        ..ServerConfig::default()
    };

    let built = graphql::startup::build(&config).await;

    let error = built.err().expect("OIDC without a JWKS must be refused");
    assert!(error.to_string().contains("JWT_JWKS_URL"), "{error:#}");
}
