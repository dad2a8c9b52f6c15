//! Cross-origin access to `/graphql` for browser apps served from other origins
//! (`CORS_ALLOWED_ORIGINS`). Off by default: the web app is served by the gateway itself, so
//! it needs none.
//!
//! Clients authenticate with a bearer token in the `Authorization` header, never a cookie, so
//! responses never say `Access-Control-Allow-Credentials`; that is also why `*` (any origin) is
//! safe to offer, and why it may not be mixed with a list. Each listed origin is exactly what a
//! browser sends in `Origin`: `scheme://host[:port]`, http or https, no path. A preflight
//! (`OPTIONS /graphql`) allows GET and POST with the headers a client sends
//! ([`ALLOWED_HEADERS`]) and may be cached for [`PREFLIGHT_MAX_AGE`]. The WebSocket at
//! `/graphql/ws` is not covered: browsers do not apply CORS to WebSockets, and its token
//! travels in `connection_init`.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The flag (and environment variable) named in every error.
pub const FLAG: &str = "CORS_ALLOWED_ORIGINS";

/// Request headers a cross-origin client may send: the token, the body's type, retries
/// (`Idempotency-Key`) and trace context (`traceparent`).
pub const ALLOWED_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("traceparent"),
];

/// Response headers a cross-origin client may read besides the safelisted ones.
const EXPOSED_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("idempotent-replayed"),
];

/// How long a browser may reuse a preflight answer: ten minutes, Chromium's own upper
/// bound, so a changed setting reaches browsers within that time.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin.
    Any,
    /// These origins exactly, as browsers serialise them.
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses the flag's value; `None` (unset or blank) turns CORS off. Errors name the flag.
    pub fn parse(value: Option<&str>) -> Result<Option<AllowedOrigins>, String> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        if items.contains(&"*") {
            if items.len() > 1 {
                return Err(format!(
                    "{FLAG}: `*` allows every origin and cannot be combined with a list; give \
                     either `*` or comma-separated origins"
                ));
            }
            return Ok(Some(AllowedOrigins::Any));
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let origin = parse_origin(item).map_err(|why| format!("{FLAG}: `{item}` {why}"))?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Some(AllowedOrigins::List(origins)))
    }

    /// The tower-http layer answering preflights and marking allowed responses.
    pub fn layer(&self) -> CorsLayer {
        let origin = match self {
            AllowedOrigins::Any => AllowOrigin::any(),
            AllowedOrigins::List(origins) => {
                AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
            }
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(ALLOWED_HEADERS)
            .expose_headers(EXPOSED_HEADERS)
            .max_age(PREFLIGHT_MAX_AGE)
    }
}

/// Validates the flag for clap, so a bad value stops the process before anything starts.
pub fn parse_flag(value: &str) -> Result<String, String> {
    AllowedOrigins::parse(Some(value))?;
    Ok(value.to_owned())
}

/// One origin, `scheme://host[:port]`, serialised as a browser sends it (lowercase host,
/// default port left out).
fn parse_origin(item: &str) -> Result<String, &'static str> {
    let Some((scheme, rest)) = item.split_once("://") else {
        return Err("is not an origin; write scheme://host[:port], e.g. https://app.example.com");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("must use http or https");
    }
    if rest.is_empty() {
        return Err("has no host");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("has a path, query or fragment; an origin is scheme://host[:port] only");
    }
    if rest.contains('@') {
        return Err("has user information; an origin is scheme://host[:port] only");
    }
    let url = url::Url::parse(item).map_err(|_| "is not a valid origin")?;
    if url.host().is_none() {
        return Err("has no host");
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_blank_turns_cors_off() {
        assert_eq!(AllowedOrigins::parse(None), Ok(None));
        assert_eq!(AllowedOrigins::parse(Some("  ")), Ok(None));
    }

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        let parsed = AllowedOrigins::parse(Some(
            "https://App.Example.com, http://127.0.0.1:5173,https://x.example:443",
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Some(AllowedOrigins::List(vec![
                "https://app.example.com".into(),
                "http://127.0.0.1:5173".into(),
                "https://x.example".into(),
            ]))
        );
        assert_eq!(
            AllowedOrigins::parse(Some("*")),
            Ok(Some(AllowedOrigins::Any))
        );
    }

    #[test]
    fn a_path_a_wildcard_in_a_list_and_other_schemes_are_refused_naming_the_flag() {
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/graphql",
            "*,https://app.example.com",
            "app.example.com",
            "ftp://app.example.com",
            "https://user@app.example.com",
            "https://",
            "https://app.example.com:99999",
        ] {
            let err = AllowedOrigins::parse(Some(bad)).unwrap_err();
            assert!(err.starts_with("CORS_ALLOWED_ORIGINS: "), "{bad}: {err}");
        }
    }
}
