//! Event backbone throughput against its peers, side by side on a local tansu broker (Kafka
//! protocol) and a local nats-server (JetStream), then on the embedded transport.
//!
//! ```sh
//! cargo run -p graphql --release --example events_bench -- [EVENTS] [postgres://... | sqlite] [both | kafka | nats]
//! ```
//!
//! The third argument runs one broker only (tansu's fetches take most of a `both` run).
//!
//! On each broker:
//! 1. Raw: the same records the relay would send, produced straight through the transport (one
//!    batch per partition, as the relay does), no database involved.
//! 2. Relay: the same number of outbox rows written to the application database, then drained
//!    by `Relay::publish_pending` (rounds of: read pending rows, produce per partition, mark
//!    published; each round's marking overlaps the next round's read and produce).
//! 3. Raw fetch: every record of the relayed topic read back through the transport, no database.
//! 4. Consumer: the shared consumer runtime with a handler that does nothing, reading the same
//!    records (dedupe, handler and offset commit in the application database per batch).
//!
//! Then the runtime over the embedded transport (the outbox table as the log) against raw reads
//! of that table. It prints events/s for each and the ratios relay/raw produce and consumer/raw
//! fetch (targets at least 0.8), plus the consumers' absolute rates (target at least 5,000
//! records/s). Nothing is asserted: these machines are shared and noisy, so read the ratios,
//! whose two sides ran moments apart on the same broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use stream::broker::{BrokerConfig, BrokerLog};
use stream::broker_process::TansuBroker;
use stream::log::{LogWriter, OutgoingRecord};
use stream::nats_process::NatsServer;
use stream::relay::{Relay, RelayConfig};

const BATCH: usize = 500;

fn event(i: usize) -> (String, stream::CloudEvent) {
    let task_id = uuid::Uuid::now_v7().to_string();
    let data = serde_json::json!({
        "kind": "CREATED",
        "taskId": task_id,
        "task": { "id": task_id, "title": format!("Benchmark task {i}"), "description": "x".repeat(200),
                  "priority": "HIGH", "tags": ["bench", "relay"], "version": 1 }
    });
    let ev = stream::CloudEvent::new("taskstream.task.created", task_id.clone(), Utc::now(), data)
        .with_version(1);
    (task_id, ev)
}

/// A handler that applies nothing (under the given consumer name): measures the runtime itself.
struct NoopNamed(&'static str);

impl stream::consumer::Handler for NoopNamed {
    fn name(&self) -> &str {
        self.0
    }

    async fn handle(
        &self,
        _txn: &sea_orm::DatabaseTransaction,
        _record: &stream::log::LogRecord,
    ) -> Result<stream::consumer::HandlerOutcome, stream::consumer::HandlerError> {
        Ok(stream::consumer::HandlerOutcome::Applied)
    }
}

/// One broker's figures, events or records per second.
struct Figures {
    raw: f64,
    relayed: f64,
    raw_fetch: f64,
    consumed: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let db_arg = args.get(2).cloned().unwrap_or_else(|| "sqlite".to_owned());
    let dir = std::env::temp_dir().join(format!("relay-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = if db_arg == "sqlite" {
        format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())
    } else {
        db_arg.clone()
    };
    let db = graphql::db::connect(&url).await?;
    graphql::db::migrate(&db).await?;
    let database = if db_arg == "sqlite" {
        "sqlite"
    } else {
        "postgres"
    };
    let events: Vec<(String, stream::CloudEvent)> = (0..n).map(event).collect();
    println!("{n} events, application database {database}");

    let which = args.get(3).map_or("both", String::as_str);
    if !["both", "kafka", "nats"].contains(&which) {
        anyhow::bail!("the third argument is both, kafka or nats, not {which:?}");
    }
    let on_kafka = if which == "nats" {
        None
    } else {
        let tansu = TansuBroker::start().await?;
        let kafka =
            BrokerConfig::Kafka(stream::kafka::KafkaConfig::from_brokers(&tansu.brokers())?);
        let label = format!(
            "Kafka (tansu {}, sqlite storage, gzip)",
            stream::broker_process::TANSU_VERSION
        );
        Some(on_broker(&label, &kafka, &db, &events).await?)
    };
    let on_nats = if which == "kafka" {
        None
    } else {
        let nats_server = NatsServer::start().await?;
        let nats = BrokerConfig::Nats(stream::nats::NatsConfig::from_url(&nats_server.url())?);
        Some(
            on_broker(
                "NATS (nats-server, JetStream file storage)",
                &nats,
                &db,
                &events,
            )
            .await?,
        )
    };

    println!();
    println!(
        "{:<28} {:>16} {:>16}",
        "", "Kafka (tansu)", "NATS JetStream"
    );
    type Figure = fn(&Figures) -> f64;
    let rows: [(&str, Figure); 6] = [
        ("raw produce (events/s)", |f| f.raw),
        ("relay (events/s)", |f| f.relayed),
        ("relay/raw (target >= 0.80)", |f| f.relayed / f.raw),
        ("raw fetch (records/s)", |f| f.raw_fetch),
        ("consumer (records/s)", |f| f.consumed),
        ("consumer/raw (target >= 0.80)", |f| {
            f.consumed / f.raw_fetch
        }),
    ];
    let shown = |f: Option<&Figures>, figure: Figure, places: usize| {
        f.map_or_else(|| "-".to_owned(), |f| format!("{:.*}", places, figure(f)))
    };
    for (name, figure) in rows {
        let places = if name.contains("target") { 2 } else { 0 };
        let (k, s) = (
            shown(on_kafka.as_ref(), figure, places),
            shown(on_nats.as_ref(), figure, places),
        );
        println!("{name:<28} {k:>16} {s:>16}");
    }
    println!();
    embedded(&db).await?;
    db.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Steps 1 to 4 on the broker `config` names, printing each figure as it comes.
async fn on_broker(
    label: &str,
    config: &BrokerConfig,
    db: &DatabaseConnection,
    events: &[(String, stream::CloudEvent)],
) -> anyhow::Result<Figures> {
    let n = events.len();
    let log = BrokerLog::connect(config).await?;
    log.ensure_topics(&["bench-raw", stream::topics::TASK_EVENTS])
        .await?;
    let partitions = log.partition_count("bench-raw").await?;
    println!("\n{label}: {partitions} partitions");

    // 1. Raw produce, grouped per partition in batches like the relay.
    let started = Instant::now();
    for chunk in events.chunks(BATCH) {
        let mut groups: BTreeMap<i32, Vec<OutgoingRecord>> = BTreeMap::new();
        for (key, ev) in chunk {
            let p = stream::partitioner::partition_for_key(key.as_bytes(), partitions);
            groups.entry(p).or_default().push(OutgoingRecord {
                key: key.clone(),
                value: Some(serde_json::to_vec(ev)?),
                headers: stream::outbox::event_headers(ev),
                timestamp: ev.time,
            });
        }
        let sends = groups
            .into_iter()
            .map(|(p, records)| log.produce("bench-raw", p, records));
        for r in futures_util::future::join_all(sends).await {
            r?;
        }
    }
    let raw = n as f64 / started.elapsed().as_secs_f64();
    println!("raw produce:    {raw:>10.0} events/s");

    // 2. The relay draining the same number of outbox rows (new event ids, so that neither
    // the broker's nor the consumers' de-duplication drops them).
    {
        use sea_orm::TransactionTrait;
        for chunk in events.chunks(1_000) {
            let txn = db.begin().await?;
            for (key, ev) in chunk {
                let mut ev = ev.clone();
                ev.id = uuid::Uuid::now_v7();
                stream::outbox::append(&txn, stream::topics::TASK_EVENTS, key, &ev, Utc::now())
                    .await?;
            }
            txn.commit().await?;
        }
    }
    let relay = Relay::new(
        db.clone(),
        BrokerLog::connect(config).await?,
        RelayConfig::default(),
    );
    let started = Instant::now();
    let report = relay.publish_pending().await?;
    anyhow::ensure!(
        report.failed == 0,
        "the relay failed to publish: {report:?}"
    );
    let published = report.published;
    let relayed = published as f64 / started.elapsed().as_secs_f64();
    println!("relay:          {relayed:>10.0} events/s  ({published} published)");
    println!(
        "ratio relay/raw produce: {:.2} (target >= 0.80)",
        relayed / raw
    );

    // 3. Raw fetch of everything the relay published.
    let topic = stream::topics::TASK_EVENTS;
    let started = Instant::now();
    let mut fetched = 0;
    let mut ends = Vec::new();
    for p in 0..partitions {
        let mut offset = 0;
        let end = log.high_watermark(topic, p).await?;
        ends.push(end);
        while offset < end {
            let batch = stream::log::LogReader::fetch(
                &log,
                topic,
                p,
                offset,
                500,
                std::time::Duration::from_millis(100),
            )
            .await?;
            fetched += batch.records.len();
            offset = batch.records.last().map_or(end, |r| r.offset + 1);
        }
    }
    let raw_fetch = fetched as f64 / started.elapsed().as_secs_f64();
    println!("raw fetch:      {raw_fetch:>10.0} records/s ({fetched} records)");

    // 4. The consumer runtime with a do-nothing handler over the same records (forgetting what
    // an earlier run consumed from its own, now gone, broker).
    forget(db, "bench").await?;
    let consumer_config = stream::consumer::ConsumerConfig {
        partitions: (0..partitions).collect(),
        ..stream::consumer::ConsumerConfig::new("bench", topic)
    };
    let consumer = stream::consumer::Consumer::new(
        db.clone(),
        BrokerLog::connect(config).await?,
        NoopNamed("bench"),
        consumer_config,
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(async {
        stop_rx.await.ok();
    }));
    let ends: Vec<(i32, i64)> = (0..partitions).zip(ends).collect();
    wait_for_offsets(db, "bench", topic, &ends).await?;
    let consumed = fetched as f64 / started.elapsed().as_secs_f64();
    stop_tx.send(()).ok();
    running.await??;
    println!("consumer:       {consumed:>10.0} records/s (target >= 5000)");
    println!("ratio consumer/raw fetch: {:.2}", consumed / raw_fetch);
    Ok(Figures {
        raw,
        relayed,
        raw_fetch,
        consumed,
    })
}

/// Deletes what consumer `name` stored: its offsets and processed event ids.
async fn forget(db: &DatabaseConnection, name: &str) -> anyhow::Result<()> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entities::consumer_offset::Entity::delete_many()
        .filter(entities::consumer_offset::Column::Consumer.eq(name))
        .exec(db)
        .await?;
    entities::processed_event::Entity::delete_many()
        .filter(entities::processed_event::Column::Consumer.eq(name))
        .exec(db)
        .await?;
    Ok(())
}

/// Polls (every 5 ms) until consumer `name` has stored each (partition, end) offset of `topic`.
async fn wait_for_offsets(
    db: &DatabaseConnection,
    name: &str,
    topic: &str,
    ends: &[(i32, i64)],
) -> anyhow::Result<()> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    loop {
        let offsets = entities::consumer_offset::Entity::find()
            .filter(entities::consumer_offset::Column::Consumer.eq(name))
            .filter(entities::consumer_offset::Column::Topic.eq(topic))
            .all(db)
            .await?;
        let done = ends.iter().all(|(p, end)| {
            offsets
                .iter()
                .any(|o| o.partition == *p && o.next_offset >= *end)
        });
        if done {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Step 5: the runtime over the embedded transport (the outbox table as the log), against
/// reading those rows raw through that transport: the runtime's own cost, without a broker.
async fn embedded(db: &DatabaseConnection) -> anyhow::Result<()> {
    let topic = stream::topics::TASK_EVENTS;
    let embedded = stream::embedded::EmbeddedLog::new(db.clone());
    let started = Instant::now();
    let mut offset = 0;
    let mut read = 0;
    loop {
        let batch = stream::log::LogReader::fetch(
            &embedded,
            topic,
            0,
            offset,
            500,
            std::time::Duration::ZERO,
        )
        .await?;
        let Some(last) = batch.records.last() else {
            break;
        };
        offset = last.offset + 1;
        read += batch.records.len();
    }
    let raw_embedded = read as f64 / started.elapsed().as_secs_f64();
    println!("raw outbox read: {raw_embedded:>9.0} records/s ({read} records)");
    forget(db, "bench-embedded").await?;
    let consumer = stream::consumer::Consumer::new(
        db.clone(),
        stream::embedded::EmbeddedLog::new(db.clone()),
        NoopNamed("bench-embedded"),
        stream::consumer::ConsumerConfig::new("bench-embedded", topic),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(async {
        stop_rx.await.ok();
    }));
    wait_for_offsets(db, "bench-embedded", topic, &[(0, offset)]).await?;
    let consumed_embedded = read as f64 / started.elapsed().as_secs_f64();
    stop_tx.send(()).ok();
    running.await??;
    println!("consumer (embedded): {consumed_embedded:>6.0} records/s (target >= 5000)");
    println!(
        "ratio consumer/raw outbox read: {:.2}",
        consumed_embedded / raw_embedded
    );
    Ok(())
}
