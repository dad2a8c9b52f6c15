//! The gateway's side of the event log: choosing embedded or distributed mode from the
//! configuration, running the outbox relay (in-process, or alone as `taskstream relay`), and
//! `taskstream events tail`.

use std::time::Duration;

use anyhow::Context;
use sea_orm::DatabaseConnection;
use stream::broker::{BrokerConfig, BrokerLog};
use stream::embedded::EmbeddedLog;
use stream::lifecycle::{CancellationToken, TaskTracker};
use stream::log::LogReader;
use stream::relay::{Relay, RelayConfig};
use subscribers::registry::{Subscriber, SubscriberSettings};
use subscribers::webhook::WebhookSettings;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::health::Components;

/// The broker (KAFKA_BROKERS or NATS_URL), or `None` in embedded mode (neither set).
pub fn broker_config(config: &ServerConfig) -> anyhow::Result<Option<BrokerConfig>> {
    BrokerConfig::from_args(
        config.kafka_brokers.as_deref(),
        &config.kafka,
        config.nats_url.as_deref(),
        &config.nats,
    )
}

/// Runs the relay until `shutdown` is cancelled. Connecting is retried while the brokers are
/// unreachable (the gateway keeps serving; rows wait in the outbox); a configuration error
/// that retrying cannot fix is returned.
pub async fn run_relay(
    db: DatabaseConnection,
    broker: BrokerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(log) = BrokerLog::connect_with_retry(&broker, &shutdown)
        .await
        .context("cannot use the event log; the relay is not running")?
    else {
        return Ok(());
    };
    tracing::info!(broker = %broker.describe(), "outbox relay started");
    let relay = Relay::new(db, log, RelayConfig::default());
    relay.run(shutdown.cancelled()).await?;
    tracing::info!("outbox relay stopped");
    Ok(())
}

/// Embedded mode: starts every subscriber of the registry ([`Subscriber::ALL`]) in this
/// process over `log` (the gateway's one [`EmbeddedLog`], shared with the live updates), each
/// consumer and companion loop as its own component of `components` on `tracker`
/// ([`Subscriber::component`], [`subscribers::registry::Companion::component`]), so that one that halts or panics
/// fails `/readyz` by name while the others run on. They stop when `shutdown` is cancelled.
/// (In distributed mode each subscriber is its own binary.)
pub fn spawn_embedded_subscribers(
    tracker: &TaskTracker,
    components: &Components,
    db: &DatabaseConnection,
    log: &EmbeddedLog,
    webhooks: WebhookSettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<()>>>> {
    let settings = SubscriberSettings {
        webhooks,
        ..SubscriberSettings::default()
    };
    let companions = subscribers::registry::companions(Subscriber::ALL, db, &settings)?;
    tracing::info!(
        subscribers = ?Subscriber::ALL.map(Subscriber::name),
        "subscribers running in-process"
    );
    let mut tasks = Vec::new();
    for subscriber in Subscriber::ALL {
        let consumer = subscriber.consumer(db.clone(), log.clone(), &settings, vec![0], None);
        let stopped = shutdown.clone();
        tasks.push(
            components.spawn(tracker, subscriber.component(), shutdown, async move {
                Ok(consumer.run(stopped.cancelled()).await?)
            }),
        );
    }
    for companion in companions {
        let stopped = shutdown.clone();
        tasks.push(
            components.spawn(tracker, companion.component(), shutdown, async move {
                companion.run(stopped.cancelled()).await;
                Ok(())
            }),
        );
    }
    Ok(tasks)
}

/// [`spawn_embedded_subscribers`] on a tracker of its own, until `shutdown` is cancelled; the
/// first error of a subscriber is returned once all have stopped.
pub async fn run_embedded_subscribers(
    db: DatabaseConnection,
    webhooks: WebhookSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let log = EmbeddedLog::new(db.clone());
    let tasks =
        spawn_embedded_subscribers(&tracker, &Components::new(), &db, &log, webhooks, &shutdown)?;
    tracker.close();
    let mut first_error = None;
    for task in tasks {
        if let Err(e) = task.await? {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `taskstream events tail`: prints each event of `topic` as one JSON line: the record's
/// coordinates, headers and the CloudEvent (null for a tombstone).
pub async fn tail(
    db: DatabaseConnection,
    broker: Option<BrokerConfig>,
    topic: &str,
    limit: Option<usize>,
    follow: bool,
) -> anyhow::Result<()> {
    match broker {
        Some(config) => {
            let log = BrokerLog::connect(&config)
                .await
                .with_context(|| format!("cannot reach the {}", config.describe()))?;
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
