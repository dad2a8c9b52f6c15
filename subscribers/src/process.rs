//! What every subscriber binary shares: its common flags, logging, the database pool, the broker
//! log (Kafka or NATS JetStream), partition assignment, and the one runner, [`run_binary`], which runs the subscribers the
//! registry ([`crate::registry`]) assigns to the binary on the process lifecycle of
//! [`stream::lifecycle`] (one cancellation token, one task tracker). Each binary is then its
//! own flags and a call.

use anyhow::Context;
use sea_orm::DatabaseConnection;
use stream::broker::{BrokerConfig, BrokerLog};
use stream::kafka::KafkaArgs;
use stream::lifecycle::{CancellationToken, TaskTracker};
use stream::nats::NatsArgs;

use crate::registry::{self, Subscriber, SubscriberSettings};

/// Flags (with environment fallbacks) common to every subscriber binary.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// `postgres://...` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka-protocol brokers, `host:port,host:port` (or NATS_URL instead).
    #[arg(long, env = "KAFKA_BROKERS", required_unless_present = "nats_url")]
    pub kafka_brokers: Option<String>,
    /// NATS servers with JetStream, `nats://host:4222,…` (or KAFKA_BROKERS instead).
    #[arg(long, env = "NATS_URL", conflicts_with = "kafka_brokers")]
    pub nats_url: Option<String>,
    /// The partitions of the consumed topic this instance owns: `all` or a comma list (`0,2`).
    /// Assignment is explicit: give each instance a disjoint list.
    #[arg(long, env = "PARTITIONS", default_value = "all")]
    pub partitions: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
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

/// The database pool, opened exactly as the gateway opens it ([`crate::db::connect`]: the same
/// size, timeouts and SQLite pragmas).
pub async fn connect_db(url: &str) -> anyhow::Result<DatabaseConnection> {
    crate::db::connect(url).await
}

/// The broker KAFKA_BROKERS or NATS_URL names (one is required).
pub fn broker_config(args: &CommonArgs) -> anyhow::Result<BrokerConfig> {
    BrokerConfig::from_args(
        args.kafka_brokers.as_deref(),
        &args.kafka,
        args.nats_url.as_deref(),
        &args.nats,
    )?
    .ok_or_else(|| anyhow::anyhow!("set KAFKA_BROKERS or NATS_URL: the broker to consume from"))
}

/// Connects to the broker and creates missing topics.
pub async fn connect_log(config: &BrokerConfig) -> anyhow::Result<BrokerLog> {
    Ok(BrokerLog::connect_with_topics(config).await?)
}

/// The partitions of `topic` named by `spec`: `all`, or a comma list of partition numbers that
/// exist in the topic.
pub async fn partitions(log: &BrokerLog, topic: &str, spec: &str) -> anyhow::Result<Vec<i32>> {
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

/// Runs the subscribers of `binary` ([`Subscriber::in_binary`]) over the broker, each on the
/// partitions of its topic given by `PARTITIONS`, with their companion loops, until SIGINT or
/// SIGTERM, each a task of one [`TaskTracker`] stopping on one [`CancellationToken`]. A part
/// that ends on its own (a consumer that halts, a companion loop that returns, a panic) stops
/// the rest of the binary too, and its error is returned: the process exits and its supervisor
/// restarts it. Serves `/metrics` on the binary's default port unless `METRICS_ADDR` says
/// otherwise.
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
    let broker = broker_config(&args)?;
    start_metrics_server(&args, first.metrics_port()).await?;
    let db = connect_db(&args.database_url).await?;
    let mut consumers = Vec::with_capacity(subscribers.len());
    for subscriber in &subscribers {
        // A log each: a broker answers one connection's requests in order, so a consumer's
        // waiting fetch must not delay another's.
        let log = connect_log(&broker).await?;
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

    // One token for every part: cancelled at a signal, or when any part ends on its own (a
    // halted consumer, a panic) so that the binary stops and its supervisor restarts it.
    let shutdown = stream::lifecycle::cancel_on_signal(CancellationToken::new());
    let tracker = TaskTracker::new();
    let mut parts = Vec::new();
    for consumer in consumers {
        let (shutdown, stop_all) = (shutdown.clone(), shutdown.clone().drop_guard());
        parts.push(tracker.spawn(async move {
            // Dropped when the consumer ends, even by a panic: the rest stop too.
            let _stop_all = stop_all;
            Ok(consumer.run(shutdown.cancelled()).await?)
        }));
    }
    for companion in companions {
        let (shutdown, stop_all) = (shutdown.clone(), shutdown.clone().drop_guard());
        parts.push(tracker.spawn(async move {
            let _stop_all = stop_all;
            companion.run(shutdown.cancelled()).await;
            if shutdown.is_cancelled() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "the {} stopped on its own",
                    companion.component()
                ))
            }
        }));
    }
    // PostgreSQL only: other processes' commits wake the companions' loops.
    tracker.spawn(stream::wakeup::run(db.clone(), shutdown.clone()));
    tracker.close();
    let mut first_error = None;
    for part in parts {
        let result = part
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("a task panicked: {e}")));
        if let Err(e) = result {
            tracing::error!(binary, error = %format!("{e:#}"), "a part of the subscriber stopped; stopping the rest");
            first_error.get_or_insert(e);
        }
    }
    tracker.wait().await;
    if let Some(e) = first_error {
        return Err(e);
    }
    tracing::info!(binary, "subscriber stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{CommonArgs, broker_config, parse_partitions};

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(
            ["subscriber", "--database-url", "sqlite://x.db"]
                .iter()
                .chain(args),
        )
    }

    #[test]
    fn exactly_one_broker_is_required() {
        let neither = parse(&[]).unwrap_err().to_string();
        assert!(neither.contains("--kafka-brokers"), "{neither}");
        let both = parse(&["--kafka-brokers", "a:9092", "--nats-url", "nats://n:4222"])
            .unwrap_err()
            .to_string();
        assert!(
            both.contains("--nats-url") && both.contains("--kafka-brokers"),
            "{both}"
        );
        let nats = parse(&["--nats-url", "nats://n:4222"]).unwrap();
        assert_eq!(broker_config(&nats.common).unwrap().transport(), "nats");
        let kafka = parse(&["--kafka-brokers", "a:9092"]).unwrap();
        assert_eq!(broker_config(&kafka.common).unwrap().transport(), "kafka");
        let bad = parse(&["--nats-url", "http://n"]).unwrap();
        let error = broker_config(&bad.common).unwrap_err().to_string();
        assert!(error.contains("NATS_URL"), "{error}");
    }

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
