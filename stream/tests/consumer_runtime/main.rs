//! The shared consumer runtime on the embedded transport (the outbox table as the log), on
//! SQLite and PostgreSQL: exactly-once effects, restarts, dedupe, ordered retries, dead letters
//! and their replay, competing instances, and halting when the log lost records.
//!
//! The test handler writes one row per application into a scratch table without a unique
//! constraint, so a double application shows up as two rows.
//!
//! Modules: `handler` (the scripted test handler) is shared, and so are the helpers here; the
//! tests are grouped into `delivery` (exactly-once, restarts, redelivery, shutdown), `failures`
//! (retries, dead letters and replay), `instances` (competing and paused instances),
//! `lazy_offsets` (records the handler skips cost no transaction), `leases` (instances
//! sharing partitions by leases, handover, takeover, fencing), `log_faults` (offsets
//! past the end, late commits, an unavailable log), `shared_reads` (the readers of one log
//! sharing a wake-up's reads) and `wakeups` (commit wake-ups between processes).
#![allow(clippy::unwrap_used)]

use testkit as support;
use testkit::on_both_databases;

mod handler;

mod delivery;
mod failures;
mod instances;
mod lazy_offsets;
mod leases;
mod log_faults;
mod shared_reads;
mod wakeups;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
};
use serde_json::json;
use stream::CloudEvent;
use stream::consumer::{
    Consumer, ConsumerConfig, ConsumerError, Handler, HandlerError, HandlerOutcome,
};
use stream::dead_letters::{self, DeadLetterError, DeadLetterStatus, ReplayOutcome};
use stream::embedded::EmbeddedLog;
use stream::log::{LogReader, LogRecord};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use handler::*;

const TOPIC: &str = "task-events";
const OTHER_TOPIC: &str = "task-updates";
const CONSUMER: &str = "runtime-test";

async fn create_effects_table(db: &DatabaseConnection) {
    let seq = match db.get_database_backend() {
        DbBackend::Postgres => "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        _ => "seq INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    db.execute_unprepared(&format!(
        "CREATE TABLE test_effects ({seq}, consumer TEXT NOT NULL, event_id TEXT NOT NULL, \
         log_offset BIGINT NOT NULL)"
    ))
    .await
    .unwrap();
}

/// The events `consumer` applied, in the order it applied them.
async fn effects_of(db: &DatabaseConnection, consumer: &str) -> Vec<Uuid> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT event_id FROM test_effects WHERE consumer = '{consumer}' ORDER BY seq"),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| Uuid::parse_str(&r.try_get::<String>("", "event_id").unwrap()).unwrap())
        .collect()
}

async fn effects(db: &DatabaseConnection) -> Vec<Uuid> {
    effects_of(db, CONSUMER).await
}

/// Appends `n` events to `topic` in one transaction, like a service would.
async fn append(db: &DatabaseConnection, topic: &str, n: usize) -> Vec<Uuid> {
    let ids = append_unannounced(db, topic, n).await;
    stream::outbox::notify_committed();
    ids
}

/// [`append`] without the commit wake-up, as a one-shot command in another process writes.
async fn append_unannounced(db: &DatabaseConnection, topic: &str, n: usize) -> Vec<Uuid> {
    let txn = stream::outbox::begin_write(db).await.unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let event = CloudEvent::new(
            "taskstream.test.happened",
            format!("task-{i}"),
            Utc::now(),
            json!({ "n": i }),
        );
        stream::outbox::append(&txn, topic, &event.subject, &event, Utc::now())
            .await
            .unwrap();
        ids.push(event.id);
    }
    txn.commit().await.unwrap();
    ids
}

/// Inserts an outbox row by hand (a malformed record, or a redelivered copy); returns its id.
async fn insert_raw(db: &DatabaseConnection, headers: &str, payload: &str) -> i64 {
    testkit::insert_raw(db, TOPIC, "raw", headers, payload).await
}

/// A copy of the outbox row of event `id` under a new row id: what a relay retry delivers.
async fn redeliver(db: &DatabaseConnection, id: Uuid) -> i64 {
    let original = outbox_row(db, id).await;
    insert_raw(db, &original.headers, &original.payload).await
}

async fn outbox_row(db: &DatabaseConnection, id: Uuid) -> entities::outbox::Model {
    entities::outbox::Entity::find()
        .filter(entities::outbox::Column::EventId.eq(id))
        .one(db)
        .await
        .unwrap()
        .unwrap()
}

async fn stored_offset(db: &DatabaseConnection) -> Option<i64> {
    entities::consumer_offset::Entity::find_by_id((CONSUMER.to_owned(), TOPIC.to_owned(), 0))
        .one(db)
        .await
        .unwrap()
        .map(|row| row.next_offset)
}

async fn log_end(db: &DatabaseConnection) -> i64 {
    EmbeddedLog::new(db.clone())
        .fetch(TOPIC, 0, 0, 1, Duration::ZERO)
        .await
        .unwrap()
        .high_watermark
}

/// Waits until the consumer's stored offset is the log's end, with a deadline.
async fn wait_caught_up(db: &DatabaseConnection) {
    wait_until("the consumer reaches the end of the log", || async {
        stored_offset(db).await == Some(log_end(db).await)
    })
    .await;
}

/// Waits (with a deadline) until `cond` holds.
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fast retries so tests do not wait on production backoff.
fn config() -> ConsumerConfig {
    ConsumerConfig {
        max_attempts: 3,
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        fetch_max_wait: Duration::from_millis(500),
        ..ConsumerConfig::new(CONSUMER, TOPIC)
    }
}

/// A consumer running in the background until stopped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ConsumerError>>,
}

impl Running {
    /// On the embedded log.
    fn start(db: &DatabaseConnection, handler: TestHandler, config: ConsumerConfig) -> Running {
        Running::on(db, EmbeddedLog::new(db.clone()), handler, config)
    }

    fn on<L: LogReader + 'static>(
        db: &DatabaseConnection,
        log: L,
        handler: TestHandler,
        config: ConsumerConfig,
    ) -> Running {
        let consumer = Consumer::new(db.clone(), log, handler, config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(consumer.run(async {
            let _ = stopped.await;
        }));
        Running {
            stop: Some(stop),
            task,
        }
    }

    fn request_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Requests shutdown and returns how the consumer ended.
    async fn stop(mut self) -> Result<(), ConsumerError> {
        self.request_stop();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the consumer did not stop within 30 s of shutdown")
            .unwrap()
    }

    /// Waits for the consumer to end on its own.
    async fn ended(self) -> Result<(), ConsumerError> {
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the consumer did not halt within 30 s")
            .unwrap()
    }
}

fn headers_of(row: &entities::outbox::Model) -> BTreeMap<String, String> {
    serde_json::from_str(&row.headers).unwrap()
}

async fn dlq_rows(db: &DatabaseConnection) -> Vec<entities::outbox::Model> {
    entities::outbox::Entity::find()
        .filter(entities::outbox::Column::Topic.eq(stream::topics::dlq(TOPIC)))
        .order_by_asc(entities::outbox::Column::Id)
        .all(db)
        .await
        .unwrap()
}
