//! Media types of GraphQL over HTTP (the current spec draft): which response type a request
//! accepts, whether its body's type is one we read, and how a GraphQL response is written in
//! each type.
//!
//! - `application/json`: the legacy type, exactly as the gateway always answered: every
//!   GraphQL response (request errors included) is 200 with a `data` entry.
//! - `application/graphql-response+json`: a request error (the document did not parse or
//!   validate, a variable did not coerce, a document limit refused it) is 400 without a
//!   `data` entry; once execution started the answer is 200 with `data`, even if `null`.
//!
//! **Default.** A request without `Accept`, or accepting both through a wildcard (`*/*`,
//! `application/*`), gets `application/json`. The spec's legacy watershed says that since 2025
//! a missing `Accept` SHOULD be treated as `application/graphql-response+json`; we keep the
//! legacy default on purpose: curl, scripts and older clients (Apollo Client 3, Relay) send
//! no `Accept` or `*/*` and read only 200 responses, so switching would turn their validation
//! errors into HTTP failures (graphql-http's audit, 80D8 and 47DE, still expects this default
//! too). A client that names `application/graphql-response+json` (Apollo Client 4,
//! graphql-http, urql) gets it; when both types are named with the same weight it wins.

use async_graphql::ServerError;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The spec's own response type.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// How a reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMedia {
    /// `application/json` (legacy; the default).
    Json,
    /// `application/graphql-response+json`.
    GraphqlResponseJson,
}

/// The response type the request's `Accept` asks for, or `None` when it allows neither (406).
/// The most specific range that matches a type gives its weight (RFC 9110 §12.5.1).
pub fn negotiate(headers: &HeaderMap) -> Option<ResponseMedia> {
    #[derive(Default, Clone, Copy)]
    struct Weights {
        exact: Option<f32>,
        application: Option<f32>,
        any: Option<f32>,
    }
    let mut graphql = Weights::default();
    let mut json = Weights::default();
    let mut seen = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            seen = true;
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(1.0));
            let keep = |slot: &mut Option<f32>| *slot = Some(slot.map_or(q, |old| old.max(q)));
            match media.as_str() {
                GRAPHQL_RESPONSE_JSON => keep(&mut graphql.exact),
                "application/json" => keep(&mut json.exact),
                "application/*" => {
                    keep(&mut graphql.application);
                    keep(&mut json.application);
                }
                "*/*" => {
                    keep(&mut graphql.any);
                    keep(&mut json.any);
                }
                _ => {}
            }
        }
    }
    if !seen {
        return Some(ResponseMedia::Json);
    }
    let weight = |w: Weights| {
        (
            w.exact.or(w.application).or(w.any).unwrap_or(0.0),
            w.exact.is_some(),
        )
    };
    let (graphql_q, graphql_named) = weight(graphql);
    let (json_q, _) = weight(json);
    if graphql_q <= 0.0 && json_q <= 0.0 {
        return None;
    }
    // On equal weight the GraphQL type wins only when named (a wildcard means JSON).
    let graphql_wins = graphql_q > json_q || (graphql_q == json_q && graphql_named);
    Some(if graphql_wins {
        ResponseMedia::GraphqlResponseJson
    } else {
        ResponseMedia::Json
    })
}

/// Checks a POST body's `Content-Type`: `application/json`, in UTF-8 if a charset is given.
/// The error is the 415 reply's message.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err("a POST needs `Content-Type: application/json`".into());
    };
    let value = value.to_str().unwrap_or("");
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "the request body must be `application/json`, not `{media}`"
        ));
    }
    for param in parts {
        if let Some((name, charset)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            let charset = charset.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return Err(format!("the request body must be UTF-8, not `{charset}`"));
            }
        }
    }
    Ok(())
}

/// Whether the engine refused the request before executing it: no data and only the errors of
/// parsing, validation, variable coercion or a document limit (no path, `BAD_USER_INPUT`).
/// Errors raised during execution carry a path or another code.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| e.path.is_empty() && code_of(e) == Some("BAD_USER_INPUT"))
}

fn code_of(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// Writes a GraphQL response in `media`, with the headers the engine asked for.
pub fn render(mut response: async_graphql::Response, media: ResponseMedia) -> Response {
    let headers = std::mem::take(&mut response.http_headers);
    let mut reply = match media {
        ResponseMedia::Json => axum::Json(response).into_response(),
        ResponseMedia::GraphqlResponseJson if is_request_error(&response) => {
            #[derive(Serialize)]
            struct RequestError<'a> {
                errors: &'a [ServerError],
            }
            graphql_response(
                StatusCode::BAD_REQUEST,
                &RequestError {
                    errors: &response.errors,
                },
            )
        }
        ResponseMedia::GraphqlResponseJson => graphql_response(StatusCode::OK, &response),
    };
    reply.headers_mut().extend(headers);
    reply
}

/// A reply with one error and its code, in `media` (no `data`: the request never ran).
pub fn error(media: ResponseMedia, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    match media {
        ResponseMedia::Json => (status, axum::Json(body)).into_response(),
        ResponseMedia::GraphqlResponseJson => graphql_response(status, &body),
    }
}

fn graphql_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a GraphQL response could not be serialised");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<ResponseMedia> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&headers)
    }

    #[test]
    fn no_accept_and_wildcards_get_application_json() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(ResponseMedia::Json));
        assert_eq!(accept("*/*"), Some(ResponseMedia::Json));
        assert_eq!(accept("application/*"), Some(ResponseMedia::Json));
        assert_eq!(accept("application/json"), Some(ResponseMedia::Json));
    }

    #[test]
    fn naming_the_graphql_response_type_gets_it_unless_json_weighs_more() {
        let graphql = Some(ResponseMedia::GraphqlResponseJson);
        assert_eq!(accept(GRAPHQL_RESPONSE_JSON), graphql);
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9"),
            graphql
        );
        assert_eq!(
            accept("application/json, application/graphql-response+json"),
            graphql
        );
        assert_eq!(accept("application/graphql-response+json, */*"), graphql);
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json"),
            Some(ResponseMedia::Json)
        );
        assert_eq!(
            accept("*/*;q=0.8, application/json"),
            Some(ResponseMedia::Json)
        );
    }

    #[test]
    fn accepting_neither_type_is_not_acceptable() {
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0, text/plain"), None);
        assert_eq!(accept("application/xml, image/*"), None);
    }

    #[test]
    fn only_json_in_utf8_is_read() {
        let check = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            }
            check_content_type(&headers)
        };
        assert!(check(Some("application/json")).is_ok());
        assert!(check(Some("Application/JSON; charset=UTF-8")).is_ok());
        assert!(check(None).is_err());
        assert!(check(Some("text/plain")).is_err());
        assert!(check(Some("application/graphql")).is_err());
        assert!(check(Some("multipart/form-data; boundary=x")).is_err());
        assert!(check(Some("application/json; charset=latin1")).is_err());
    }
}
