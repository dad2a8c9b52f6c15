//! Command-line flags with environment fallbacks (`taskstream --help` documents each).

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
        #[arg(long, value_parser = parse_topic)]
        topic: String,
        /// Stop after this many events (default: all that are there now).
        #[arg(long)]
        limit: Option<usize>,
        /// Keep waiting for new events (Ctrl-C to stop).
        #[arg(long)]
        follow: bool,
    },
}

/// A topic `events tail` can read: one of Taskstream's topics or its `.dlq` twin.
fn parse_topic(topic: &str) -> Result<String, String> {
    let known = stream::topics::ALL
        .iter()
        .any(|t| topic == *t || topic == stream::topics::dlq(t));
    if known {
        Ok(topic.to_owned())
    } else {
        Err(format!(
            "unknown topic; Taskstream's topics are {} (and each with .dlq)",
            stream::topics::ALL.join(", ")
        ))
    }
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
        default_value = "sqlite://taskstream.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// Address to listen on, `HOST:PORT` (a name such as localhost:8080 works too). Use
    /// 0.0.0.0:8080 in containers.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// HS256 secret that signs bearer tokens (at least 32 bytes). With neither this nor
    /// JWT_JWKS_URL set, the server runs in development mode with a generated secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
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

    /// Kafka-protocol brokers (`host:port,host:port`, e.g. Redpanda). With neither this nor
    /// NATS_URL: embedded mode, where the outbox table itself is the event log.
    #[arg(long, env = "KAFKA_BROKERS", global = true)]
    pub kafka_brokers: Option<String>,

    #[command(flatten)]
    pub kafka: stream::kafka::KafkaArgs,

    /// NATS servers with JetStream (`nats://host:4222,nats://host2:4222`), instead of
    /// KAFKA_BROKERS: the event log is then one JetStream stream per topic partition.
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,

    #[command(flatten)]
    pub nats: stream::nats::NatsArgs,

    /// Do not run the outbox relay inside this process (run `taskstream relay` instead).
    #[arg(long, env = "TASKSTREAM_NO_RELAY")]
    pub no_relay: bool,

    /// Do not run database migrations at start-up (Kubernetes runs them in a hook Job).
    #[arg(long, env = "TASKSTREAM_NO_MIGRATE")]
    pub no_migrate: bool,

    /// After migrating at start-up, grant the application's login role ROLE its privileges
    /// on PostgreSQL: SELECT, INSERT, UPDATE, DELETE on every table, USAGE, SELECT on every
    /// sequence, EXECUTE on every function, nothing on the migration history (as `migration
    /// up --grant-to ROLE` does), for processes that connect as ROLE. The role must exist.
    /// Has no effect with TASKSTREAM_NO_MIGRATE.
    #[arg(long, env = "TASKSTREAM_APP_DB_ROLE", value_name = "ROLE")]
    pub grant_to: Option<String>,

    /// Log filter, e.g. `info` or `taskstream=debug,sqlx=warn`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// Log format: `text` (human-readable) or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,

    /// `taskstream relay` only: where to serve `GET /metrics` and `GET /healthz` (`host:port`,
    /// or `off`; default 127.0.0.1:9094). The gateway serves `/metrics` on LISTEN_ADDR.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Queries remembered for automatic persisted queries (Apollo's protocol: a client sends
    /// a query's SHA-256 instead of its text once the gateway has seen it); 0 turns them off.
    /// Also bounded to 32 MiB of query text.
    #[arg(long, env = "APQ_CACHE_ENTRIES", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub apq_cache_entries: u64,

    /// Origins allowed to call /graphql from a browser page (CORS): comma-separated
    /// `scheme://host[:port]`, or `*` for any origin. Unset: no cross-origin access.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_parser = crate::cors::parse_flag)]
    pub cors_allowed_origins: Option<String>,

    /// Longest a GraphQL request may run before it is cancelled, in seconds (over HTTP and,
    /// for queries and mutations, over the WebSocket).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,

    /// Hours an `Idempotency-Key` is remembered: a retry within this window gets the first
    /// response back instead of running the mutation again.
    #[arg(long, env = "IDEMPOTENCY_KEY_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub idempotency_key_ttl_hours: u64,

    /// Seconds a connection may take to send a complete request head; also how long an idle
    /// keep-alive connection is kept open waiting for its next request.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_timeout_secs: u64,

    /// Seconds a client may take to send a request body, from its head to its last byte.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_body_timeout_secs: u64,

    /// Most connections open at once (HTTP and WebSocket); more are closed as they arrive.
    /// Lowered at start-up to fit the open-file limit (`ulimit -n`).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Deepest accepted field nesting (introspection has its own limit below).
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Deepest field nesting under `__schema` / `__type`; the standard introspection query
    /// (GraphiQL, Apollo, code generators) needs 14.
    #[arg(long, env = "MAX_INTROSPECTION_DEPTH", default_value_t = 20)]
    pub max_introspection_depth: usize,

    /// Deepest bracket nesting (`{`, `[`, `(`) in a query's text or variables, checked before
    /// the query is parsed.
    #[arg(long, env = "MAX_QUERY_NESTING", default_value_t = 64, value_parser = clap::value_parser!(u64).range(8..=256))]
    pub max_query_nesting: u64,

    /// Most fields one request may select, with fragments expanded.
    #[arg(long, env = "MAX_QUERY_FIELDS", default_value_t = 2_000)]
    pub max_query_fields: usize,

    /// Most root fields (queries or mutations) in one operation, with fragments expanded.
    #[arg(long, env = "MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Most aliased fields in one request.
    #[arg(long, env = "MAX_QUERY_ALIASES", default_value_t = 50)]
    pub max_query_aliases: usize,

    /// Largest subscription request (document plus variables), in bytes: a subscription keeps
    /// its parsed document for as long as it lives.
    #[arg(long, env = "MAX_SUBSCRIPTION_BYTES", default_value_t = 16 * 1024)]
    pub max_subscription_bytes: usize,

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

    /// WebSockets one user may hold open at once on this gateway; one more is closed with
    /// 1013 (Try Again Later).
    #[arg(long, env = "WS_MAX_SOCKETS_PER_USER", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub ws_max_sockets_per_user: u64,

    /// Live subscriptions one user may hold across all their WebSockets; one more is refused
    /// (RATE_LIMITED).
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS_PER_USER", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub ws_max_subscriptions_per_user: u64,

    /// The gateway's public base URL, e.g. `https://tasks.example.com` (http or https, no
    /// query): calendar feed URLs start with it. Unset: the scheme and host the request that
    /// created the feed was sent to (`X-Forwarded-Proto` and `Host`).
    #[arg(long, env = "PUBLIC_URL", value_parser = crate::calendar::parse_public_url)]
    pub public_url: Option<String>,

    /// Calendar feed requests a minute per client address (a burst of as many is allowed);
    /// more get 429 with Retry-After. The address is the TCP peer: behind a reverse proxy
    /// every client shares the proxy's, so raise this or set 0 (off) there.
    #[arg(long, env = "CALENDAR_FEED_RATE_PER_ADDRESS", default_value_t = crate::calendar::rate_limit::DEFAULT_PER_ADDRESS_PER_MINUTE, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub calendar_feed_rate_per_address: u32,

    /// Requests a minute one calendar feed may be fetched (a burst of as many is allowed);
    /// more get 429 with Retry-After. 0 is off.
    #[arg(long, env = "CALENDAR_FEED_RATE_PER_FEED", default_value_t = crate::calendar::rate_limit::DEFAULT_PER_FEED_PER_MINUTE, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub calendar_feed_rate_per_feed: u32,

    #[command(flatten)]
    pub webhooks: subscribers::webhook::WebhookArgs,

    #[command(flatten)]
    pub oidc: crate::oidc::OidcArgs,

    #[command(flatten)]
    pub retention: crate::retention::RetentionArgs,
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The document limits these flags set.
    pub fn document_limits(&self) -> crate::document_limits::DocumentLimits {
        crate::document_limits::DocumentLimits {
            max_nesting: usize::try_from(self.max_query_nesting).unwrap_or(usize::MAX),
            max_depth: self.max_query_depth,
            max_introspection_depth: self.max_introspection_depth,
            max_fields: self.max_query_fields,
            max_root_fields: self.max_root_fields,
            max_aliases: self.max_query_aliases,
            max_subscription_bytes: self.max_subscription_bytes,
        }
    }

    /// The connection limits these flags set (see [`crate::serve`]).
    pub fn connection_limits(&self) -> crate::serve::ConnectionLimits {
        crate::serve::ConnectionLimits {
            max_connections: crate::serve::effective_max_connections(
                usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            ),
            header_timeout: Duration::from_secs(self.http_header_timeout_secs),
        }
    }

    pub fn ws_init_timeout(&self) -> Duration {
        Duration::from_secs(self.ws_init_timeout_secs)
    }
}

impl Default for ServerConfig {
    /// Every flag at its default. It reads no environment variable and never exits: parsing
    /// flags and the environment (with clap's error messages) is the command line's job
    /// ([`Cli`], in `main`).
    fn default() -> ServerConfig {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| arg.env(None::<&str>));
        let defaults = command
            .try_get_matches_from(["taskstream"])
            .and_then(|matches| ServerConfig::from_arg_matches(&matches));
        match defaults {
            Ok(config) => config,
            Err(e) => unreachable!("BUG: the flags' defaults do not parse: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_every_flags_default() {
        let config = ServerConfig::default();
        assert_eq!(config.listen_addr, "127.0.0.1:8080");
        assert!(config.kafka_brokers.is_none());
        assert!(!config.no_relay);
    }
}
