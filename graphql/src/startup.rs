//! Wiring: from configuration to a built gateway (database, migrations, auth, schema,
//! router), and the command-line entry points. `main.rs` only parses flags and calls [`run`]
//! or [`run_relay_only`], which start [`crate::app::App`] until SIGINT or SIGTERM; tests start
//! the same [`crate::app::App`] on a listener on port 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stream::lifecycle::CancellationToken;
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

/// Connects, migrates (unless disabled) and builds the router (nothing runs yet).
pub async fn build(config: &ServerConfig) -> anyhow::Result<Gateway> {
    let (state, dev_token) = build_state(config).await?;
    let state = Arc::new(state);
    Ok(Gateway {
        router: router(state.clone(), config.max_body_bytes),
        state,
        dev_token,
    })
}

/// Connects, migrates (unless disabled) and builds the handlers' state, with the development
/// token in development mode.
pub(crate) async fn build_state(
    config: &ServerConfig,
) -> anyhow::Result<(AppState, Option<String>)> {
    let oidc = config.oidc.settings(config.jwt_jwks_url.is_some())?;
    let db = crate::db::connect(&config.database_url).await?;
    crate::db::prepare(&db, config).await?;
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
        public_url: config.public_url.clone(),
    };
    let live = LiveHub::new();
    let schema = build_schema(db.clone(), Clock::System, &limits, live.clone());
    let graphiql_html =
        (!config.disable_graphiql).then(|| crate::graphiql::page(dev_token.as_deref()));
    let broker = crate::events::broker_config(config)?;
    let state = AppState {
        schema,
        db,
        broker,
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
        calendar: crate::calendar::CalendarFeeds::from_config(config),
        shutdown: CancellationToken::new(),
        tasks: stream::lifecycle::TaskTracker::new(),
    };
    Ok((state, dev_token))
}

/// `taskstream serve`: the gateway on `LISTEN_ADDR` until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let app = crate::app::App::build(config).await?;
    let config = app.config();
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
    if let Some(token) = app.dev_token() {
        print_development_banner(&addr.to_string(), token);
    }
    if config.log_format == "json" {
        // Every line a JSON record, for log collectors.
        tracing::info!(
            web_app = %format_args!("http://{addr}/"),
            graphiql = %format_args!("http://{addr}/graphiql"),
            api = %format_args!("http://{addr}/graphql"),
            "Web app, GraphiQL and API"
        );
    } else {
        println!(
            "Web app: http://{addr}/   GraphiQL: http://{addr}/graphiql   API: POST http://{addr}/graphql"
        );
    }
    let shutdown = stream::lifecycle::cancel_on_signal(CancellationToken::new());
    let result = app.run(listener, shutdown)?.join.await?;
    tracing::info!("Taskstream stopped");
    result
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

/// `taskstream relay`: only the outbox relay (and retention), until SIGINT or SIGTERM or
/// until the relay stops on its own (then with its error).
pub async fn run_relay_only(config: ServerConfig) -> anyhow::Result<()> {
    let shutdown = stream::lifecycle::cancel_on_signal(CancellationToken::new());
    crate::app::App::start_relay(config, shutdown)
        .await?
        .await?
}

/// Initialises `tracing` output (human-readable text or JSON lines on stderr) and, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OTLP span export as service `taskstream` (or
/// `OTEL_SERVICE_NAME`). Keep the returned guard alive: dropping it flushes the spans.
pub fn init_tracing(filter: &str, format: &str) -> anyhow::Result<telemetry::Telemetry> {
    subscribers::process::init_tracing("taskstream", filter, format)
}
