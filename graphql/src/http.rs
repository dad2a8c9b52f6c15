//! The HTTP transport: `/graphql` (GraphQL over HTTP: POST and GET, one operation per
//! request, content negotiation, automatic persisted queries, CORS when configured; see
//! `endpoint` and `media`), subscriptions over a WebSocket at `/graphql/ws`
//! (`graphql-transport-ws`), GraphiQL, health and readiness, with the body-size limit, request
//! ids and the execution timeout. It adapts the transport-free schema and knows nothing of
//! tasks. The web app's routes (`/`, `/app/...`) come from [`crate::web`].
//!
//! WebSocket: the bearer token travels in the `connection_init` payload as
//! `{"Authorization": "Bearer <jwt>"}`; a missing or bad token closes the socket with 4403
//! Forbidden. A socket that sends no `connection_init` within [`AppState::ws_init_timeout`] is
//! closed with 4408, and one socket holds at most [`AppState::ws_max_subscriptions`]
//! subscriptions. The other graphql-transport-ws close codes (4400, 4401, 4409, 4429) come
//! from [`crate::ws`]; shutdown closes every socket with 1001 (going away,
//! [`ws::CLOSE_GOING_AWAY`]). An operation the engine refuses gets the protocol's `error`
//! message, and every error carries an `extensions.code` as over HTTP (`socket_messages`).

mod endpoint;
mod media;
mod socket_messages;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::sync::mpsc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::live::LiveHub;
use crate::schema::subscription::SocketSubscriptions;
use crate::schema::{RequestMeta, TaskstreamSchema, connection_data};
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
    pub broker: Option<stream::broker::BrokerConfig>,
    pub auth: Authenticator,
    pub request_timeout: Duration,
    /// How long a client may take to send a request body (`HTTP_BODY_TIMEOUT_SECS`).
    pub body_timeout: Duration,
    /// The GraphiQL page, or `None` when disabled.
    pub graphiql_html: Option<String>,
    /// The live change fan-out the subscriptions read (also in the schema's data).
    pub live: LiveHub,
    /// See [`WS_INIT_TIMEOUT`].
    pub ws_init_timeout: Duration,
    /// See [`WS_MAX_SUBSCRIPTIONS`].
    pub ws_max_subscriptions: usize,
    /// The long-lived tasks `/readyz` reports on (see [`crate::health`]).
    pub components: crate::health::Components,
    /// Per-user WebSocket and subscription counts (see [`crate::sockets`]).
    pub user_sockets: Arc<crate::sockets::UserSockets>,
    /// The web app's OpenID Connect sign-in, when configured.
    pub oidc: Option<crate::oidc::OidcSettings>,
    /// Persisted queries, the GET guard's limits and CORS (see [`GraphqlHttp`]).
    pub graphql_http: GraphqlHttp,
    /// The calendar feed route's rate limits and clock (see [`crate::calendar`]).
    pub calendar: crate::calendar::CalendarFeeds,
    /// The process's shutdown: open WebSockets are closed with 1001 (going away) when it is
    /// cancelled (see [`crate::app`]).
    pub shutdown: stream::lifecycle::CancellationToken,
    /// The process's tasks: each WebSocket is one, so shutdown waits for its close frame.
    pub tasks: stream::lifecycle::TaskTracker,
}

/// What `/graphql` needs beyond the engine.
#[derive(Clone)]
pub struct GraphqlHttp {
    /// The automatic persisted queries cache (`APQ_CACHE_ENTRIES`).
    pub persisted_queries: Arc<crate::apq::PersistedQueries>,
    /// The document limits: a GET is parsed (to refuse a mutation) only within their nesting.
    pub document_limits: crate::document_limits::DocumentLimits,
    /// Cross-origin access (`CORS_ALLOWED_ORIGINS`); `None` is off.
    pub cors: Option<crate::cors::AllowedOrigins>,
}

impl GraphqlHttp {
    /// From the flags; a bad `CORS_ALLOWED_ORIGINS` is an error naming it.
    pub fn from_config(config: &crate::config::ServerConfig) -> anyhow::Result<GraphqlHttp> {
        Ok(GraphqlHttp {
            persisted_queries: Arc::new(crate::apq::PersistedQueries::new(
                usize::try_from(config.apq_cache_entries).unwrap_or(usize::MAX),
            )),
            document_limits: config.document_limits(),
            cors: crate::cors::AllowedOrigins::parse(config.cors_allowed_origins.as_deref())
                .map_err(anyhow::Error::msg)?,
        })
    }
}

/// The gateway's routes and middleware.
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    let graphql = Router::new().route("/graphql", get(endpoint::get).post(endpoint::post));
    let graphql = match &state.graphql_http.cors {
        Some(origins) => graphql.layer(origins.layer()),
        None => graphql,
    };
    Router::new()
        .merge(graphql)
        .route("/graphql/ws", get(graphql_ws))
        .merge(crate::graphiql::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::observability::metrics_handler))
        .merge(crate::web::router(state.auth.is_development()))
        .merge(crate::calendar::router())
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

/// A GraphQL-shaped error response with one error and its code.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (status, axum::Json(body)).into_response()
}

/// Reads the whole request body within `timeout` (a client that trickles its body is cut
/// off: 408), under the body-size limit of the router's layer (413).
async fn read_body(
    body: Body,
    timeout: Duration,
    media: media::ResponseMedia,
) -> Result<Bytes, Response> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, usize::MAX)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let too_large =
                std::iter::successors(std::error::Error::source(&e), |cause| cause.source())
                    .any(|cause| cause.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                media::error(
                    media,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BAD_USER_INPUT",
                    "the request body is larger than MAX_BODY_BYTES allows",
                )
            } else {
                media::error(
                    media,
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    "the request body could not be read",
                )
            })
        }
        Err(_) => Err(media::error(
            media,
            StatusCode::REQUEST_TIMEOUT,
            "BAD_USER_INPUT",
            &format!(
                "the request body did not arrive within {} s (HTTP_BODY_TIMEOUT_SECS)",
                timeout.as_secs()
            ),
        )),
    }
}

async fn graphql_ws(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let guarded = ws::is_transport_ws(&headers);
    // Held until the socket is served to the end: shutdown waits for its close frame.
    let running = state.tasks.token();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(WS_MAX_MESSAGE_BYTES)
        .max_frame_size(WS_MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            serve_socket(state, socket, protocol, guarded).await;
            drop(running);
        })
}

/// Runs one GraphQL WebSocket: authenticates `connection_init`, then serves its
/// subscriptions until either side closes it, it misses the init deadline, its token expires
/// or the process shuts down (close 1001, going away). With `guarded`
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
        let state = (out_tx.clone(), socket_messages::OutgoingErrors::default());
        futures_util::sink::unfold(state, move |(tx, mut errors), message: Message| {
            let message = crate::sockets::overload_close(ws::forbidden_close(message));
            if guarded {
                // The guard sees the engine's own messages (a `complete` frees its id even
                // when the client is not sent it).
                lock(&guard).outgoing(&message);
            }
            let sent = match errors.map(message, guarded) {
                Some(message) => tx.send(message),
                None => Ok(()),
            };
            let sent = sent
                .map(|()| (tx, errors))
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

    // When the socket's token expires (known once `connection_init` is accepted).
    let (expiry_tx, mut expiry_rx) = tokio::sync::watch::channel(None::<u64>);
    let init_state = Arc::clone(&state);
    let engine =
        GraphQLWebSocket::new_with_pair(engine_sink, engine_stream, state.schema.clone(), protocol)
            .on_connection_init(move |payload| async move {
                let authorization = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .map(|v| v.as_str().unwrap_or("\u{0}invalid"));
                let user = match init_state.auth.authenticate_until(authorization).await {
                    Ok((user, expires)) => {
                        let _ = expiry_tx.send(Some(expires));
                        user
                    }
                    Err(err) => {
                        tracing::info!(error = %err, "WebSocket connection_init refused");
                        return Err(async_graphql::Error::new(format!(
                            "{FORBIDDEN_REASON}: a valid bearer token is required in the \
                     connection_init payload"
                        )));
                    }
                };
                let lease = init_state
                    .user_sockets
                    .acquire(&user.id)
                    .map_err(async_graphql::Error::new)?;
                let (user_subscriptions, user_cap) = lease.subscriptions();
                let meta = RequestMeta {
                    user,
                    request_id: None,
                };
                let mut data = connection_data(&init_state.db, meta);
                data.insert(
                    SocketSubscriptions::new(init_state.ws_max_subscriptions)
                        .with_user_limit(user_subscriptions, user_cap),
                );
                // Held for as long as the connection's data: the socket's lifetime.
                data.insert(lease);
                Ok(data)
            });

    let init_deadline = async {
        tokio::time::sleep(state.ws_init_timeout).await;
        if lock(&guard).init_received() {
            std::future::pending::<()>().await;
        }
    };
    let token_expiry = async {
        let expires = loop {
            if let Some(expires) = *expiry_rx.borrow_and_update() {
                break expires;
            }
            if expiry_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tokio::time::sleep(Duration::from_secs(expires.saturating_sub(now))).await;
    };
    let run = async {
        tokio::select! {
            () = engine.serve() => {}
            () = token_expiry => {
                tracing::debug!("closing a WebSocket whose token expired");
                let _ = out_tx.send(ws::close(
                    ws::CLOSE_FORBIDDEN,
                    "Forbidden: the token expired; reconnect with a fresh one",
                ));
            }
            () = init_deadline => {
                tracing::debug!(timeout = ?state.ws_init_timeout, "closing a WebSocket that sent no connection_init");
                let _ = out_tx.send(ws::close(
                    ws::CLOSE_INIT_TIMEOUT,
                    "Connection initialisation timeout",
                ));
            }
            () = state.shutdown.cancelled() => {
                tracing::debug!("closing a WebSocket: the server is shutting down");
                let _ = out_tx.send(ws::close(ws::CLOSE_GOING_AWAY, "the server is shutting down"));
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

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and every long-lived task of the gateway (in-process
/// subscribers, relay, live updates) is running. (Liveness, `/healthz`, depends on neither.)
///
/// The broker is reported but does not decide readiness: while it is down the API keeps
/// working (rows wait in the outbox), so taking every replica out of the Service would turn a
/// broker outage into an API outage.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = match crate::db::ping(&state.db).await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
    };
    let broker = match &state.broker {
        None => "embedded",
        Some(broker) if broker.reachable().await => "ok",
        Some(_) => "unreachable",
    };
    let components: serde_json::Map<String, serde_json::Value> = state
        .components
        .snapshot()
        .into_iter()
        .map(|(name, component)| {
            let text = match component {
                crate::health::ComponentState::Running => "running".to_owned(),
                crate::health::ComponentState::Halted(reason) => format!("halted: {reason}"),
            };
            (name.to_owned(), serde_json::Value::String(text))
        })
        .collect();
    let ready = database == "ok" && state.components.all_running();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "broker": broker,
        "components": components,
    });
    (status, axum::Json(body)).into_response()
}
