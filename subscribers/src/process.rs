//! What every subscriber binary shares: its common flags, logging, the database pool, the Kafka
//! log, partition assignment and the shutdown signal. Each binary is then a few lines that pick
//! a topic and a handler.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use stream::consumer::{Consumer, ConsumerConfig, Handler};
use stream::kafka::{KafkaConfig, KafkaLog};

/// Flags (with environment fallbacks) common to every subscriber binary.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// `postgres://...` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// `host:port,host:port`.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: String,
    /// The partitions of the consumed topic this instance owns: `all` or a comma list (`0,2`).
    /// Assignment is explicit: give each instance a disjoint list.
    #[arg(long, env = "PARTITIONS", default_value = "all")]
    pub partitions: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// A tracing filter (`info`, `subscribers=debug,info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format: `text` (human-readable) or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Where to serve `GET /metrics` (Prometheus) and `GET /healthz`: `host:port`, or `off`.
    /// Default: loopback, one port per binary (recurrence 9091, reminder 9092, notification
    /// 9093), so they can run side by side on a laptop; the Helm chart sets `0.0.0.0:9090`.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
}

/// How to reach the brokers and create topics, beyond their addresses: shared by the gateway
/// (and its relay) and every subscriber binary, so one set of `KAFKA_*` variables configures
/// all of them.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Partitions of each topic Taskstream creates at start-up when missing.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,

    /// Replication factor of the topics Taskstream creates (3 on a production cluster).
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i16,

    /// Compression of produced batches: `gzip` or `none`.
    #[arg(long, env = "KAFKA_COMPRESSION", default_value = "gzip", value_parser = ["gzip", "none"])]
    pub kafka_compression: String,

    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with KAFKA_SASL_USERNAME and
    /// KAFKA_SASL_PASSWORD).
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])]
    pub kafka_sasl_mechanism: Option<String>,

    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,

    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,

    /// Connect to the brokers over TLS.
    #[arg(long, env = "KAFKA_TLS")]
    pub kafka_tls: bool,

    /// PEM file of the CA that signed the brokers' certificates (implies KAFKA_TLS).
    #[arg(long, env = "KAFKA_TLS_CA_FILE")]
    pub kafka_tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for KafkaArgs {
    fn default() -> KafkaArgs {
        KafkaArgs {
            kafka_partitions: 3,
            kafka_replication_factor: 1,
            kafka_compression: "gzip".into(),
            kafka_sasl_mechanism: None,
            kafka_sasl_username: None,
            kafka_sasl_password: None,
            kafka_tls: false,
            kafka_tls_ca_file: None,
        }
    }
}

impl KafkaArgs {
    /// The transport configuration for `brokers`; errors name the variable.
    pub fn config(&self, brokers: &str) -> anyhow::Result<KafkaConfig> {
        use stream::kafka::{Compression, SaslMechanism, SaslSettings, TlsSettings};
        let mut kafka = KafkaConfig::from_brokers(brokers)?;
        if self.kafka_partitions < 1 {
            anyhow::bail!("KAFKA_PARTITIONS must be at least 1");
        }
        if self.kafka_replication_factor < 1 {
            anyhow::bail!("KAFKA_REPLICATION_FACTOR must be at least 1");
        }
        kafka.partitions = self.kafka_partitions;
        kafka.replication_factor = self.kafka_replication_factor;
        kafka.compression = match self.kafka_compression.as_str() {
            "none" => Compression::None,
            _ => Compression::Gzip,
        };
        kafka.sasl = match &self.kafka_sasl_mechanism {
            None => None,
            Some(mechanism) => {
                let mechanism = match mechanism.as_str() {
                    "PLAIN" => SaslMechanism::Plain,
                    "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                    _ => SaslMechanism::ScramSha512,
                };
                let (Some(username), Some(password)) =
                    (&self.kafka_sasl_username, &self.kafka_sasl_password)
                else {
                    anyhow::bail!(
                        "KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                    );
                };
                Some(SaslSettings {
                    mechanism,
                    username: username.clone(),
                    password: password.clone(),
                })
            }
        };
        if self.kafka_tls || self.kafka_tls_ca_file.is_some() {
            kafka.tls = Some(TlsSettings {
                ca_file: self.kafka_tls_ca_file.clone(),
            });
        }
        Ok(kafka)
    }
}

/// Logs to stderr with `filter`, as text or (`format` = `json`) one JSON object per line, and
/// exports spans over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (service name
/// `service` unless `OTEL_SERVICE_NAME` says otherwise). Keep the returned guard alive.
pub fn init_tracing(
    service: &str,
    filter: &str,
    format: &str,
) -> anyhow::Result<telemetry::Telemetry> {
    telemetry::init(&telemetry::TelemetryConfig::from_env(
        service, filter, format,
    )?)
}

/// Starts the `/metrics` + `/healthz` server on `METRICS_ADDR` (default: loopback on
/// `default_port`), unless it is `off`; see [`crate::metrics_server::start`] for a taken
/// default port.
pub async fn start_metrics_server(args: &CommonArgs, default_port: u16) -> anyhow::Result<()> {
    let default = std::net::SocketAddr::from(([127, 0, 0, 1], default_port));
    crate::metrics_server::start(args.metrics_addr.as_deref(), default, None).await
}

/// A small pool; SQLite in WAL mode with a busy timeout, as the gateway opens it.
pub async fn connect_db(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(4)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    }
    Database::connect(opts)
        .await
        .context("cannot connect to the database")
}

/// Connects to the brokers and creates missing topics.
pub async fn connect_log(args: &CommonArgs) -> anyhow::Result<KafkaLog> {
    let log = KafkaLog::connect(args.kafka.config(&args.kafka_brokers)?).await?;
    log.ensure_taskstream_topics().await?;
    Ok(log)
}

/// The partitions of `topic` named by `spec`: `all`, or a comma list of partition numbers that
/// exist in the topic.
pub async fn partitions(log: &KafkaLog, topic: &str, spec: &str) -> anyhow::Result<Vec<i32>> {
    let count = log.partition_count(topic).await?;
    parse_partitions(spec, topic, count)
}

/// Parses a PARTITIONS value against a topic with `count` partitions (sorted, deduplicated).
pub fn parse_partitions(spec: &str, topic: &str, count: i32) -> anyhow::Result<Vec<i32>> {
    if spec.trim() == "all" {
        return Ok((0..count).collect());
    }
    let mut list = spec
        .split(',')
        .map(|p| p.trim().parse::<i32>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("PARTITIONS {spec:?} is not `all` or a comma list of numbers"))?;
    if let Some(bad) = list.iter().find(|p| !(0..count).contains(*p)) {
        anyhow::bail!(
            "PARTITIONS names partition {bad}, but {topic} has {count} (0 to {})",
            count - 1
        );
    }
    list.sort_unstable();
    list.dedup();
    Ok(list)
}

/// Runs `handler` on `topic` over Kafka until SIGINT or SIGTERM (the recurrence and
/// notification binaries).
pub async fn run_consumer<H: Handler + 'static>(
    args: CommonArgs,
    topic: &str,
    handler: H,
    metrics_port: u16,
) -> anyhow::Result<()> {
    let _telemetry = init_tracing(handler.name(), &args.log_level, &args.log_format)?;
    start_metrics_server(&args, metrics_port).await?;
    let db = connect_db(&args.database_url).await?;
    let log = connect_log(&args).await?;
    let partitions = partitions(&log, topic, &args.partitions).await?;
    let name = handler.name().to_owned();
    tracing::info!(subscriber = %name, topic, ?partitions, "subscriber starting");
    let config = ConsumerConfig {
        partitions,
        ..ConsumerConfig::new(name.clone(), topic)
    };
    Consumer::new(db, log, handler, config)
        .run(shutdown_signal())
        .await?;
    tracing::info!(subscriber = %name, "subscriber stopped");
    Ok(())
}

/// Completes once `true` is sent on the stop channel (or its sender is gone): the stop signal
/// shared by the parts of one binary.
pub async fn until_stopped(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Sends `true` on `stop` at SIGINT or SIGTERM; returns early when another part already did
/// (a consumer that halted on its own stops the rest of the binary too).
pub async fn stop_on_signal(stop: &tokio::sync::watch::Sender<bool>) {
    let stopped = stop.subscribe();
    tokio::select! {
        () = shutdown_signal() => {}
        () = until_stopped(stopped) => {}
    }
    let _ = stop.send(true);
}

/// Completes at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::parse_partitions;

    #[test]
    fn all_or_a_list_of_existing_partitions_is_accepted() {
        assert_eq!(parse_partitions("all", "t", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_partitions(" 2, 0 ,2", "t", 3).unwrap(), vec![0, 2]);
    }

    #[test]
    fn bad_partition_lists_are_rejected_naming_partitions() {
        for bad in ["", "one", "0,,1", "-1", "3", "0;1"] {
            let err = parse_partitions(bad, "task-events", 3)
                .unwrap_err()
                .to_string();
            assert!(err.contains("PARTITIONS"), "{bad:?}: {err}");
        }
    }
}
