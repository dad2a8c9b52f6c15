//! The gateway's one lifecycle: [`App::start`] builds the gateway from its configuration and
//! runs, on a listener the caller bound, the HTTP server and every long-lived task of the
//! process (the outbox relay in distributed mode, the in-process subscribers and their
//! companion loops in embedded mode, the live tail, retention) under one
//! [`CancellationToken`] and one [`TaskTracker`]. `main` (`taskstream serve`), every test
//! server and the benchmarks start it; `taskstream relay` is [`App::start_relay`], the same
//! lifecycle without the HTTP server.
//!
//! A task that dies: in the gateway each long-lived task is a [`Components`] entry, so one
//! that returns, fails or panics before shutdown makes `/readyz` answer 503 naming it (the
//! gateway keeps serving reads; the orchestrator stops routing to it and restarts it). In
//! `taskstream relay` the relay is the process: its end stops the process with its error.
//!
//! Shutdown (the token is cancelled, by a signal in `main` or by the caller): the accept loop
//! stops and in-flight requests drain, every open WebSocket is sent close 1001 (going away),
//! the tasks stop at their next step; [`RunningApp::join`] completes when all of them have
//! ended (bounded by [`DRAIN_TIMEOUT`]) and the database pool is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stream::embedded::EmbeddedLog;
pub use stream::lifecycle::{CancellationToken, TaskTracker};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use subscribers::webhook::WebhookSettings;

use crate::config::ServerConfig;
use crate::health::Components;
use crate::http::AppState;

/// How long shutdown waits for the tasks (and WebSockets) to end after the server stopped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A built gateway, not yet running: [`App::build`], then [`App::run`]. Or both at once,
/// [`App::start`].
pub struct App {
    state: AppState,
    dev_token: Option<String>,
    webhooks: WebhookSettings,
    config: ServerConfig,
}

/// A running gateway.
pub struct RunningApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Completes once the server and every task have stopped after shutdown, with the
    /// server's error if it failed.
    pub join: JoinHandle<anyhow::Result<()>>,
    /// The handlers' state (the database, the live hub, the components `/readyz` reads).
    pub state: Arc<AppState>,
    /// In development mode, a token for [`crate::startup::DEV_USER`].
    pub dev_token: Option<String>,
    /// The token it stops on.
    pub shutdown: CancellationToken,
}

impl RunningApp {
    /// Cancels the shutdown token and waits for the gateway to stop.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.join.await?
    }
}

impl App {
    /// Builds the gateway and runs it on `listener` until `shutdown` is cancelled.
    pub async fn start(
        config: ServerConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<RunningApp> {
        App::build(config).await?.run(listener, shutdown)
    }

    /// Connects, migrates (unless disabled) and builds the handlers' state; nothing runs yet.
    pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
        let (state, dev_token) = crate::startup::build_state(&config).await?;
        Ok(App {
            state,
            dev_token,
            webhooks: config.webhooks.settings()?,
            config,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// In development mode, a token for [`crate::startup::DEV_USER`].
    pub fn dev_token(&self) -> Option<&str> {
        self.dev_token.as_deref()
    }

    /// The handlers' state, to adjust before [`App::run`] (tests: sub-second timeouts).
    pub fn state_mut(&mut self) -> &mut AppState {
        &mut self.state
    }

    /// The in-process webhook subscriber's settings, to adjust before [`App::run`] (tests:
    /// a loopback receiver).
    pub fn webhooks_mut(&mut self) -> &mut WebhookSettings {
        &mut self.webhooks
    }

    /// Starts the long-lived tasks and serves on `listener` until `shutdown` is cancelled.
    pub fn run(
        mut self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<RunningApp> {
        let addr = listener.local_addr()?;
        let (config, webhooks) = (self.config, self.webhooks);
        self.state.shutdown = shutdown.clone();
        let tracker = self.state.tasks.clone();
        let state = Arc::new(self.state);
        let (db, components) = (&state.db, &state.components);

        let embedded = match (&state.broker, config.no_relay) {
            (Some(broker), false) => {
                components.spawn(
                    &tracker,
                    "relay",
                    &shutdown,
                    crate::events::run_relay(db.clone(), broker.clone(), shutdown.clone()),
                );
                None
            }
            (Some(_), true) => {
                tracing::info!("distributed mode; the relay runs elsewhere (--no-relay)");
                None
            }
            (None, _) => {
                tracing::info!(
                    "embedded mode: no KAFKA_BROKERS or NATS_URL; the outbox table is the event \
                     log and the subscribers run in this process"
                );
                // One reader of the outbox table for every consumer in this process.
                let log = EmbeddedLog::new(db.clone());
                crate::events::spawn_embedded_subscribers(
                    &tracker, components, db, &log, webhooks, &shutdown,
                )?;
                Some(log)
            }
        };
        components.spawn(
            &tracker,
            "live updates",
            &shutdown,
            live_updates(&state, embedded, shutdown.clone()),
        );
        components.spawn(
            &tracker,
            "retention",
            &shutdown,
            crate::retention::run_with(
                &config.retention,
                db.clone(),
                state.broker.is_some(),
                shutdown.clone(),
            ),
        );
        // SQLite only (returns at once on PostgreSQL): keeps the WAL file bounded.
        tracker.spawn(stream::write_txn::checkpoint_loop(
            db.clone(),
            shutdown.clone(),
        ));
        // Other processes' commits wake this one's outbox readers (NOTIFY on PostgreSQL,
        // the commit counter on SQLite).
        tracker.spawn(stream::wakeup::run(db.clone(), shutdown.clone()));

        let router = crate::http::router(Arc::clone(&state), config.max_body_bytes);
        let limits = config.connection_limits();
        let join = {
            let (state, shutdown) = (Arc::clone(&state), shutdown.clone());
            tokio::spawn(async move {
                let served = crate::serve::serve(
                    listener,
                    router,
                    shutdown.clone().cancelled_owned(),
                    limits,
                )
                .await;
                // However the server ended, everything else stops with it.
                shutdown.cancel();
                drain(&tracker).await;
                state.db.clone().close().await.ok();
                served.context("the HTTP server failed")
            })
        };
        Ok(RunningApp {
            addr,
            join,
            state,
            dev_token: self.dev_token,
            shutdown,
        })
    }

    /// `taskstream relay`: connects, migrates (unless disabled), serves `/metrics` on
    /// `METRICS_ADDR` (default 127.0.0.1:9094), and runs the outbox relay and retention until
    /// `shutdown` is cancelled or the relay stops on its own, which stops the process (the
    /// handle then yields its error).
    pub async fn start_relay(
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
        let broker = crate::events::broker_config(&config)?.ok_or_else(|| {
            anyhow::anyhow!(
                "taskstream relay needs KAFKA_BROKERS or NATS_URL (the broker to publish to)"
            )
        })?;
        let db = crate::db::connect(&config.database_url).await?;
        crate::db::prepare(&db, &config).await?;
        let default_metrics = SocketAddr::from(([127, 0, 0, 1], 9094));
        subscribers::metrics_server::start(
            config.metrics_addr.as_deref(),
            default_metrics,
            Some(db.clone()),
        )
        .await?;
        let (tracker, components) = (TaskTracker::new(), Components::new());
        let relay = components.spawn(
            &tracker,
            "relay",
            &shutdown,
            crate::events::run_relay(db.clone(), broker, shutdown.clone()),
        );
        components.spawn(
            &tracker,
            "retention",
            &shutdown,
            crate::retention::run_with(&config.retention, db.clone(), true, shutdown.clone()),
        );
        // The gateways' and subscribers' commits wake the relay.
        tracker.spawn(stream::wakeup::run(db.clone(), shutdown.clone()));
        Ok(tokio::spawn(async move {
            let result = relay.await.unwrap_or_else(|e| Err(e.into()));
            shutdown.cancel();
            drain(&tracker).await;
            db.close().await.ok();
            result.context("the outbox relay stopped")
        }))
    }
}

/// Closes `tracker` and waits (at most [`DRAIN_TIMEOUT`]) for its tasks to end.
async fn drain(tracker: &TaskTracker) {
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?DRAIN_TIMEOUT,
            tasks = tracker.len(),
            "tasks still running after shutdown; stopping without them"
        );
    }
}

/// The live tail: `task-events` and `notifications` (the outbox through `embedded`, the
/// process's one [`EmbeddedLog`], in embedded mode; the brokers in distributed mode) from
/// their current end into the gateway's [`crate::live::LiveHub`], until `shutdown`.
fn live_updates(
    state: &AppState,
    embedded: Option<EmbeddedLog>,
    shutdown: CancellationToken,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let hub = state.live.clone();
    let db = state.db.clone();
    let broker = state.broker.clone();
    async move {
        match broker {
            None => {
                let log = Arc::new(embedded.unwrap_or_else(|| EmbeddedLog::new(db)));
                crate::live::run_consumer(log, hub, shutdown).await;
            }
            Some(broker) => {
                let Some(log) = stream::broker::BrokerLog::connect_with_retry(&broker, &shutdown)
                    .await
                    .context("cannot use the event log; live updates are not running")?
                else {
                    return Ok(());
                };
                crate::live::run_consumer(Arc::new(log), hub, shutdown).await;
            }
        }
        Ok(())
    }
}
