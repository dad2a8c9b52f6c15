//! Calendar feeds over HTTP: `GET /calendar/<secret>.ics` serves a user's open tasks that have
//! a due date as an iCalendar (RFC 5545) stream of `VTODO`s, for calendar apps to subscribe to.
//! Feeds are created, listed and revoked through GraphQL (`schema::calendar_feed`); the
//! database work is `service::calendar_feed`. The secret in the URL is the only credential:
//! no bearer token, since calendar apps cannot send one.
//!
//! Deliberately not here: writing back (a feed is read-only; completing a task in a calendar
//! app changes nothing), CalDAV, and a web-app screen for feeds.
//!
//! Module map:
//! - [`route`]: the handler: rate limits, lookup by the secret's hash, ETag and
//!   `Last-Modified` with 304s, the same 404 for a wrong and a revoked secret;
//! - [`document`]: the `VCALENDAR` body from tasks, tags and reminders (pure);
//! - [`vtimezone`]: `VTIMEZONE`s generated from chrono-tz (pure);
//! - [`ics`]: content lines, escaping, folding, value formats (pure);
//! - [`rate_limit`]: the per-address and per-feed limits (GCRA, in memory).

pub mod document;
pub mod ics;
pub mod rate_limit;
pub mod route;
pub mod vtimezone;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;

use crate::http::AppState;
use crate::schema::Clock;

/// What the feed route needs beyond the database: its rate limits and its clock.
#[derive(Clone, Debug)]
pub struct CalendarFeeds {
    pub limits: Arc<rate_limit::FeedRateLimits>,
    /// The time `overdue` filters are judged at and a changed body is stamped with.
    pub clock: Clock,
}

impl CalendarFeeds {
    /// From the flags `CALENDAR_FEED_RATE_PER_ADDRESS` and `CALENDAR_FEED_RATE_PER_FEED`.
    pub fn from_config(config: &crate::config::ServerConfig) -> CalendarFeeds {
        CalendarFeeds {
            limits: Arc::new(rate_limit::FeedRateLimits::new(
                config.calendar_feed_rate_per_address,
                config.calendar_feed_rate_per_feed,
            )),
            clock: Clock::System,
        }
    }
}

/// The feed route.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/calendar/{file}", get(route::feed))
}

/// A request path fit for logs, traces and metrics: a feed's path holds its secret, so it is
/// replaced by [`REDACTED_PATH`]; any other path is itself.
pub fn loggable_path(path: &str) -> &str {
    if path.starts_with("/calendar/") {
        REDACTED_PATH
    } else {
        path
    }
}

/// What logs and traces show for the path of a feed request.
pub const REDACTED_PATH: &str = "/calendar/{secret}.ics";

/// Validates `PUBLIC_URL` for clap: an absolute http(s) URL with a host and without query,
/// fragment or credentials; returned without a trailing slash.
pub fn parse_public_url(value: &str) -> Result<String, String> {
    let url =
        url::Url::parse(value.trim()).map_err(|e| format!("PUBLIC_URL is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("PUBLIC_URL must be an http or https URL with a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("PUBLIC_URL must not have a query or a fragment".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("PUBLIC_URL must not contain credentials".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The origin a request was sent to, for feed URLs when `PUBLIC_URL` is not set: `Host`, with
/// the scheme from `X-Forwarded-Proto` (what a TLS-terminating proxy sets), else `http`.
/// `None` without a usable `Host`. (A client can only mislead itself with these: the URL goes
/// back to the client that sent them.)
pub fn request_origin(headers: &HeaderMap) -> Option<crate::schema::calendar_feed::RequestOrigin> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?.trim();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !valid {
        return None;
    }
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| v == "https" || v == "http")
        .unwrap_or_else(|| "http".to_owned());
    Some(crate::schema::calendar_feed::RequestOrigin(format!(
        "{scheme}://{host}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn feed_paths_are_redacted_for_logs() {
        assert_eq!(loggable_path("/calendar/abc.ics"), REDACTED_PATH);
        assert_eq!(loggable_path("/calendar/"), REDACTED_PATH);
        assert_eq!(loggable_path("/graphql"), "/graphql");
    }

    #[test]
    fn public_urls_are_http_with_a_host_and_lose_their_trailing_slash() {
        assert_eq!(
            parse_public_url("https://tasks.example.com/").unwrap(),
            "https://tasks.example.com"
        );
        assert_eq!(
            parse_public_url("http://127.0.0.1:8080/taskstream").unwrap(),
            "http://127.0.0.1:8080/taskstream"
        );
        for bad in [
            "tasks.example.com",
            "ftp://example.com",
            "https://example.com/?a=1",
            "https://u:p@example.com",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_origin_comes_from_host_and_forwarded_proto() {
        let mut headers = HeaderMap::new();
        assert!(request_origin(&headers).is_none());
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(request_origin(&headers).unwrap().0, "http://127.0.0.1:8080");
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert_eq!(
            request_origin(&headers).unwrap().0,
            "https://127.0.0.1:8080"
        );
        headers.insert("host", HeaderValue::from_static("evil.example/path"));
        assert!(request_origin(&headers).is_none());
    }
}
