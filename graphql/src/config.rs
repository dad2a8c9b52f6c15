//! Command-line flags with environment fallbacks (`taskstream --help` documents each).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Taskstream: an event-driven task API (GraphQL) you run yourself.
///
/// With no flags it runs embedded: a SQLite file in the working directory, GraphiQL at
/// http://127.0.0.1:8080/graphiql, and a generated development signing key with a ready token
/// printed at start-up.
#[derive(Debug, Parser)]
#[command(name = "taskstream", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub server: ServerConfig,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default when no command is given).
    Serve,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Run only the outbox relay: publish pending outbox rows to KAFKA_BROKERS (for a
    /// deployment that runs the relay apart from the gateway; see --no-relay).
    Relay,
    /// Print events from the log as JSON lines (from Kafka with KAFKA_BROKERS, else from the
    /// embedded outbox).
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Inspect and act on dead letters: records a consumer gave up on.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print an HS256 token for a user, signed with JWT_SECRET (for scripts and testing).
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the events of one topic, oldest first, then (with --follow) new ones as they come.
    Tail {
        /// Topic: task-events, task-updates, reminders, notifications, or a `.dlq` twin.
        #[arg(long)]
        topic: String,
        /// Stop after this many events (default: all that are there now).
        #[arg(long)]
        limit: Option<usize>,
        /// Keep waiting for new events (Ctrl-C to stop).
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first, as JSON lines.
    List {
        /// Only PARKED, REPLAYED or DISCARDED ones.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Show one dead letter with its payload and headers.
    Show { id: i64 },
    /// Run a parked record through its consumer's handler again (applied at most once).
    Replay { id: i64 },
    /// Mark a parked record as discarded (kept for the record, never replayed).
    Discard { id: i64 },
}

/// Settings of the gateway process.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded default) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://taskstream.db?mode=rwc"
    )]
    pub database_url: String,

    /// Address to listen on. Use 0.0.0.0:8080 in containers.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// HS256 secret that signs bearer tokens (at least 32 bytes). With neither this nor
    /// JWT_JWKS_URL set, the server runs in development mode with a generated secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// URL of a JSON Web Key Set for RS256/ES256 tokens (e.g. your identity provider's).
    #[arg(long, env = "JWT_JWKS_URL", conflicts_with = "jwt_secret")]
    pub jwt_jwks_url: Option<String>,

    /// Required `aud` claim, if set.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Required `iss` claim, if set.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Kafka-protocol brokers (`host:port,host:port`, e.g. Redpanda). Unset: embedded mode, where
    /// the outbox table itself is the event log.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    #[command(flatten)]
    pub kafka: subscribers::process::KafkaArgs,

    /// Do not run the outbox relay inside this process (run `taskstream relay` instead).
    #[arg(long, env = "TASKSTREAM_NO_RELAY")]
    pub no_relay: bool,

    /// Do not run database migrations at start-up (Kubernetes runs them in a hook Job).
    #[arg(long, env = "TASKSTREAM_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Log filter, e.g. `info` or `taskstream=debug,sqlx=warn`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format: `text` (human-readable) or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// `taskstream relay` only: where to serve `GET /metrics` and `GET /healthz` (`host:port`,
    /// or `off`; default 127.0.0.1:9094). The gateway serves `/metrics` on LISTEN_ADDR.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest a GraphQL request may run before it is cancelled, in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,

    /// Deepest accepted query nesting.
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Highest accepted query complexity (fields, with lists weighted by page size).
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 5_000)]
    pub max_query_complexity: usize,

    /// Turn off schema introspection (recommended in production).
    #[arg(long, env = "DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,

    /// Do not serve GraphiQL at /graphiql.
    #[arg(long, env = "DISABLE_GRAPHIQL")]
    pub disable_graphiql: bool,

    /// Seconds a new WebSocket may take to send `connection_init` before it is closed (4408).
    #[arg(long, env = "WS_INIT_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ws_init_timeout_secs: u64,

    /// Live subscriptions one WebSocket may hold at once; one more is refused (RATE_LIMITED).
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub ws_max_subscriptions: u64,

    #[command(flatten)]
    pub webhooks: subscribers::webhook::WebhookArgs,

    #[command(flatten)]
    pub oidc: crate::oidc::OidcArgs,
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn ws_init_timeout(&self) -> Duration {
        Duration::from_secs(self.ws_init_timeout_secs)
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        let cli = Cli::parse_from(["taskstream"]);
        cli.server
    }
}
