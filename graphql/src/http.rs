//! The HTTP transport: `POST /graphql` (one operation per request), subscriptions over a
//! WebSocket at `/graphql/ws` (`graphql-transport-ws`), GraphiQL, health and readiness, with
//! the body-size limit, request ids and the execution timeout. It adapts the transport-free
//! schema and knows nothing of tasks. The web app's routes (`/`, `/app/...`) come from
//! [`crate::web`].
//!
//! WebSocket: the bearer token travels in the `connection_init` payload as
//! `{"Authorization": "Bearer <jwt>"}`; a missing or bad token closes the socket with 4403
//! Forbidden. A socket that sends no `connection_init` within [`AppState::ws_init_timeout`] is
//! closed with 4408, and one socket holds at most [`AppState::ws_max_subscriptions`]
//! subscriptions. The other graphql-transport-ws close codes (4400, 4401, 4409, 4429) come
//! from [`crate::ws`].

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::live::LiveHub;
use crate::schema::subscription::SocketSubscriptions;
use crate::schema::{RequestMeta, TaskstreamSchema, connection_data, prepare_request};
use crate::ws::{self, FORBIDDEN_REASON};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a new WebSocket may take to send `connection_init`: long enough for a slow mobile
/// handshake, short enough that idle unauthenticated sockets do not pile up.
pub const WS_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Live subscriptions one WebSocket may hold. A client needs a handful (one per open view);
/// the cap bounds what one connection can make the gateway filter per change.
pub const WS_MAX_SUBSCRIPTIONS: usize = 20;

/// The read buffer each WebSocket allocates up front. The transport's default is 128 KiB per
/// socket, which with a thousand idle subscribers is most of the gateway's memory; client
/// messages here are small JSON (subscribe, complete, ping), and a larger one still arrives,
/// in more reads.
pub const WS_READ_BUFFER_BYTES: usize = 8 * 1024;

/// The largest WebSocket message (and frame) a client may send: a subscribe carries one
/// GraphQL document, bounded like an HTTP request body.
pub const WS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Everything the handlers share.
pub struct AppState {
    pub schema: TaskstreamSchema,
    pub db: DatabaseConnection,
    /// The brokers in distributed mode (readiness checks them).
    pub kafka: Option<stream::kafka::KafkaConfig>,
    pub auth: Authenticator,
    pub request_timeout: Duration,
    /// The GraphiQL page, or `None` when disabled.
    pub graphiql_html: Option<String>,
    /// The live change fan-out the subscriptions read (also in the schema's data).
    pub live: LiveHub,
    /// See [`WS_INIT_TIMEOUT`].
    pub ws_init_timeout: Duration,
    /// See [`WS_MAX_SUBSCRIPTIONS`].
    pub ws_max_subscriptions: usize,
    /// The web app's OpenID Connect sign-in, when configured.
    pub oidc: Option<crate::oidc::OidcSettings>,
}

/// The gateway's routes and middleware.
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/graphql", post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphiql", get(graphiql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::observability::metrics_handler))
        .merge(crate::web::router(state.auth.is_development()))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                crate::observability::http_request_span(req, REQUEST_ID.as_str())
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Serves `router` on an already-bound listener until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A GraphQL-shaped error response with one error and its code.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (status, axum::Json(body)).into_response()
}

async fn graphql(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"));
    let user = match state.auth.authenticate(authorization).await {
        Ok(user) => user,
        Err(err) => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                &err.to_string(),
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("request body is not valid JSON: {e}"),
            );
        }
    };
    if value.is_array() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "batched requests are not supported; send one operation per request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("request body is not a GraphQL request: {e}"),
            );
        }
    };
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = prepare_request(request, &state.db, RequestMeta { user, request_id });
    match tokio::time::timeout(
        state.request_timeout,
        crate::schema::execute(&state.schema, request),
    )
    .await
    {
        Ok(response) => axum::Json(response).into_response(),
        Err(_) => {
            tracing::warn!(timeout = ?state.request_timeout, "request timed out and was cancelled");
            error_response(
                StatusCode::OK,
                "INTERNAL",
                &format!(
                    "the request took longer than {} s and was cancelled; nothing was written",
                    state.request_timeout.as_secs()
                ),
            )
        }
    }
}

async fn graphql_ws(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let guarded = ws::is_transport_ws(&headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(WS_MAX_MESSAGE_BYTES)
        .max_frame_size(WS_MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_socket(state, socket, protocol, guarded))
}

/// Runs one GraphQL WebSocket: authenticates `connection_init`, then serves its
/// subscriptions until either side closes it or it misses the init deadline. With `guarded`
/// (graphql-transport-ws) every client message passes a [`ws::Guard`] first, which closes the
/// socket with the protocol's own code on a violation.
async fn serve_socket(
    state: Arc<AppState>,
    socket: WebSocket,
    protocol: GraphQLProtocol,
    guarded: bool,
) {
    let (mut ws_sink, ws_stream) = socket.split();
    // Everything bound for the client goes through one queue, so the guard and the init
    // timer can close the socket while the engine owns its half.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let guard = Arc::new(Mutex::new(ws::Guard::default()));

    let engine_sink = {
        let guard = Arc::clone(&guard);
        futures_util::sink::unfold(out_tx.clone(), move |tx, message: Message| {
            let message = ws::forbidden_close(message);
            if guarded {
                lock(&guard).outgoing(&message);
            }
            let sent = tx
                .send(message)
                .map(|()| tx)
                .map_err(|_| axum::Error::new("the WebSocket writer has stopped"));
            futures_util::future::ready(sent)
        })
    };
    let engine_stream = {
        let guard = Arc::clone(&guard);
        let out_tx = out_tx.clone();
        ws_stream.take_while(move |message| {
            let verdict = match message {
                Ok(Message::Text(text)) => lock(&guard).incoming(text.as_bytes()),
                Ok(Message::Binary(bytes)) => lock(&guard).incoming(bytes),
                _ => ws::Verdict::Pass,
            };
            let keep = match verdict {
                ws::Verdict::Pass => true,
                ws::Verdict::Close(code, reason) if guarded => {
                    tracing::debug!(code, %reason, "closing a WebSocket that broke the protocol");
                    let _ = out_tx.send(ws::close(code, &reason));
                    false
                }
                // The legacy protocol keeps the engine's own handling.
                ws::Verdict::Close(..) => true,
            };
            futures_util::future::ready(keep)
        })
    };

    let init_state = Arc::clone(&state);
    let engine =
        GraphQLWebSocket::new_with_pair(engine_sink, engine_stream, state.schema.clone(), protocol)
            .on_connection_init(move |payload| async move {
                let authorization = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .map(|v| v.as_str().unwrap_or("\u{0}invalid"));
                let user = match init_state.auth.authenticate(authorization).await {
                    Ok(user) => user,
                    Err(err) => {
                        tracing::info!(error = %err, "WebSocket connection_init refused");
                        return Err(async_graphql::Error::new(format!(
                            "{FORBIDDEN_REASON}: a valid bearer token is required in the \
                     connection_init payload"
                        )));
                    }
                };
                let meta = RequestMeta {
                    user,
                    request_id: None,
                };
                let mut data = connection_data(&init_state.db, meta);
                data.insert(SocketSubscriptions::new(init_state.ws_max_subscriptions));
                Ok(data)
            });

    let init_deadline = async {
        tokio::time::sleep(state.ws_init_timeout).await;
        if lock(&guard).init_received() {
            std::future::pending::<()>().await;
        }
    };
    let run = async {
        tokio::select! {
            () = engine.serve() => {}
            () = init_deadline => {
                tracing::debug!(timeout = ?state.ws_init_timeout, "closing a WebSocket that sent no connection_init");
                let _ = out_tx.send(ws::close(
                    ws::CLOSE_INIT_TIMEOUT,
                    "Connection initialisation timeout",
                ));
            }
        }
        // The writer ends once the last sender is gone.
        drop(out_tx);
    };
    let writer = async {
        while let Some(message) = out_rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if ws_sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = ws_sink.close().await;
    };
    tokio::join!(run, writer);
}

/// The guard's lock; a panic while holding it cannot leave it inconsistent enough to matter.
fn lock(guard: &Mutex<ws::Guard>) -> std::sync::MutexGuard<'_, ws::Guard> {
    guard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn graphiql(State(state): State<Arc<AppState>>) -> Response {
    match &state.graphiql_html {
        Some(html) => Html(html.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "GraphiQL is disabled").into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and, in distributed mode, the first broker accepts a
/// connection. (Liveness, `/healthz`, never depends on either.)
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = match crate::db::ping(&state.db).await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
    };
    let broker = match &state.kafka {
        None => "embedded",
        Some(kafka) if crate::events::broker_reachable(kafka).await => "ok",
        Some(_) => "unreachable",
    };
    let ready = database == "ok" && broker != "unreachable";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "broker": broker,
    });
    (status, axum::Json(body)).into_response()
}
