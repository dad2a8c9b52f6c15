//! `/graphql` over HTTP: POST (a JSON body) and GET (URL parameters, queries only), content
//! negotiation (see [`super::media`]), automatic persisted queries (see [`crate::apq`]),
//! `Idempotency-Key`, the execution timeout, and the engine's response headers.
//!
//! Order of refusals: 406 (`Accept` allows neither response type), 415 (a POST body that is
//! not `application/json`), 401 (no valid token), then the body: 408 (too slow), 413 (too
//! large), 400 (empty, not JSON, a batch, not a GraphQL request, no query, a bad persisted-query
//! hash), 405 with `Allow: POST` (a mutation over GET); only then does the engine see it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::media::{self, ResponseMedia};
use super::{AppState, REQUEST_ID, read_body};
use crate::auth::AuthUser;
use crate::schema::{RequestMeta, prepare_request};

const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// POST /graphql: one operation as a JSON object.
pub(super) async fn post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(media) = media::negotiate(&headers) else {
        return not_acceptable();
    };
    if let Err(message) = media::check_content_type(&headers) {
        return media::error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BAD_USER_INPUT,
            &message,
        );
    }
    let user = match authenticate(&state, &headers, media).await {
        Ok(user) => user,
        Err(reply) => return reply,
    };
    let body = match read_body(body, state.body_timeout, media).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let mut request = match parse_body(&body) {
        Ok(request) => request,
        Err(message) => {
            return media::error(media, StatusCode::BAD_REQUEST, BAD_USER_INPUT, &message);
        }
    };
    if let Err(message) = apply_idempotency_header(&headers, &mut request) {
        return media::error(media, StatusCode::BAD_REQUEST, BAD_USER_INPUT, &message);
    }
    run(&state, &headers, media, request, user, false).await
}

/// GET /graphql: `query`, `operationName`, and `variables` and `extensions` as JSON, in the
/// URL. Mutations are refused (405): a GET must be safe to repeat, cache and prefetch.
pub(super) async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(media) = media::negotiate(&headers) else {
        return not_acceptable();
    };
    let user = match authenticate(&state, &headers, media).await {
        Ok(user) => user,
        Err(reply) => return reply,
    };
    let request = match parse_url_parameters(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(message) => {
            return media::error(media, StatusCode::BAD_REQUEST, BAD_USER_INPUT, &message);
        }
    };
    run(&state, &headers, media, request, user, true).await
}

/// Resolves a persisted query, refuses what cannot run, executes within the timeout and writes
/// the response in `media`.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    media: ResponseMedia,
    mut request: async_graphql::Request,
    user: AuthUser,
    over_get: bool,
) -> Response {
    let persisted = &state.graphql_http.persisted_queries;
    let registration = match persisted.resolve(&user.id, &mut request) {
        Ok(registration) => registration,
        Err(e) if e.is_bad_request() => {
            return media::error(media, StatusCode::BAD_REQUEST, e.code(), &e.to_string());
        }
        // Apollo Client reads these from a 200 GraphQL response and acts on them.
        Err(e) => {
            return media::render(
                async_graphql::Response::from_errors(vec![e.into_server_error()]),
                media,
            );
        }
    };
    if request.query.trim().is_empty() {
        return media::error(
            media,
            StatusCode::BAD_REQUEST,
            BAD_USER_INPUT,
            "the request has no `query` (or a persisted query hash)",
        );
    }
    if over_get && selects_mutation(&mut request, &state.graphql_http.document_limits) {
        let mut reply = media::error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            BAD_USER_INPUT,
            "a mutation must be sent with POST",
        );
        reply
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return reply;
    }
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut request = prepare_request(request, &state.db, RequestMeta { user, request_id });
    if let Some(origin) = crate::calendar::request_origin(headers) {
        request = request.data(origin);
    }
    match tokio::time::timeout(
        state.request_timeout,
        crate::schema::execute(&state.schema, request),
    )
    .await
    {
        Ok(response) => {
            if let Some(registration) = registration
                && !media::is_request_error(&response)
            {
                persisted.register(registration);
            }
            media::render(response, media)
        }
        Err(_) => {
            tracing::warn!(timeout = ?state.request_timeout, "request timed out and was cancelled");
            let message = crate::execution_timeout::timeout_message(state.request_timeout);
            match media {
                ResponseMedia::Json => super::error_response(StatusCode::OK, "INTERNAL", &message),
                // Execution started, so the reply is 200 with `data` (null).
                ResponseMedia::GraphqlResponseJson => {
                    use async_graphql::ErrorExtensions as _;
                    let error = async_graphql::Error::new(message)
                        .extend_with(|_, e| e.set("code", "INTERNAL"))
                        .into_server_error(async_graphql::Pos::default());
                    media::render(async_graphql::Response::from_errors(vec![error]), media)
                }
            }
        }
    }
}

/// The bearer token's user, or the 401 reply.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    media: ResponseMedia,
) -> Result<AuthUser, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"));
    state.auth.authenticate(authorization).await.map_err(|err| {
        media::error(
            media,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            &err.to_string(),
        )
    })
}

fn not_acceptable() -> Response {
    super::error_response(
        StatusCode::NOT_ACCEPTABLE,
        BAD_USER_INPUT,
        "Accept allows neither application/graphql-response+json nor application/json",
    )
}

/// One GraphQL request from a POST body; the error is the 400 reply's message.
fn parse_body(body: &[u8]) -> Result<async_graphql::Request, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty; send a JSON object with `query`".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    if value.is_array() {
        return Err("batched requests are not supported; send one operation per request".into());
    }
    if !value.is_object() {
        return Err("the request body must be a JSON object with `query`".into());
    }
    serde_json::from_value(value).map_err(|e| format!("request body is not a GraphQL request: {e}"))
}

/// One GraphQL request from GET parameters. (async-graphql's `parse_query_string` reads
/// `operation_name` instead of `operationName`, so the parameters are read here.)
fn parse_url_parameters(query: &str) -> Result<async_graphql::Request, String> {
    let mut text = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "query" => &mut text,
            "operationName" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(format!(
                "the URL parameter `{name}` is given more than once"
            ));
        }
    }
    let mut request = async_graphql::Request::new(text.unwrap_or_default());
    if let Some(name) = operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables.filter(|v| !v.is_empty()) {
        let value: serde_json::Value = serde_json::from_str(&variables)
            .map_err(|e| format!("the `variables` parameter is not JSON: {e}"))?;
        if !value.is_object() && !value.is_null() {
            return Err("the `variables` parameter must be a JSON object".into());
        }
        request = request.variables(async_graphql::Variables::from_json(value));
    }
    if let Some(extensions) = extensions.filter(|v| !v.is_empty()) {
        let value: serde_json::Value = serde_json::from_str(&extensions)
            .map_err(|e| format!("the `extensions` parameter is not JSON: {e}"))?;
        request.extensions = match value {
            serde_json::Value::Null => Default::default(),
            value @ serde_json::Value::Object(_) => serde_json::from_value(value)
                .map_err(|e| format!("the `extensions` parameter is not valid: {e}"))?,
            _ => return Err("the `extensions` parameter must be a JSON object".into()),
        };
    }
    Ok(request)
}

/// `Idempotency-Key` into `extensions.idempotencyKey` (the engine extension reads it there);
/// the error is the 400 reply's message.
fn apply_idempotency_header(
    headers: &HeaderMap,
    request: &mut async_graphql::Request,
) -> Result<(), String> {
    let Some(key) = headers.get(crate::idempotency::HEADER) else {
        return Ok(());
    };
    let key = key
        .to_str()
        .map_err(|_| "the Idempotency-Key header must be visible ASCII".to_owned())?;
    crate::idempotency::validate_key(key)?;
    let body_key = request.extensions.get(crate::idempotency::EXTENSION);
    if body_key.is_some_and(|k| *k != async_graphql::Value::String(key.to_owned())) {
        return Err(
            "the Idempotency-Key header and extensions.idempotencyKey differ; send one".into(),
        );
    }
    request.extensions.insert(
        crate::idempotency::EXTENSION.to_owned(),
        async_graphql::Value::String(key.to_owned()),
    );
    Ok(())
}

/// Whether the operation a GET would run is a mutation. The document is parsed here only
/// within the nesting limit (the parser recurses; the engine's guard refuses deeper text) and
/// the engine reuses the parse; a document that does not parse is left to the engine to report.
fn selects_mutation(
    request: &mut async_graphql::Request,
    limits: &crate::document_limits::DocumentLimits,
) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    if limits.check_text(&request.query).is_err() {
        return false;
    }
    let name = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    let ty = match (&doc.operations, name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty == Some(OperationType::Mutation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_carry_the_operation_name_variables_and_extensions() {
        let request = parse_url_parameters(
            "query=query%20Q(%24n%3A%20Int)%20%7B%20a%20%7D&operationName=Q\
             &variables=%7B%22n%22%3A1%7D&extensions=%7B%22x%22%3Atrue%7D",
        )
        .unwrap();
        assert_eq!(request.query, "query Q($n: Int) { a }");
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables.into_value(),
            async_graphql::value!({ "n": 1 })
        );
        assert!(request.extensions.contains_key("x"));
    }

    #[test]
    fn bad_url_parameters_are_refused() {
        for bad in [
            "query=%7Ba%7D&query=%7Bb%7D",
            "query=%7Ba%7D&variables=%5B1%5D",
            "query=%7Ba%7D&variables=nope",
            "query=%7Ba%7D&extensions=%22s%22",
        ] {
            assert!(parse_url_parameters(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_selected_mutation_counts_as_one() {
        let limits = crate::document_limits::DocumentLimits::default();
        let check = |query: &str, name: Option<&str>| {
            let mut request = async_graphql::Request::new(query);
            if let Some(name) = name {
                request = request.operation_name(name);
            }
            selects_mutation(&mut request, &limits)
        };
        assert!(check("mutation { a }", None));
        assert!(!check("{ a }", None));
        assert!(check("query Q { a } mutation M { b }", Some("M")));
        assert!(!check("query Q { a } mutation M { b }", Some("Q")));
        assert!(!check("mutation {", None));
    }

    #[test]
    fn bodies_that_are_not_one_graphql_request_are_refused() {
        assert!(parse_body(b"").unwrap_err().contains("empty"));
        assert!(parse_body(b"[]").unwrap_err().contains("batch"));
        assert!(parse_body(b"\"query\"").unwrap_err().contains("object"));
        assert!(parse_body(br#"{"query": 1}"#).is_err());
        assert!(parse_body(br#"{"query": "{ a }", "variables": null}"#).is_ok());
    }
}
