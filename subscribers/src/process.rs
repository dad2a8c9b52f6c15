//! What every subscriber binary shares: its common flags, logging, the database pool, the Kafka
//! log, partition assignment, the shutdown signal, and the one runner, [`run_binary`], which
//! runs the subscribers the registry ([`crate::registry`]) assigns to the binary. Each binary is
//! then its own flags and a call.

use std::time::Duration;

use anyhow::Context;
use futures_util::future::join_all;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use stream::kafka::{KafkaArgs, KafkaLog};
use tokio::sync::watch;

use crate::registry::{self, Subscriber, SubscriberSettings};

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

/// Runs the subscribers of `binary` ([`Subscriber::in_binary`]) over Kafka, each on the
/// partitions of its topic given by `PARTITIONS`, with their companion loops, until SIGINT or
/// SIGTERM. A consumer that halts on its own stops the rest of the binary too, and its error is
/// returned. Serves `/metrics` on the binary's default port unless `METRICS_ADDR` says otherwise.
pub async fn run_binary(
    binary: &str,
    args: CommonArgs,
    settings: SubscriberSettings,
) -> anyhow::Result<()> {
    let subscribers: Vec<Subscriber> = Subscriber::in_binary(binary).collect();
    let Some(first) = subscribers.first() else {
        anyhow::bail!("BUG: no subscriber is registered for the binary {binary:?}");
    };
    let _telemetry = init_tracing(binary, &args.log_level, &args.log_format)?;
    start_metrics_server(&args, first.metrics_port()).await?;
    let db = connect_db(&args.database_url).await?;
    let mut consumers = Vec::with_capacity(subscribers.len());
    for subscriber in &subscribers {
        // A log each: a broker answers one connection's requests in order, so a consumer's
        // waiting fetch must not delay another's.
        let log = connect_log(&args).await?;
        let topic = subscriber.topic();
        let partitions = partitions(&log, topic, &args.partitions).await?;
        tracing::info!(
            subscriber = subscriber.name(),
            topic,
            ?partitions,
            "subscriber starting"
        );
        consumers.push(subscriber.consumer(db.clone(), log, &settings, partitions));
    }
    let companions = registry::companions(subscribers.iter().copied(), &db, &settings)?;

    // One stop signal for every part: a signal, or a consumer halting on its own.
    let (stop, stopped) = watch::channel(false);
    let consumers = join_all(consumers.into_iter().map(|consumer| {
        let (stop, stopped) = (&stop, stopped.clone());
        async move {
            let result = consumer.run(until_stopped(stopped)).await;
            let _ = stop.send(true);
            result
        }
    }));
    let companions = join_all(
        companions
            .iter()
            .map(|companion| companion.run(until_stopped(stopped.clone()))),
    );
    let (results, _, ()) = tokio::join!(consumers, companions, stop_on_signal(&stop));
    for result in results {
        result?;
    }
    tracing::info!(binary, "subscriber stopped");
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
