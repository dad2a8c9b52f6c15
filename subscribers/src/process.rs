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
    /// Which partitions of the consumed topic this instance consumes. `auto` (the default):
    /// the topic's partitions are shared out among the running instances of the subscriber by
    /// leases in the database, so starting more instances (up to the partition count) adds
    /// throughput and a dead instance's partitions move by themselves. `all` or a comma list
    /// (`0,2`): a fixed assignment, for debugging or pinning; give each instance a disjoint
    /// list.
    #[arg(long, env = "PARTITIONS", default_value = "auto")]
    pub partitions: String,
    /// With `PARTITIONS=auto`: how long, in milliseconds, an instance's partition leases last
    /// without a heartbeat (heartbeats run every third of it). A dead instance's partitions
    /// move after at most this plus one heartbeat.
    #[arg(long, env = "LEASE_TTL_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(300..=600_000))]
    pub lease_ttl_ms: u64,
    /// With `PARTITIONS=auto`: this instance's id among the subscriber's instances (default:
    /// host name, process id and a random suffix). Must be unique per running instance.
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
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
    let db = crate::db::connect(url).await?;
    // A role without the grants stops here, naming what it lacks, instead of logging
    // "permission denied" on every retry.
    migration::app_role::ensure_privileges(&db).await?;
    Ok(db)
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

/// Which partitions a subscriber instance consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// These partitions, shared with the other instances by leases (`auto`: all of the
    /// topic's).
    Leased(Vec<i32>),
    /// Exactly these (`all` or a list).
    Fixed(Vec<i32>),
}

impl Assignment {
    /// The partitions and the lease configuration of a consumer following this assignment.
    pub fn into_parts(
        self,
        args: &CommonArgs,
    ) -> (Vec<i32>, Option<stream::consumer::LeaseConfig>) {
        match self {
            Assignment::Fixed(partitions) => (partitions, None),
            Assignment::Leased(partitions) => {
                let instance = args
                    .instance_id
                    .clone()
                    .unwrap_or_else(stream::consumer::leases::instance_id);
                let ttl = std::time::Duration::from_millis(args.lease_ttl_ms);
                (
                    partitions,
                    Some(stream::consumer::LeaseConfig::new(instance, ttl)),
                )
            }
        }
    }
}

/// The partitions of `topic` named by `spec`: `auto`, `all`, or a comma list of partition
/// numbers that exist in the topic.
pub async fn partitions(log: &BrokerLog, topic: &str, spec: &str) -> anyhow::Result<Assignment> {
    let count = log.partition_count(topic).await?;
    parse_partitions(spec, topic, count)
}

/// Parses a PARTITIONS value against a topic with `count` partitions (lists sorted and
/// deduplicated).
pub fn parse_partitions(spec: &str, topic: &str, count: i32) -> anyhow::Result<Assignment> {
    match spec.trim() {
        "auto" => return Ok(Assignment::Leased((0..count).collect())),
        "all" => return Ok(Assignment::Fixed((0..count).collect())),
        _ => {}
    }
    let mut list = spec
        .split(',')
        .map(|p| p.trim().parse::<i32>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!("PARTITIONS {spec:?} is not `auto`, `all` or a comma list of numbers")
        })?;
    if let Some(bad) = list.iter().find(|p| !(0..count).contains(*p)) {
        anyhow::bail!(
            "PARTITIONS names partition {bad}, but {topic} has {count} (0 to {})",
            count - 1
        );
    }
    list.sort_unstable();
    list.dedup();
    Ok(Assignment::Fixed(list))
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
        let assignment = partitions(&log, topic, &args.partitions).await?;
        let (partitions, lease) = assignment.into_parts(&args);
        match &lease {
            Some(lease) => tracing::info!(
                subscriber = subscriber.name(),
                topic,
                ?partitions,
                instance = %lease.instance,
                lease_ttl = ?lease.ttl,
                "subscriber starting; partitions are shared with its other instances by leases"
            ),
            None => tracing::info!(
                subscriber = subscriber.name(),
                topic,
                ?partitions,
                "subscriber starting on fixed partitions"
            ),
        }
        consumers.push(subscriber.consumer(db.clone(), log, &settings, partitions, lease));
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
    // Other processes' commits wake the companions' loops (stream::wakeup).
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

    use super::{Assignment, CommonArgs, broker_config, parse_partitions};

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
    fn auto_all_or_a_list_of_existing_partitions_is_accepted() {
        assert_eq!(
            parse_partitions("auto", "t", 3).unwrap(),
            Assignment::Leased(vec![0, 1, 2])
        );
        assert_eq!(
            parse_partitions("all", "t", 3).unwrap(),
            Assignment::Fixed(vec![0, 1, 2])
        );
        assert_eq!(
            parse_partitions(" 2, 0 ,2", "t", 3).unwrap(),
            Assignment::Fixed(vec![0, 2])
        );
    }

    #[test]
    fn partitions_default_to_leases_with_a_ten_second_period() {
        let flags = parse(&["--kafka-brokers", "a:9092"]).unwrap();
        assert_eq!(flags.common.partitions, "auto");
        let (partitions, lease) = Assignment::Leased(vec![0, 1]).into_parts(&flags.common);
        assert_eq!(partitions, vec![0, 1]);
        let lease = lease.unwrap();
        assert_eq!(lease.ttl, std::time::Duration::from_secs(10));
        assert!(!lease.instance.is_empty());
        let named = parse(&["--kafka-brokers", "a:9092", "--instance-id", "pod-7"]).unwrap();
        let (_, lease) = Assignment::Leased(vec![0]).into_parts(&named.common);
        assert_eq!(lease.unwrap().instance, "pod-7");
        for bad in ["0", "299", "600001", "ten"] {
            let error = parse(&["--kafka-brokers", "a:9092", "--lease-ttl-ms", bad])
                .unwrap_err()
                .to_string();
            assert!(error.contains("--lease-ttl-ms"), "{bad}: {error}");
        }
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
