//! The shared consumer runtime on the embedded transport (the outbox table as the log), on
//! SQLite and PostgreSQL: exactly-once effects, restarts, dedupe, ordered retries, dead letters
//! and their replay, competing instances, and halting when the log lost records.
//!
//! The test handler writes one row per application into a scratch table without a unique
//! constraint, so a double application shows up as two rows.
#![allow(clippy::unwrap_used)]

mod support;

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

const TOPIC: &str = "task-events";
const OTHER_TOPIC: &str = "task-updates";
const CONSUMER: &str = "runtime-test";

// ---------------------------------------------------------------- the test handler

/// What the handler should do, and what it saw; shared with the test.
#[derive(Debug, Default)]
struct Script {
    /// Events that fail transiently this many more times.
    fail_times: HashMap<Uuid, u32>,
    /// Events that fail transiently until removed (a bug that is later fixed).
    broken: HashSet<Uuid>,
    /// How often the handler was called per event.
    calls: HashMap<Uuid, u32>,
    /// An event whose handling announces itself and then waits for a permit.
    gate: Option<Gate>,
}

#[derive(Clone, Debug)]
struct Gate {
    event: Uuid,
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
}

#[derive(Clone)]
struct TestHandler {
    name: String,
    script: Arc<Mutex<Script>>,
}

impl TestHandler {
    fn new() -> TestHandler {
        TestHandler::named(CONSUMER)
    }

    fn named(name: &str) -> TestHandler {
        TestHandler {
            name: name.to_owned(),
            script: Arc::default(),
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    fn calls(&self, id: Uuid) -> u32 {
        self.script().calls.get(&id).copied().unwrap_or(0)
    }
}

impl Handler for TestHandler {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let event: CloudEvent = serde_json::from_slice(record.value.as_deref().unwrap_or_default())
            .map_err(HandlerError::permanent)?;
        let gate = {
            let mut script = self.script();
            *script.calls.entry(event.id).or_default() += 1;
            if script.broken.contains(&event.id) {
                return Err(HandlerError::transient(anyhow::anyhow!(
                    "dependency down for {}",
                    event.id
                )));
            }
            if let Some(left) = script.fail_times.get_mut(&event.id).filter(|n| **n > 0) {
                *left -= 1;
                return Err(HandlerError::transient(anyhow::anyhow!("flaky dependency")));
            }
            script.gate.clone().filter(|g| g.event == event.id)
        };
        if let Some(gate) = gate {
            gate.entered.notify_one();
            let _permit = gate.release.acquire().await.unwrap();
        }
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO test_effects (consumer, event_id, log_offset) VALUES ($1, $2, $3)"
            }
            _ => "INSERT INTO test_effects (consumer, event_id, log_offset) VALUES (?, ?, ?)",
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                self.name.clone().into(),
                event.id.to_string().into(),
                record.offset.into(),
            ],
        ))
        .await?;
        Ok(HandlerOutcome::Applied)
    }
}

// ---------------------------------------------------------------- helpers

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
    let txn = stream::consumer::begin_write(db).await.unwrap();
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
    stream::outbox::notify_committed();
    ids
}

/// Inserts an outbox row by hand (a malformed record, or a redelivered copy); returns its id.
async fn insert_raw(db: &DatabaseConnection, headers: &str, payload: &str) -> i64 {
    let row = entities::outbox::ActiveModel {
        event_id: Set(Uuid::now_v7()),
        topic: Set(TOPIC.to_owned()),
        key: Set("raw".to_owned()),
        payload: Set(payload.to_owned()),
        headers: Set(headers.to_owned()),
        created_at: Set(entities::to_db_precision(Utc::now())),
        published_at: Set(None),
        partition: Set(None),
        offset: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    stream::outbox::notify_committed();
    row.id
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

// ---------------------------------------------------------------- tests

on_both_databases!(
    every_record_is_applied_exactly_once_in_order_and_the_offset_reaches_the_end,
    |t| {
        create_effects_table(&t.db).await;
        // Interleave another topic, so this topic's offsets (outbox ids) are sparse.
        let mut expected = Vec::new();
        for _ in 0..4 {
            expected.extend(append(&t.db, TOPIC, 500).await);
            append(&t.db, OTHER_TOPIC, 10).await;
        }
        let handler = TestHandler::new();
        let started = std::time::Instant::now();
        let running = Running::start(&t.db, handler.clone(), config());
        wait_caught_up(&t.db).await;
        let elapsed = started.elapsed();
        eprintln!(
            "{:?}: {} records in {elapsed:?} ({:.0} records/s)",
            t.backend,
            expected.len(),
            expected.len() as f64 / elapsed.as_secs_f64()
        );

        // Events committed while the consumer runs are picked up too.
        for _ in 0..5 {
            expected.extend(append(&t.db, TOPIC, 50).await);
        }
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        assert_eq!(effects(&t.db).await, expected);
        assert_eq!(stored_offset(&t.db).await, Some(log_end(&t.db).await));
        assert!(expected.iter().all(|id| handler.calls(*id) == 1));
    }
);

on_both_databases!(
    a_restarted_consumer_resumes_from_the_stored_offset_without_reapplying,
    |t| {
        create_effects_table(&t.db).await;
        let first = append(&t.db, TOPIC, 40).await;
        let running = Running::start(&t.db, TestHandler::new(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        let second = append(&t.db, TOPIC, 40).await;
        let restarted = TestHandler::new();
        let running = Running::start(&t.db, restarted.clone(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        let all: Vec<Uuid> = first.iter().chain(&second).copied().collect();
        assert_eq!(effects(&t.db).await, all);
        assert!(first.iter().all(|id| restarted.calls(*id) == 0));
        assert!(second.iter().all(|id| restarted.calls(*id) == 1));
    }
);

on_both_databases!(a_redelivered_event_is_applied_once, |t| {
    create_effects_table(&t.db).await;
    // The outbox's unique event_id forbids a literal duplicate row; a relay retry delivers the
    // same CloudEvent (same ce_id header and payload) at another offset, as `redeliver` does.
    let ids = append(&t.db, TOPIC, 2).await;
    redeliver(&t.db, ids[0]).await;
    let third = append(&t.db, TOPIC, 1).await;
    let handler = TestHandler::new();
    let running = Running::start(&t.db, handler.clone(), config());
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();

    // A later duplicate, applied through one-record transactions this time.
    redeliver(&t.db, ids[1]).await;
    let running = Running::start(
        &t.db,
        handler.clone(),
        ConsumerConfig {
            max_batch_records: 1,
            ..config()
        },
    );
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();

    assert_eq!(effects(&t.db).await, [ids[0], ids[1], third[0]]);
    assert_eq!(handler.calls(ids[0]), 1);
    assert_eq!(handler.calls(ids[1]), 1);
    let processed = entities::processed_event::Entity::find()
        .filter(entities::processed_event::Column::Consumer.eq(CONSUMER))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(processed.len(), 3);
});

on_both_databases!(a_transient_failure_is_retried_and_later_records_wait, |t| {
    create_effects_table(&t.db).await;
    let ids = append(&t.db, TOPIC, 5).await;
    let handler = TestHandler::new();
    handler.script().fail_times.insert(ids[2], 2);
    let running = Running::start(
        &t.db,
        handler.clone(),
        ConsumerConfig {
            max_attempts: 5,
            ..config()
        },
    );
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();

    assert_eq!(effects(&t.db).await, ids, "order kept across the retries");
    assert_eq!(handler.calls(ids[2]), 3, "two failures, then success");
    assert!(
        dead_letters::list(&t.db, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a record that recovers is not parked"
    );
});

on_both_databases!(
    a_record_that_keeps_failing_is_parked_with_its_dlq_copy_and_replays_once_after_a_fix,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 4).await;
        let poison = ids[1];
        let handler = TestHandler::new();
        handler.script().broken.insert(poison);
        let running = Running::start(&t.db, handler.clone(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        // Later records were applied; the poison one was not.
        assert_eq!(effects(&t.db).await, [ids[0], ids[2], ids[3]]);

        // Its dead letter...
        let original = outbox_row(&t.db, poison).await;
        let parked = dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 1);
        let dead = &parked[0];
        assert_eq!(dead.consumer, CONSUMER);
        assert_eq!(dead.topic, TOPIC);
        assert_eq!(dead.partition, 0);
        assert_eq!(dead.offset, original.id);
        assert_eq!(dead.event_id, Some(poison));
        assert_eq!(dead.key.as_deref(), Some(original.key.as_str()));
        assert_eq!(dead.payload, original.payload);
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.status, "PARKED");
        assert!(dead.error.contains("dependency down"), "{}", dead.error);

        // ...and its copy on task-events.dlq, with the original headers and the DLQ headers.
        let copies = dlq_rows(&t.db).await;
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].payload, original.payload);
        assert_eq!(copies[0].key, original.key);
        let headers = headers_of(&copies[0]);
        assert_eq!(headers["ce_id"], poison.to_string());
        assert_eq!(headers["dlq_original_topic"], TOPIC);
        assert_eq!(headers["dlq_original_partition"], "0");
        assert_eq!(headers["dlq_original_offset"], original.id.to_string());
        assert_eq!(headers["dlq_consumer"], CONSUMER);
        assert_eq!(headers["dlq_attempts"], "3");
        assert!(headers["dlq_error"].contains("dependency down"));

        // Replaying before the fix fails, keeps it parked and counts the attempt.
        let err = dead_letters::replay(&t.db, dead.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::Handler { .. }), "{err}");
        let still = dead_letters::show(&t.db, dead.id).await.unwrap();
        assert_eq!((still.status.as_str(), still.attempts), ("PARKED", 4));

        // After the fix it applies exactly once.
        handler.script().broken.clear();
        let outcome = dead_letters::replay(&t.db, dead.id, &handler)
            .await
            .unwrap();
        assert_eq!(outcome, ReplayOutcome::Applied);
        assert_eq!(
            dead_letters::show(&t.db, dead.id).await.unwrap().status,
            "REPLAYED"
        );
        let err = dead_letters::replay(&t.db, dead.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::NotParked { .. }), "{err}");
        let err = dead_letters::discard(&t.db, dead.id).await.unwrap_err();
        assert!(matches!(err, DeadLetterError::NotParked { .. }), "{err}");
        let applied: Vec<Uuid> = effects(&t.db)
            .await
            .into_iter()
            .filter(|id| *id == poison)
            .collect();
        assert_eq!(applied, [poison]);

        // Unknown ids are refused clearly.
        assert!(matches!(
            dead_letters::show(&t.db, 999_999).await,
            Err(DeadLetterError::NotFound(999_999))
        ));
        assert!(matches!(
            dead_letters::replay(&t.db, 999_999, &handler).await,
            Err(DeadLetterError::NotFound(999_999))
        ));
        assert!(
            dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(dead_letters::list(&t.db, None, 10).await.unwrap().len(), 1);
    }
);

on_both_databases!(
    records_without_an_event_id_or_with_an_unparsable_payload_are_parked_at_once,
    |t| {
        create_effects_table(&t.db).await;
        let before = append(&t.db, TOPIC, 1).await;
        let no_id = insert_raw(&t.db, "{}", "not json at all").await;
        let garbage_id = Uuid::now_v7();
        let garbage = insert_raw(
            &t.db,
            &json!({ "ce_id": garbage_id.to_string() }).to_string(),
            "{\"truncated",
        )
        .await;
        let after = append(&t.db, TOPIC, 1).await;
        let handler = TestHandler::new();
        let running = Running::start(
            &t.db,
            handler.clone(),
            ConsumerConfig {
                max_attempts: 5,
                ..config()
            },
        );
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        assert_eq!(effects(&t.db).await, [before[0], after[0]]);
        let parked = dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 2);
        let (no_id_row, garbage_row) = (&parked[0], &parked[1]);
        assert_eq!(no_id_row.offset, no_id);
        assert_eq!(no_id_row.event_id, None);
        assert_eq!(no_id_row.attempts, 1, "poison is not retried");
        assert!(
            no_id_row.error.contains("no event id"),
            "{}",
            no_id_row.error
        );
        assert_eq!(garbage_row.offset, garbage);
        assert_eq!(garbage_row.event_id, Some(garbage_id));
        assert_eq!(garbage_row.attempts, 1, "a permanent error is not retried");
        assert_eq!(dlq_rows(&t.db).await.len(), 2);

        // Bad replays are refused with a reason.
        let err = dead_letters::replay(&t.db, no_id_row.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::NoEventId(_)), "{err}");
        let err = dead_letters::replay(&t.db, garbage_row.id, &TestHandler::named("someone-else"))
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::WrongHandler { .. }), "{err}");
        let discarded = dead_letters::discard(&t.db, garbage_row.id).await.unwrap();
        assert_eq!(discarded.status, "DISCARDED");
        let err = dead_letters::replay(&t.db, garbage_row.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::NotParked { .. }), "{err}");
    }
);

on_both_databases!(
    two_instances_on_one_partition_never_apply_an_event_twice,
    |t| {
        create_effects_table(&t.db).await;
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.extend(append(&t.db, TOPIC, 50).await);
        }
        // Small batches, so the two instances interleave and collide on the offset often.
        let small = ConsumerConfig {
            fetch_max_records: 20,
            max_batch_records: 7,
            ..config()
        };
        let (a, b) = (TestHandler::new(), TestHandler::new());
        let first = Running::start(&t.db, a.clone(), small.clone());
        let second = Running::start(&t.db, b.clone(), small);
        wait_caught_up(&t.db).await;
        first.stop().await.unwrap();
        second.stop().await.unwrap();

        assert_eq!(
            effects(&t.db).await,
            ids,
            "each event applied once, in order"
        );
        let calls: u32 = ids.iter().map(|id| a.calls(*id) + b.calls(*id)).sum();
        assert_eq!(
            calls, 300,
            "the offset compare-and-set comes first: a losing instance never runs its handler"
        );
    }
);

/// The embedded log, except that the first fetch holds its records until released: an
/// instance paused between fetching and applying (a long GC pause, a network partition).
struct PausedLog {
    inner: EmbeddedLog,
    first: std::sync::atomic::AtomicBool,
    fetched: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
}

impl LogReader for PausedLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<stream::log::Fetched, stream::log::LogError> {
        let fetched = self
            .inner
            .fetch(topic, partition, offset, max_records, max_wait)
            .await?;
        if self.first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.fetched.notify_one();
            let _permit = self.release.acquire().await.unwrap();
        }
        Ok(fetched)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, stream::log::LogError> {
        self.inner.partition_count(topic).await
    }
}

on_both_databases!(
    a_paused_instance_that_wakes_behind_the_stored_offset_applies_nothing,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 30).await;
        let fetched = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let zombie = TestHandler::new();
        let log = PausedLog {
            inner: EmbeddedLog::new(t.db.clone()),
            first: true.into(),
            fetched: fetched.clone(),
            release: release.clone(),
        };
        let zombie_running = Running::on(&t.db, log, zombie.clone(), config());
        // The zombie holds all 30 records, read at offset 0, while a healthy instance applies them.
        tokio::time::timeout(Duration::from_secs(30), fetched.notified())
            .await
            .unwrap();
        let healthy = Running::start(&t.db, TestHandler::new(), config());
        wait_caught_up(&t.db).await;
        healthy.stop().await.unwrap();

        // Woken, the zombie's compare-and-set fails: it reloads the offset instead of applying.
        release.add_permits(1);
        let more = append(&t.db, TOPIC, 5).await;
        wait_caught_up(&t.db).await;
        zombie_running.stop().await.unwrap();

        let all: Vec<Uuid> = ids.iter().chain(&more).copied().collect();
        assert_eq!(effects(&t.db).await, all);
        assert!(
            ids.iter().all(|id| zombie.calls(*id) == 0),
            "the zombie applied nothing stale"
        );
        assert!(
            more.iter().all(|id| zombie.calls(*id) == 1),
            "and then carried on"
        );
    }
);

on_both_databases!(
    a_stored_offset_past_the_end_of_the_log_halts_the_consumer,
    |t| {
        create_effects_table(&t.db).await;
        append(&t.db, TOPIC, 3).await;
        let end = log_end(&t.db).await;
        entities::consumer_offset::ActiveModel {
            consumer: Set(CONSUMER.to_owned()),
            topic: Set(TOPIC.to_owned()),
            partition: Set(0),
            next_offset: Set(end + 100),
            updated_at: Set(entities::to_db_precision(Utc::now())),
        }
        .insert(&t.db)
        .await
        .unwrap();

        let result = Running::start(&t.db, TestHandler::new(), config())
            .ended()
            .await;

        match result {
            Err(ConsumerError::OffsetOutOfRange {
                offset,
                high_watermark,
                partition: 0,
                ..
            }) => assert_eq!((offset, high_watermark), (end + 100, end)),
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
        assert!(effects(&t.db).await.is_empty());
        assert_eq!(stored_offset(&t.db).await, Some(end + 100), "never skipped");
    }
);

/// PostgreSQL only: there, ids are allocated at INSERT but visible at COMMIT, so a row can
/// appear below rows already visible. (SQLite serialises writers; the case cannot arise.)
#[tokio::test]
async fn a_late_committing_lower_id_is_neither_skipped_nor_reordered_on_postgres() {
    let Some(t) = support::TestDb::migrated(support::Backend::Postgres).await else {
        return;
    };
    create_effects_table(&t.db).await;
    let first = append(&t.db, TOPIC, 1).await;
    let running = Running::start(&t.db, TestHandler::new(), config());
    wait_until("the first event is applied", || async {
        effects(&t.db).await == first
    })
    .await;

    // A writer takes the next id and stays open; a later writer commits a higher id.
    let slow = sea_orm::TransactionTrait::begin(&t.db).await.unwrap();
    let late = CloudEvent::new("taskstream.test.happened", "late", Utc::now(), json!({}));
    stream::outbox::append(&slow, TOPIC, "late", &late, Utc::now())
        .await
        .unwrap();
    let high = append(&t.db, TOPIC, 1).await;
    let late_id: i64 = slow
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id FROM outbox WHERE event_id = '{}'", late.id),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    assert!(late_id < outbox_row(&t.db, high[0]).await.id);

    // The committed higher row is visible (the end moved) but held back behind the open one.
    let held = EmbeddedLog::new(t.db.clone())
        .fetch(TOPIC, 0, late_id, 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(held.records.is_empty(), "delivered past an open writer");
    assert_eq!(held.high_watermark, outbox_row(&t.db, high[0]).await.id + 1);
    assert_eq!(effects(&t.db).await, first, "the consumer waits too");

    slow.commit().await.unwrap();
    stream::outbox::notify_committed();
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();
    assert_eq!(effects(&t.db).await, [first[0], late.id, high[0]]);
    t.cleanup().await;
}

on_both_databases!(shutdown_finishes_and_commits_the_batch_in_flight, |t| {
    create_effects_table(&t.db).await;
    let ids = append(&t.db, TOPIC, 10).await;
    let handler = TestHandler::new();
    let gate = Gate {
        event: ids[4],
        entered: Arc::default(),
        release: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    handler.script().gate = Some(gate.clone());
    let mut running = Running::start(&t.db, handler.clone(), config());
    tokio::time::timeout(Duration::from_secs(30), gate.entered.notified())
        .await
        .unwrap();

    // Shutdown arrives while the handler is in the middle of the batch (the yields let the
    // consumer's task see it before the handler is released).
    running.request_stop();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.release.add_permits(1);
    running.stop().await.unwrap();

    assert_eq!(effects(&t.db).await, ids, "the whole batch committed");
    assert_eq!(stored_offset(&t.db).await, Some(log_end(&t.db).await));
});

/// The embedded log, except that its first fetches fail as if the broker were down.
struct FlakyLog {
    inner: EmbeddedLog,
    failures_left: std::sync::atomic::AtomicU32,
}

impl LogReader for FlakyLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<stream::log::Fetched, stream::log::LogError> {
        let left = self.failures_left.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.failures_left
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(stream::log::LogError::Unavailable("broker down".into()));
        }
        self.inner
            .fetch(topic, partition, offset, max_records, max_wait)
            .await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, stream::log::LogError> {
        self.inner.partition_count(topic).await
    }
}

on_both_databases!(
    an_unavailable_log_is_fetched_again_from_the_stored_offset,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 20).await;
        let log = FlakyLog {
            inner: EmbeddedLog::new(t.db.clone()),
            failures_left: 3.into(),
        };
        let running = Running::on(&t.db, log, TestHandler::new(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();
        assert_eq!(effects(&t.db).await, ids);
    }
);
