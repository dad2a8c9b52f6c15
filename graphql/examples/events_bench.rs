//! Event backbone throughput against its peers, side by side on one local tansu broker.
//!
//! ```sh
//! cargo run -p graphql --release --example events_bench -- [EVENTS] [postgres://... | sqlite]
//! ```
//!
//! 1. Raw: the same records the relay would send, produced straight through the Kafka
//!    transport (one batch per partition, as the relay does), no database involved.
//! 2. Relay: the same number of outbox rows written to the application database, then drained
//!    by `Relay::publish_round` (read pending rows, produce per partition, mark published).
//!
//! 3. Raw fetch: every record of the relayed topic read back through the transport, no database.
//! 4. Consumer: the shared consumer runtime with a handler that does nothing, reading the same
//!    records (dedupe, handler and offset commit in the application database per batch).
//!
//! It prints events/s for each and the ratios relay/raw produce (target at least 0.8) and
//! consumer/raw fetch, plus the consumer's absolute rate (target at least 5,000 records/s).
//! Nothing is asserted: these machines are shared and noisy, so read the ratios, whose two
//! sides ran moments apart on the same broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use stream::broker_process::TansuBroker;
use stream::kafka::{KafkaConfig, KafkaLog};
use stream::log::{LogWriter, OutgoingRecord};
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

/// A handler that applies nothing: measures the runtime itself.
struct Noop;

impl stream::consumer::Handler for Noop {
    fn name(&self) -> &str {
        "bench"
    }

    async fn handle(
        &self,
        _txn: &sea_orm::DatabaseTransaction,
        _record: &stream::log::LogRecord,
    ) -> Result<stream::consumer::HandlerOutcome, stream::consumer::HandlerError> {
        Ok(stream::consumer::HandlerOutcome::Applied)
    }
}

/// The same, under another consumer name.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let db_arg = args.get(2).cloned().unwrap_or_else(|| "sqlite".to_owned());
    let broker = TansuBroker::start().await?;
    let config = KafkaConfig::from_brokers(&broker.brokers())?;
    let log = KafkaLog::connect(config.clone()).await?;
    log.ensure_topics(&["bench-raw", stream::topics::TASK_EVENTS])
        .await?;
    let partitions = log.partition_count("bench-raw").await?;
    println!(
        "broker: tansu {} (sqlite storage), {partitions} partitions, {n} events, gzip",
        stream::broker_process::TANSU_VERSION
    );

    // 1. Raw produce, grouped per partition in batches like the relay.
    let events: Vec<(String, stream::CloudEvent)> = (0..n).map(event).collect();
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

    // 2. The relay draining the same number of outbox rows.
    let dir = std::env::temp_dir().join(format!("relay-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let url = if db_arg == "sqlite" {
        format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())
    } else {
        db_arg.clone()
    };
    let db = graphql::db::connect(&url).await?;
    graphql::db::migrate(&db).await?;
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
        KafkaLog::connect(config).await?,
        RelayConfig::default(),
    );
    let started = Instant::now();
    let mut published = 0;
    loop {
        let report = relay.publish_round().await?;
        if report.published == 0 {
            break;
        }
        published += report.published;
    }
    let relayed = published as f64 / started.elapsed().as_secs_f64();
    println!(
        "relay ({}): {relayed:>10.0} events/s  ({published} published)",
        if db_arg == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        }
    );
    println!(
        "ratio relay/raw produce: {:.2} (target >= 0.80)",
        relayed / raw
    );

    // 3. Raw fetch of everything the relay published.
    let topic = stream::topics::TASK_EVENTS;
    let started = Instant::now();
    let mut fetched = 0;
    for p in 0..partitions {
        let mut offset = 0;
        let end = log.high_watermark(topic, p).await?;
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
    // an earlier run against the same database consumed from its own, now gone, broker).
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entities::consumer_offset::Entity::delete_many()
            .filter(entities::consumer_offset::Column::Consumer.eq("bench"))
            .exec(&db)
            .await?;
        entities::processed_event::Entity::delete_many()
            .filter(entities::processed_event::Column::Consumer.eq("bench"))
            .exec(&db)
            .await?;
    }
    let config = stream::consumer::ConsumerConfig {
        partitions: (0..partitions).collect(),
        ..stream::consumer::ConsumerConfig::new("bench", topic)
    };
    let consumer_log = KafkaLog::connect(KafkaConfig::from_brokers(&broker.brokers())?).await?;
    let consumer = stream::consumer::Consumer::new(db.clone(), consumer_log, Noop, config);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(async {
        stop_rx.await.ok();
    }));
    let mut ends = Vec::new();
    for p in 0..partitions {
        ends.push(log.high_watermark(topic, p).await?);
    }
    loop {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let offsets = entities::consumer_offset::Entity::find()
            .filter(entities::consumer_offset::Column::Consumer.eq("bench"))
            .all(&db)
            .await?;
        let done = (0..partitions).all(|p| {
            offsets
                .iter()
                .any(|o| o.partition == p && o.next_offset >= ends[usize::try_from(p).unwrap_or(0)])
        });
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let consumed = fetched as f64 / started.elapsed().as_secs_f64();
    stop_tx.send(()).ok();
    running.await??;
    println!("consumer:       {consumed:>10.0} records/s (target >= 5000)");
    println!("ratio consumer/raw fetch: {:.2}", consumed / raw_fetch);

    // 5. The same runtime over the embedded transport (the outbox table as the log), against
    // reading those rows raw through that transport: the runtime's own cost, without a broker.
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
    let end = offset;
    let consumer = stream::consumer::Consumer::new(
        db.clone(),
        stream::embedded::EmbeddedLog::new(db.clone()),
        NoopNamed("bench-embedded"),
        stream::consumer::ConsumerConfig::new("bench-embedded", topic),
    );
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entities::consumer_offset::Entity::delete_many()
            .filter(entities::consumer_offset::Column::Consumer.eq("bench-embedded"))
            .exec(&db)
            .await?;
        entities::processed_event::Entity::delete_many()
            .filter(entities::processed_event::Column::Consumer.eq("bench-embedded"))
            .exec(&db)
            .await?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(async {
        stop_rx.await.ok();
    }));
    loop {
        use sea_orm::EntityTrait;
        let row = entities::consumer_offset::Entity::find_by_id((
            "bench-embedded".to_owned(),
            topic.to_owned(),
            0,
        ))
        .one(&db)
        .await?;
        if row.is_some_and(|r| r.next_offset >= end) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let consumed_embedded = read as f64 / started.elapsed().as_secs_f64();
    stop_tx.send(()).ok();
    running.await??;
    println!("consumer (embedded): {consumed_embedded:>6.0} records/s (target >= 5000)");
    println!(
        "ratio consumer/raw outbox read: {:.2}",
        consumed_embedded / raw_embedded
    );
    db.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
