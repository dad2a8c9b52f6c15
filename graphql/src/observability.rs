//! The gateway's telemetry: the HTTP request span (continuing a client's `traceparent`), a
//! schema extension that gives every GraphQL operation a span and its metrics, and
//! `GET /metrics`.
//!
//! The operation span carries the operation's type and name, its first root field, the request
//! id and a hash of the user id ([`telemetry::hash_user_id`]): never the token, the query
//! text or variables (they may hold personal data). Metrics are labelled by operation type and
//! first root field, a set the schema bounds, not by the client-chosen operation name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::parser::types::{OperationDefinition, Selection};
use async_graphql::{Response, ServerResult, Variables};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use telemetry::metrics::{CodeLabels, OperationLabels, metrics};
use tracing::Instrument as _;

use crate::http::AppState;
use crate::schema::RequestMeta;

/// The span of one HTTP request: `request_id` is in every log line logged inside it
/// (resolvers included), and a W3C `traceparent` sent by the client becomes its parent.
pub fn http_request_span<B>(
    req: &axum::http::Request<B>,
    request_id_header: &str,
) -> tracing::Span {
    let id = req
        .headers()
        .get(request_id_header)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // A calendar feed's path is its secret: never logged or exported.
    let path = crate::calendar::loggable_path(req.uri().path());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {}", req.method(), path),
        otel.kind = "server",
        method = %req.method(),
        path = %path,
        request_id = %id,
    );
    let traceparent = req
        .headers()
        .get(telemetry::trace_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    telemetry::continue_trace(&span, traceparent);
    span
}

/// `GET /metrics`: refreshes the gauges read at scrape time (outbox backlog and parked dead
/// letters from the database, live subscriptions) and renders every metric.
pub async fn metrics_handler(State(state): State<Arc<AppState>>) -> axum::response::Response {
    stream::relay::refresh_backlog_gauges(&state.db, state.broker.is_some()).await;
    metrics()
        .live_subscriptions
        .set(i64::try_from(state.live.subscriber_count()).unwrap_or(i64::MAX));
    (
        [(header::CONTENT_TYPE, telemetry::metrics::CONTENT_TYPE)],
        telemetry::metrics::render(),
    )
        .into_response()
}

/// The schema extension: a span and metrics per query or mutation.
#[derive(Clone, Copy, Debug, Default)]
pub struct OperationTelemetry;

impl ExtensionFactory for OperationTelemetry {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationExtension::default())
    }
}

/// What the parsed document says about its operations: by name (`None` for the single
/// anonymous or named one), the type and the first root field.
#[derive(Clone, Debug)]
struct OperationShape {
    kind: &'static str,
    root_field: String,
}

#[derive(Default)]
struct OperationExtension {
    single: Mutex<Option<OperationShape>>,
    named: Mutex<HashMap<String, OperationShape>>,
    /// The label set, known once `execute` ran.
    labels: Mutex<Option<OperationLabels>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn shape(op: &OperationDefinition) -> OperationShape {
    let kind = match op.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let root_field = op
        .selection_set
        .node
        .items
        .iter()
        .find_map(|item| match &item.node {
            Selection::Field(field) => Some(field.node.name.node.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "-".to_owned());
    OperationShape { kind, root_field }
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationExtension {
    /// Metrics of the whole request (parse and validation included, so rejected documents
    /// count too).
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let elapsed = started.elapsed().as_secs_f64();
        let labels = lock(&self.labels).take().unwrap_or(OperationLabels {
            kind: "unknown".to_owned(),
            operation: "-".to_owned(),
        });
        let m = metrics();
        m.graphql_requests.get_or_create(&labels).inc();
        m.graphql_request_duration
            .get_or_create(&labels)
            .observe(elapsed);
        if !response.errors.is_empty() {
            for err in &response.errors {
                let code = error_code(err);
                m.graphql_errors.get_or_create(&CodeLabels { code }).inc();
            }
        }
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        match &doc.operations {
            DocumentOperations::Single(op) => *lock(&self.single) = Some(shape(&op.node)),
            DocumentOperations::Multiple(ops) => {
                let mut named = lock(&self.named);
                for (name, op) in ops {
                    named.insert(name.to_string(), shape(&op.node));
                }
            }
        }
        Ok(doc)
    }

    /// The operation span (its name is only known here, and span names are fixed at
    /// creation): `mutation Complete`, or `mutation completeTask` for an anonymous one.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let shape = lock(&self.single)
            .clone()
            .or_else(|| operation_name.and_then(|name| lock(&self.named).get(name).cloned()));
        let (kind, root_field) = shape
            .as_ref()
            .map_or(("unknown", "-"), |s| (s.kind, s.root_field.as_str()));
        *lock(&self.labels) = Some(OperationLabels {
            kind: kind.to_owned(),
            operation: root_field.to_owned(),
        });
        let meta = ctx.data_opt::<RequestMeta>();
        let span = tracing::info_span!(
            "graphql.operation",
            otel.name = %format_args!("{kind} {}", operation_name.unwrap_or(root_field)),
            graphql.operation.type = kind,
            graphql.operation.name = operation_name.unwrap_or(""),
            graphql.root_field = root_field,
            user.hash = meta.map(|m| telemetry::hash_user_id(&m.user.id)).as_deref(),
            request_id = meta.and_then(|m| m.request_id.as_deref()),
            error_codes = tracing::field::Empty,
        );
        let response = next.run(ctx, operation_name).instrument(span.clone()).await;
        if !response.errors.is_empty() {
            let codes: Vec<String> = response.errors.iter().map(error_code).collect();
            span.record("error_codes", codes.join(",").as_str());
        }
        response
    }
}

/// An error's `extensions.code`. Errors without one are the engine's (parse, validation,
/// limits), which `schema::execute` reports as BAD_USER_INPUT.
fn error_code(error: &async_graphql::ServerError) -> String {
    match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => "BAD_USER_INPUT".to_owned(),
    }
}
