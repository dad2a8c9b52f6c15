//! Wiring: from configuration to a running gateway (database, migrations, auth, schema,
//! router). `main.rs` only parses flags and calls [`run`]; tests call [`build`] with a
//! listener on port 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stream::embedded::EmbeddedLog;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::http::{AppState, router};
use crate::live::LiveHub;
use crate::schema::{Clock, SchemaLimits, build_schema};

/// The development user: the subject of the token printed in development mode.
pub const DEV_USER: &str = "developer";

/// How long the printed development token stays valid.
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A built gateway, ready to serve.
pub struct Gateway {
    pub router: axum::Router,
    pub state: Arc<AppState>,
    /// In development mode, a token for [`DEV_USER`].
    pub dev_token: Option<String>,
}

/// Chooses the token verifier from the configuration.
pub async fn authenticator(config: &ServerConfig) -> anyhow::Result<Authenticator> {
    let auth = match (&config.jwt_secret, &config.jwt_jwks_url) {
        (Some(secret), _) => Authenticator::hs256(secret.as_bytes())?,
        (None, Some(url)) => Authenticator::jwks(url).await?,
        (None, None) => Authenticator::development(),
    };
    Ok(auth
        .with_audience(config.jwt_audience.clone())
        .with_issuer(config.jwt_issuer.clone()))
}

/// Connects, migrates (unless disabled) and builds the router.
pub async fn build(config: &ServerConfig) -> anyhow::Result<Gateway> {
    let oidc = config.oidc.settings(config.jwt_jwks_url.is_some())?;
    let db = crate::db::connect(&config.database_url).await?;
    if !config.no_migrate {
        crate::db::migrate(&db).await?;
    }
    let auth = authenticator(config).await?;
    let dev_token = if auth.is_development() {
        auth.issue_token(DEV_USER, DEV_TOKEN_TTL)
    } else {
        None
    };
    let limits = SchemaLimits {
        document: config.document_limits(),
        execution_timeout: config.request_timeout(),
        idempotency_ttl: Duration::from_secs(config.idempotency_key_ttl_hours * 3600),
        max_complexity: config.max_query_complexity,
        introspection: !config.disable_introspection,
        webhook_targets: config.webhooks.settings()?.policy,
    };
    let live = LiveHub::new();
    let schema = build_schema(db.clone(), Clock::System, &limits, live.clone());
    let graphiql_html =
        (!config.disable_graphiql).then(|| crate::graphiql::page(dev_token.as_deref()));
    let kafka = crate::events::kafka_config(config)?;
    let state = Arc::new(AppState {
        schema,
        db,
        kafka,
        auth,
        request_timeout: config.request_timeout(),
        body_timeout: Duration::from_secs(config.http_body_timeout_secs),
        graphiql_html,
        live,
        ws_init_timeout: config.ws_init_timeout(),
        ws_max_subscriptions: usize::try_from(config.ws_max_subscriptions).unwrap_or(usize::MAX),
        components: crate::health::Components::new(),
        user_sockets: crate::sockets::UserSockets::new(
            usize::try_from(config.ws_max_sockets_per_user).unwrap_or(usize::MAX),
            usize::try_from(config.ws_max_subscriptions_per_user).unwrap_or(usize::MAX),
        ),
        oidc,
        graphql_http: crate::http::GraphqlHttp::from_config(config)?,
    });
    Ok(Gateway {
        router: router(state.clone(), config.max_body_bytes),
        state,
        dev_token,
    })
}

/// Starts the live updates consumer: it tails `task-events` and `notifications` (the outbox in
/// embedded mode, the brokers in distributed mode) from their current end into the gateway's
/// [`LiveHub`] until `shutdown` turns true.
pub fn start_live_updates(
    state: &AppState,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    start_live_updates_on(state, None, shutdown)
}

/// [`start_live_updates`], reading the outbox in embedded mode through `embedded` when given:
/// the process's one [`EmbeddedLog`], shared with the in-process subscribers.
fn start_live_updates_on(
    state: &AppState,
    embedded: Option<EmbeddedLog>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let hub = state.live.clone();
    let tail = match &state.kafka {
        None => {
            let log = Arc::new(embedded.unwrap_or_else(|| EmbeddedLog::new(state.db.clone())));
            let shutdown = shutdown.clone();
            futures_util::future::FutureExt::boxed(async move {
                crate::live::run_consumer(log, hub, shutdown).await;
                Ok(())
            })
        }
        Some(kafka) => {
            let kafka = kafka.clone();
            let mut shutdown = shutdown.clone();
            futures_util::future::FutureExt::boxed(async move {
                let Some(log) = crate::events::connect_with_retry(&kafka, &mut shutdown).await
                else {
                    return Ok(());
                };
                crate::live::run_consumer(Arc::new(log), hub, shutdown).await;
                Ok(())
            })
        }
    };
    let supervised = state.components.supervise("live updates", shutdown, tail);
    tokio::spawn(async move {
        let _ = supervised.await;
    })
}

/// A shutdown flag every long-lived task watches; it turns true on SIGINT or SIGTERM.
pub fn shutdown_channel() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

/// Runs the gateway (and, in distributed mode, the outbox relay) until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let gateway = build(&config).await?;
    let shutdown = shutdown_channel();
    let relay = match (&gateway.state.kafka, config.no_relay) {
        (Some(kafka), false) => Some(tokio::spawn(gateway.state.components.supervise(
            "relay",
            shutdown.clone(),
            crate::events::run_relay(gateway.state.db.clone(), kafka.clone(), shutdown.clone()),
        ))),
        (Some(_), true) => {
            tracing::info!("distributed mode; the relay runs elsewhere (--no-relay)");
            None
        }
        (None, _) => {
            tracing::info!(
                "embedded mode: no KAFKA_BROKERS; the outbox table is the event log and the \
                 subscribers run in this process"
            );
            None
        }
    };
    // Embedded mode: one reader of the outbox table for every consumer in this process.
    let embedded = gateway
        .state
        .kafka
        .is_none()
        .then(|| EmbeddedLog::new(gateway.state.db.clone()));
    let subscribers = match &embedded {
        Some(log) => Some(tokio::spawn(
            crate::events::run_embedded_subscribers_reporting(
                gateway.state.db.clone(),
                log.clone(),
                config.webhooks.settings()?,
                shutdown.clone(),
                gateway.state.components.clone(),
            ),
        )),
        None => None,
    };
    let live = start_live_updates_on(&gateway.state, embedded, shutdown.clone());
    let retention = crate::retention::spawn(
        &config.retention,
        gateway.state.db.clone(),
        gateway.state.kafka.is_some(),
        shutdown.clone(),
    );
    let listener = TcpListener::bind(config.listen_addr.as_str())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (LISTEN_ADDR: HOST:PORT, e.g. 127.0.0.1:8080)",
                config.listen_addr
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %crate::db::redact_url(&config.database_url), "Taskstream is listening");
    if let Some(token) = &gateway.dev_token {
        print_development_banner(&addr.to_string(), token);
    }
    println!(
        "Web app: http://{addr}/   GraphiQL: http://{addr}/graphiql   API: POST http://{addr}/graphql"
    );
    let mut server_shutdown = shutdown.clone();
    crate::serve::serve(
        listener,
        gateway.router,
        async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        },
        config.connection_limits(),
    )
    .await?;
    if let Some(subscribers) = subscribers {
        match subscribers.await {
            Ok(Err(e)) => {
                tracing::error!(error = %e, "an embedded subscriber stopped with an error")
            }
            Err(e) => tracing::error!(error = %e, "an embedded subscriber panicked"),
            Ok(Ok(())) => {}
        }
    }
    if let Err(e) = live.await {
        tracing::error!(error = %e, "the live updates consumer panicked");
    }
    crate::retention::join(retention).await;
    if let Some(relay) = relay {
        match relay.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the outbox relay failed"),
            Err(e) => tracing::error!(error = %e, "the outbox relay panicked"),
            Ok(Ok(())) => {}
        }
    }
    gateway.state.db.clone().close().await.ok();
    tracing::info!("Taskstream stopped");
    Ok(())
}

fn print_development_banner(addr: &str, token: &str) {
    let line = "=".repeat(78);
    println!(
        "{line}\n\
         DEVELOPMENT MODE: neither JWT_SECRET nor JWT_JWKS_URL is set.\n\
         A signing key was generated for this process only; tokens die with it.\n\
         Do not expose this server: set JWT_SECRET or JWT_JWKS_URL for real use.\n\n\
         Token for user \"{DEV_USER}\":\n{token}\n\n\
         The web app, signed in as this user:\n  http://{addr}/\n\
         GraphiQL with this token already in its Authorization header:\n  http://{addr}/graphiql\n\
         curl:\n  curl -s http://{addr}/graphql -H 'Content-Type: application/json' \\\n    \
         -H \"Authorization: Bearer $TOKEN\" -d '{{\"query\":\"{{ me {{ id }} }}\"}}'\n\
         {line}"
    );
}

/// `taskstream relay`: only the outbox relay, until SIGINT or SIGTERM.
pub async fn run_relay_only(config: ServerConfig) -> anyhow::Result<()> {
    let kafka = crate::events::kafka_config(&config)?
        .ok_or_else(|| anyhow::anyhow!("taskstream relay needs KAFKA_BROKERS"))?;
    let db = crate::db::connect(&config.database_url).await?;
    if !config.no_migrate {
        crate::db::migrate(&db).await?;
    }
    let default_metrics = std::net::SocketAddr::from(([127, 0, 0, 1], 9094));
    subscribers::metrics_server::start(
        config.metrics_addr.as_deref(),
        default_metrics,
        Some(db.clone()),
    )
    .await?;
    let shutdown = shutdown_channel();
    let retention = crate::retention::spawn(&config.retention, db.clone(), true, shutdown.clone());
    crate::events::run_relay(db.clone(), kafka, shutdown).await?;
    crate::retention::join(retention).await;
    db.close().await.ok();
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (Kubernetes, Docker).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

/// Initialises `tracing` output (human-readable text or JSON lines on stderr) and, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OTLP span export as service `taskstream` (or
/// `OTEL_SERVICE_NAME`). Keep the returned guard alive: dropping it flushes the spans.
pub fn init_tracing(filter: &str, format: &str) -> anyhow::Result<telemetry::Telemetry> {
    telemetry::init(&telemetry::TelemetryConfig::from_env(
        "taskstream",
        filter,
        format,
    )?)
}
