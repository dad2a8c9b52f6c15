//! The gateway's side of the event log: choosing embedded or distributed mode from the
//! configuration, running the outbox relay (in-process, or alone as `taskstream relay`), and
//! `taskstream events tail`.

use std::time::Duration;

use anyhow::Context;
use futures_util::future::join_all;
use sea_orm::DatabaseConnection;
use stream::embedded::EmbeddedLog;
use stream::kafka::{KafkaConfig, KafkaLog};
use stream::log::{LogError, LogReader};
use stream::relay::{Relay, RelayConfig};
use subscribers::registry::{Subscriber, SubscriberSettings};
use subscribers::webhook::WebhookSettings;

use crate::config::ServerConfig;

/// The Kafka settings, or `None` in embedded mode (no KAFKA_BROKERS).
pub fn kafka_config(config: &ServerConfig) -> anyhow::Result<Option<KafkaConfig>> {
    config
        .kafka_brokers
        .as_deref()
        .map(|brokers| config.kafka.config(brokers))
        .transpose()
}

/// Connects to the brokers and creates missing topics, retrying with backoff while they are
/// unreachable (the gateway keeps serving; rows wait in the outbox). Returns `None` on
/// shutdown or on a configuration error that retrying cannot fix.
pub(crate) async fn connect_with_retry(
    config: &KafkaConfig,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<KafkaLog> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = async {
            let log = KafkaLog::connect(config.clone()).await?;
            log.ensure_taskstream_topics().await?;
            Ok::<_, LogError>(log)
        };
        match attempt.await {
            Ok(log) => return Some(log),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, ?backoff, "event log unreachable; the outbox keeps the events until it is back");
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot use the event log; the relay is not running");
                return None;
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return None,
            () = tokio::time::sleep(backoff) => {},
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Runs the relay until `shutdown` turns true.
pub async fn run_relay(
    db: DatabaseConnection,
    kafka: KafkaConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(log) = connect_with_retry(&kafka, &mut shutdown).await else {
        return Ok(());
    };
    tracing::info!(brokers = %kafka.brokers.join(","), "outbox relay started");
    let relay = Relay::new(db, log, RelayConfig::default());
    relay
        .run(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await?;
    tracing::info!("outbox relay stopped");
    Ok(())
}

/// Embedded mode: runs every subscriber of the registry ([`Subscriber::ALL`]) in this process
/// over the outbox table, until `shutdown` turns true. (In distributed mode each subscriber is
/// its own binary.)
pub async fn run_embedded_subscribers(
    db: DatabaseConnection,
    webhooks: WebhookSettings,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let log = EmbeddedLog::new(db.clone());
    run_embedded_subscribers_reporting(
        db,
        log,
        webhooks,
        shutdown,
        crate::health::Components::new(),
    )
    .await
}

/// [`run_embedded_subscribers`] on `log` (the gateway's one [`EmbeddedLog`], shared with the
/// live updates), reporting each subscriber to `components` under
/// [`Subscriber::component`], so that one that halts fails `/readyz` by name.
pub async fn run_embedded_subscribers_reporting(
    db: DatabaseConnection,
    log: EmbeddedLog,
    webhooks: WebhookSettings,
    shutdown: tokio::sync::watch::Receiver<bool>,
    components: crate::health::Components,
) -> anyhow::Result<()> {
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let settings = SubscriberSettings {
        webhooks,
        ..SubscriberSettings::default()
    };
    let companions = subscribers::registry::companions(Subscriber::ALL, &db, &settings)?;
    tracing::info!(
        subscribers = ?Subscriber::ALL.map(Subscriber::name),
        "subscribers running in-process"
    );
    // A subscriber that halts (e.g. its stored offset is outside the log) says so at once; the
    // others keep running until shutdown.
    for subscriber in Subscriber::ALL {
        components.running(subscriber.component());
    }
    let consumers = Subscriber::ALL.map(|subscriber| {
        let consumer = subscriber.consumer(db.clone(), log.clone(), &settings, vec![0]);
        let (components, shutdown) = (components.clone(), shutdown.clone());
        async move {
            consumer
                .run(stopped(shutdown))
                .await
                .inspect_err(|e| components.halted(subscriber.component(), e.to_string()))
        }
    });
    let companions = companions
        .iter()
        .map(|companion| companion.run(stopped(shutdown.clone())));
    let (results, _) = tokio::join!(join_all(consumers), join_all(companions));
    for result in results {
        result?;
    }
    Ok(())
}

/// Whether the first broker accepts a TCP connection within a second (for `/readyz`).
pub async fn broker_reachable(kafka: &KafkaConfig) -> bool {
    let Some(first) = kafka.brokers.first() else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(first)
        )
        .await,
        Ok(Ok(_))
    )
}

/// `taskstream events tail`: prints each event of `topic` as one JSON line: the record's
/// coordinates, headers and the CloudEvent (null for a tombstone).
pub async fn tail(
    db: DatabaseConnection,
    kafka: Option<KafkaConfig>,
    topic: &str,
    limit: Option<usize>,
    follow: bool,
) -> anyhow::Result<()> {
    match kafka {
        Some(config) => {
            let log = KafkaLog::connect(config)
                .await
                .context("cannot reach KAFKA_BROKERS")?;
            tail_log(&log, topic, limit, follow).await
        }
        None => {
            let log = EmbeddedLog::new(db);
            tail_log(&log, topic, limit, follow).await
        }
    }
}

async fn tail_log<L: LogReader>(
    log: &L,
    topic: &str,
    limit: Option<usize>,
    follow: bool,
) -> anyhow::Result<()> {
    let partitions = log
        .partition_count(topic)
        .await
        .with_context(|| format!("unknown topic {topic}"))?;
    let mut offsets = vec![0_i64; usize::try_from(partitions).unwrap_or(0)];
    let mut printed = 0_usize;
    loop {
        let mut any = false;
        for (p, offset) in offsets.iter_mut().enumerate() {
            let partition = i32::try_from(p).unwrap_or(0);
            let fetched = log
                .fetch(topic, partition, *offset, 500, Duration::from_millis(200))
                .await?;
            for record in fetched.records {
                *offset = record.offset + 1;
                any = true;
                let event = record
                    .value
                    .as_ref()
                    .map(|v| serde_json::from_slice::<serde_json::Value>(v))
                    .transpose()
                    .unwrap_or_else(|_| {
                        Some(serde_json::Value::String(
                            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                                .into_owned(),
                        ))
                    });
                let line = serde_json::json!({
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": record.key,
                    "timestamp": record.timestamp,
                    "headers": record.headers,
                    "event": event,
                });
                println!("{line}");
                printed += 1;
                if limit.is_some_and(|l| printed >= l) {
                    return Ok(());
                }
            }
        }
        if !any && !follow {
            return Ok(());
        }
    }
}
