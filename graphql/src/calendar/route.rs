//! `GET /calendar/<secret>.ics` (and `HEAD`).
//!
//! In order: the client address's rate limit (429), the lookup of the feed by the SHA-256 of
//! what the URL holds (always made, whatever the text: a wrong secret, a revoked one and a
//! malformed one all end in the same 404 with the same body, after the same lookup), the
//! feed's rate limit (429), then the body: rendered from the feed's tasks, its strong ETag a
//! hash of it, its `Last-Modified` the time the body last changed (stored with the ETag, so a
//! task that leaves the feed changes it too). `If-None-Match` (which wins when present) or
//! `If-Modified-Since` that still match get 304 without the body. Database work and rendering
//! are bounded by `REQUEST_TIMEOUT_SECS` (503 beyond it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::document::{self, Entry};
use super::ics;
use super::rate_limit::{RetryAfter, address_key};
use crate::error::ApiError;
use crate::http::AppState;
use crate::service::calendar_feed::{self as service, FeedTasks};

/// The body of every 404: a wrong, malformed or revoked secret are indistinguishable.
pub const NOT_FOUND_BODY: &str = "calendar feed not found\n";

/// `Content-Type` of a feed.
pub const CALENDAR_TYPE: &str = "text/calendar; charset=utf-8";

/// Feeds are private (the URL is the credential) and change at any time: no shared cache may
/// keep one, and a client revalidates (cheaply, with its ETag) every time.
const CACHE_CONTROL: &str = "private, no-cache";

/// The feed handler (see the module documentation).
pub async fn feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    let calendar = &state.calendar;
    let started = std::time::Instant::now();
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(retry) = calendar
            .limits
            .per_address
            .check(&address_key(peer.ip()), started)
    {
        return too_many_requests(retry);
    }
    let headers = request.headers();
    let work = async {
        // The lookup happens for every request that got this far, whatever `file` holds.
        let (candidate, is_ics) = match file.strip_suffix(".ics") {
            Some(secret) => (secret, true),
            None => (file.as_str(), false),
        };
        let found = service::find_by_secret(&state.db, candidate).await?;
        let Some(feed) = found.filter(|_| is_ics) else {
            return Ok(not_found());
        };
        if let Err(retry) = calendar.limits.per_feed.check(&feed.id, started) {
            return Ok(too_many_requests(retry));
        }
        let now = calendar.clock.now();
        let rows = service::feed_tasks(&state.db, &feed, now).await?;
        if rows.truncated {
            tracing::info!(
                feed = %feed.id,
                cap = service::MAX_FEED_ENTRIES,
                "a calendar feed matches more tasks than it serves; the earliest due are served"
            );
        }
        let name = feed.name.clone();
        let body = tokio::task::spawn_blocking(move || render(&name, &rows))
            .await
            .map_err(ApiError::internal)?;
        let etag = etag_of(&body);
        let last_modified = service::record_content(&state.db, &feed, &etag, now).await?;
        Ok::<_, ApiError>(respond(headers, body, &etag, last_modified, now))
    };
    match tokio::time::timeout(state.request_timeout, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::error!(error = ?e, "calendar feed failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
        Err(_) => {
            tracing::warn!(timeout = ?state.request_timeout, "calendar feed timed out");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the calendar feed took too long; try again later\n",
            )
        }
    }
}

/// The feed's body from its rows.
fn render(name: &str, rows: &FeedTasks) -> String {
    let none_tags = Vec::new();
    let none_reminders = Vec::new();
    let entries: Vec<Entry<'_>> = rows
        .tasks
        .iter()
        .map(|task| Entry {
            task,
            tags: lookup(&rows.tags, task.id, &none_tags),
            reminders: lookup(&rows.reminders, task.id, &none_reminders),
        })
        .collect();
    document::render(name, &entries)
}

fn lookup<'a, T>(map: &'a HashMap<uuid::Uuid, Vec<T>>, id: uuid::Uuid, none: &'a [T]) -> &'a [T] {
    map.get(&id).map_or(none, Vec::as_slice)
}

/// A strong ETag: the first 128 bits of the body's SHA-256, hex, quoted.
pub fn etag_of(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// 200 with the body, or 304 when the client's copy is current.
fn respond(
    headers: &HeaderMap,
    body: String,
    etag: &str,
    last_modified: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Response {
    let fresh = not_modified(headers, etag, last_modified, now);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut ok = Response::new(Body::from(body));
        ok.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(CALENDAR_TYPE),
        );
        ok
    };
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&ics::http_date(last_modified)) {
        out.insert(header::LAST_MODIFIED, value);
    }
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Whether the client's copy is current (RFC 9110 §13.1.2, §13.1.3, §13.2.2): `If-None-Match`
/// (weak comparison, `*` matches) when the request has one, else `If-Modified-Since` (whole
/// seconds; an unreadable date, or one later than `now`, is ignored).
fn not_modified(
    headers: &HeaderMap,
    etag: &str,
    last_modified: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let mut tags = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    if tags.peek().is_some() {
        return tags.filter_map(|v| v.to_str().ok()).any(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(ics::parse_http_date)
        .is_some_and(|since| since <= now && last_modified <= since)
}

fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, NOT_FOUND_BODY)
}

fn too_many_requests(retry: RetryAfter) -> Response {
    let mut response = plain(
        StatusCode::TOO_MANY_REQUESTS,
        "too many calendar feed requests; try again later\n",
    );
    if let Ok(value) = HeaderValue::from_str(&retry.seconds().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let modified = Utc.with_ymd_and_hms(2030, 3, 4, 8, 0, 0).unwrap();
        let now = modified + chrono::Duration::hours(1);
        let etag = "\"abc\"";
        assert!(!not_modified(&headers(&[]), etag, modified, now));
        assert!(not_modified(
            &headers(&[("if-none-match", "\"abc\"")]),
            etag,
            modified,
            now
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "W/\"abc\"")]),
            etag,
            modified,
            now
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "\"x\", \"abc\"")]),
            etag,
            modified,
            now
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "*")]),
            etag,
            modified,
            now
        ));
        assert!(!not_modified(
            &headers(&[
                ("if-none-match", "\"old\""),
                ("if-modified-since", "Mon, 04 Mar 2030 08:00:00 GMT")
            ]),
            etag,
            modified,
            now
        ));
        assert!(not_modified(
            &headers(&[("if-modified-since", "Mon, 04 Mar 2030 08:00:00 GMT")]),
            etag,
            modified,
            now
        ));
        assert!(!not_modified(
            &headers(&[("if-modified-since", "Mon, 04 Mar 2030 07:59:59 GMT")]),
            etag,
            modified,
            now
        ));
        // A date later than now is not one the server gave: ignored.
        assert!(!not_modified(
            &headers(&[("if-modified-since", "Mon, 04 Mar 2030 08:00:00 GMT")]),
            etag,
            modified,
            modified - chrono::Duration::seconds(1)
        ));
        assert!(!not_modified(
            &headers(&[("if-modified-since", "garbage")]),
            etag,
            modified,
            now
        ));
    }

    #[test]
    fn the_etag_is_a_quoted_hash_of_the_body() {
        let tag = etag_of("BEGIN:VCALENDAR");
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_eq!(tag, etag_of("BEGIN:VCALENDAR"));
        assert_ne!(tag, etag_of("BEGIN:VCALENDAR "));
    }
}
