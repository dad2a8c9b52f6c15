//! The event backbone under faults, end to end: mutations through the GraphQL schema write the
//! outbox, the relay publishes it to a real Kafka-protocol broker (tansu 0.6.0, one per test),
//! and consumers of the shared runtime apply `task-events` from every partition, each over a
//! `KafkaLog` of its own, with the application database on SQLite and PostgreSQL. The tests
//! kill and restart the broker, crash the relay between produce and mark, abort consumers
//! mid-stream, run two instances at once, park a poison record, and point a consumer past the
//! log's end.
//!
//! The test handler writes one row per application into a scratch `effects` table that has no
//! unique constraint on the event id, so a double application shows up as a count of two:
//! exactly-once is checked, not assumed. "Quiescent" means no outbox row is pending and every
//! stored offset of every consumer equals its partition's high watermark.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, Set, Statement, TransactionTrait,
};
use serde_json::json;
use stream::CloudEvent;
use stream::broker_process::TansuBroker;
use stream::consumer::{
    Consumer, ConsumerConfig, ConsumerError, Handler, HandlerError, HandlerOutcome,
};
use stream::dead_letters::{self, DeadLetterError, DeadLetterStatus, ReplayOutcome};
use stream::kafka::{KafkaConfig, KafkaLog};
use stream::log::{LogReader, LogRecord, LogWriter, OutgoingRecord};
use stream::relay::{Relay, RelayConfig};
use support::TestApp;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

const ALICE: &str = "alice";
const TOPIC: &str = stream::topics::TASK_EVENTS;
const CONSUMER: &str = "pipeline-test";
/// How long a healthy pipeline may take to become quiescent on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// The same after broker restarts: each costs a reconnection and the relay's backoff.
const RESTART_DEADLINE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------- the test handler

/// What the handler should do, and what it saw; shared with the test.
#[derive(Debug, Default)]
struct Script {
    /// Events of this task fail permanently (poison).
    poison_task: Option<String>,
    /// A pause per record, so that an abort lands while records are flowing.
    delay: Duration,
    /// Holds the handler forever on one call, so the test can kill the consumer there.
    hold: Option<Hold>,
    /// Every call, committed or not: (partition, offset, event id), in call order.
    calls: Vec<(i32, i64, Uuid)>,
}

#[derive(Clone, Debug)]
struct Hold {
    /// The 1-based call (across partitions) to hold.
    on_call: usize,
    /// Hold after writing the effect (inside the open transaction) rather than before.
    after_effect: bool,
    entered: Arc<Notify>,
}

#[derive(Clone)]
struct RecordingHandler {
    script: Arc<Mutex<Script>>,
}

impl RecordingHandler {
    fn new() -> RecordingHandler {
        RecordingHandler {
            script: Arc::default(),
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    fn calls(&self) -> Vec<(i32, i64, Uuid)> {
        self.script().calls.clone()
    }
}

impl Handler for RecordingHandler {
    fn name(&self) -> &str {
        CONSUMER
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let event: CloudEvent = serde_json::from_slice(record.value.as_deref().unwrap_or_default())
            .map_err(HandlerError::permanent)?;
        let version = event.aggregateversion.ok_or_else(|| {
            HandlerError::permanent(anyhow::anyhow!("event {} has no version", event.id))
        })?;
        let (delay, hold) = {
            let mut script = self.script();
            script
                .calls
                .push((record.partition, record.offset, event.id));
            if script.poison_task.as_deref() == Some(event.subject.as_str()) {
                return Err(HandlerError::permanent(anyhow::anyhow!(
                    "poison: events of task {} cannot be handled",
                    event.subject
                )));
            }
            let call = script.calls.len();
            let hold = script.hold.clone().filter(|h| h.on_call == call);
            (script.delay, hold)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(hold) = hold.as_ref().filter(|h| !h.after_effect) {
            hold.entered.notify_one();
            std::future::pending::<()>().await;
        }
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO effects (consumer, event_id, task_id, version, log_partition, \
                 log_offset) VALUES ($1, $2, $3, $4, $5, $6)"
            }
            _ => {
                "INSERT INTO effects (consumer, event_id, task_id, version, log_partition, \
                 log_offset) VALUES (?, ?, ?, ?, ?, ?)"
            }
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                CONSUMER.into(),
                event.id.to_string().into(),
                event.subject.clone().into(),
                version.into(),
                i64::from(record.partition).into(),
                record.offset.into(),
            ],
        ))
        .await?;
        if let Some(hold) = hold.filter(|h| h.after_effect) {
            hold.entered.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(HandlerOutcome::Applied)
    }
}

// ---------------------------------------------------------------- effects

async fn create_effects_table(db: &DatabaseConnection) {
    let seq = match db.get_database_backend() {
        DbBackend::Postgres => "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        _ => "seq INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    // No unique constraint on event_id: a second application is a second row.
    db.execute_unprepared(&format!(
        "CREATE TABLE effects ({seq}, consumer TEXT NOT NULL, event_id TEXT NOT NULL, \
         task_id TEXT NOT NULL, version BIGINT NOT NULL, log_partition BIGINT NOT NULL, \
         log_offset BIGINT NOT NULL)"
    ))
    .await
    .unwrap();
}

/// One committed application.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Effect {
    event_id: Uuid,
    task_id: String,
    version: i64,
    partition: i32,
    offset: i64,
}

/// The committed applications, in the order they were applied.
async fn effects(db: &impl ConnectionTrait) -> Vec<Effect> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT event_id, task_id, version, log_partition, log_offset FROM effects \
                 WHERE consumer = '{CONSUMER}' ORDER BY seq"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| Effect {
            event_id: Uuid::parse_str(&r.try_get::<String>("", "event_id").unwrap()).unwrap(),
            task_id: r.try_get("", "task_id").unwrap(),
            version: r.try_get("", "version").unwrap(),
            partition: i32::try_from(r.try_get::<i64>("", "log_partition").unwrap()).unwrap(),
            offset: r.try_get("", "log_offset").unwrap(),
        })
        .collect()
}

/// Every event of `expected` was applied exactly once and nothing else was; each task's
/// events were applied in version order.
async fn assert_applied_exactly_once(db: &DatabaseConnection, expected: &[Event]) {
    let effects = effects(db).await;
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for e in &effects {
        *counts.entry(e.event_id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    let expected_ids: BTreeSet<Uuid> = expected.iter().map(|e| e.id).collect();
    let applied: BTreeSet<Uuid> = counts.keys().copied().collect();
    let missing: Vec<_> = expected_ids.difference(&applied).collect();
    let unexpected: Vec<_> = applied.difference(&expected_ids).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "never applied: {missing:?}; applied but not expected: {unexpected:?}"
    );
    let mut per_task: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in &effects {
        per_task.entry(&e.task_id).or_default().push(e.version);
    }
    for (task, versions) in per_task {
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "task {task}: applied out of version order: {versions:?}"
        );
    }
}

// ---------------------------------------------------------------- the outbox and the log

/// A `task-events` outbox row, as the tests need it.
#[derive(Clone, Debug)]
struct Event {
    id: Uuid,
    task: String,
    version: i64,
    /// Where the relay published it (the copy the relay marked).
    at: Option<(i32, i64)>,
}

/// The `task-events` rows of the outbox, in id order.
async fn task_events(app: &TestApp) -> Vec<Event> {
    app.outbox()
        .await
        .into_iter()
        .filter(|row| row.topic == TOPIC)
        .map(|row| {
            let headers: BTreeMap<String, String> = serde_json::from_str(&row.headers).unwrap();
            Event {
                id: row.event_id,
                task: row.key.clone(),
                version: headers["ce_aggregateversion"].parse().unwrap(),
                at: row.partition.zip(row.offset),
            }
        })
        .collect()
}

async fn pending(app: &TestApp) -> u64 {
    stream::relay::pending_stats(&app.db).await.unwrap().0
}

/// Short bounds, so a killed broker is noticed within seconds rather than the defaults' 20.
fn kafka_config(broker: &TansuBroker) -> KafkaConfig {
    let mut config = KafkaConfig::from_brokers(&broker.brokers()).unwrap();
    config.retry_deadline = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(5);
    config
}

async fn connect(broker: &TansuBroker) -> KafkaLog {
    let log = KafkaLog::connect(kafka_config(broker)).await.unwrap();
    log.ensure_taskstream_topics().await.unwrap();
    log
}

/// Every record of `topic`, all partitions, in (partition, offset) order.
async fn read_all(log: &KafkaLog, topic: &str) -> Vec<LogRecord> {
    let partitions = log.partition_count(topic).await.unwrap();
    let mut out = Vec::new();
    for p in 0..partitions {
        let end = log.high_watermark(topic, p).await.unwrap();
        let mut offset = 0;
        while offset < end {
            let fetched = log
                .fetch(topic, p, offset, 500, Duration::from_millis(100))
                .await
                .unwrap();
            let last = fetched.records.last().unwrap_or_else(|| {
                panic!("{topic}[{p}] returned nothing at {offset} below its end {end}")
            });
            offset = last.offset + 1;
            out.extend(fetched.records);
        }
    }
    out
}

/// Creates and completes `n` tasks (two `task-events` and two `task-updates` rows each).
async fn write_tasks(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let task = app
            .create_task(ALICE, json!({ "title": format!("Task {i}") }))
            .await;
        let id = task["id"].as_str().unwrap().to_owned();
        complete(app, &id).await;
        ids.push(id);
    }
    ids
}

async fn complete(app: &TestApp, id: &str) {
    app.ok(
        ALICE,
        "mutation($id: ID!) { completeTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
}

fn relay_config() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..RelayConfig::default()
    }
}

/// Publishes every pending row with a relay of its own, round by round.
async fn publish_all(app: &TestApp, broker: &TansuBroker) {
    let relay = Relay::new(app.db.clone(), connect(broker).await, relay_config());
    while relay.publish_round().await.unwrap().published > 0 {}
    assert_eq!(pending(app).await, 0);
}

// ---------------------------------------------------------------- offsets and quiescence

async fn stored_offset(db: &impl ConnectionTrait, partition: i32) -> Option<i64> {
    entities::consumer_offset::Entity::find_by_id((
        CONSUMER.to_owned(),
        TOPIC.to_owned(),
        partition,
    ))
    .one(db)
    .await
    .unwrap()
    .map(|row| row.next_offset)
}

async fn stored_offsets(db: &impl ConnectionTrait, partitions: i32) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    for p in 0..partitions {
        out.push(stored_offset(db, p).await);
    }
    out
}

/// The committed effects and the stored offsets, read in one snapshot.
async fn snapshot(db: &DatabaseConnection, partitions: i32) -> (Vec<Effect>, Vec<Option<i64>>) {
    let isolation = (db.get_database_backend() == DbBackend::Postgres)
        .then_some(sea_orm::IsolationLevel::RepeatableRead);
    let txn = db.begin_with_config(isolation, None).await.unwrap();
    let applied = effects(&txn).await;
    let stored = stored_offsets(&txn, partitions).await;
    txn.commit().await.unwrap();
    (applied, stored)
}

/// Sets the stored offset, as an operator would with SQL (the row must not exist yet).
async fn set_stored_offset(db: &DatabaseConnection, partition: i32, next_offset: i64) {
    entities::consumer_offset::ActiveModel {
        consumer: Set(CONSUMER.to_owned()),
        topic: Set(TOPIC.to_owned()),
        partition: Set(partition),
        next_offset: Set(next_offset),
        updated_at: Set(entities::to_db_precision(chrono::Utc::now())),
    }
    .insert(db)
    .await
    .unwrap();
}

/// `Ok` when quiescent, else what is still moving. Pending is read before and after the
/// offsets: a park commits its `.dlq` outbox row together with its offset advance.
async fn quiescence(
    app: &TestApp,
    log: &KafkaLog,
    consumers: &[&RunningConsumer],
) -> Result<(), String> {
    if let Some(c) = consumers.iter().find(|c| c.task.is_finished()) {
        panic!(
            "a consumer ended before quiescence (its error is printed above); calls: {}",
            c.handler.calls().len()
        );
    }
    let before = pending(app).await;
    if before > 0 {
        return Err(format!("{before} outbox rows pending"));
    }
    let partitions = log
        .partition_count(TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    for p in 0..partitions {
        let end = log
            .high_watermark(TOPIC, p)
            .await
            .map_err(|e| e.to_string())?;
        let stored = stored_offset(&app.db, p).await;
        if stored != Some(end) {
            return Err(format!(
                "{TOPIC}[{p}]: stored offset {stored:?}, log end {end}"
            ));
        }
    }
    match pending(app).await {
        0 => Ok(()),
        after => Err(format!("{after} outbox rows pending")),
    }
}

async fn wait_quiescent(
    app: &TestApp,
    log: &KafkaLog,
    consumers: &[&RunningConsumer],
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let Err(why) = quiescence(app, log, consumers).await else {
            return;
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "not quiescent within {within:?}: {why}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (with a deadline) until `cond` holds.
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut cond: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- running pieces

/// Reads every partition of `task-events`, with fast retries.
fn consumer_config(partitions: i32) -> ConsumerConfig {
    ConsumerConfig {
        partitions: (0..partitions).collect(),
        max_attempts: 3,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        fetch_max_wait: Duration::from_millis(200),
        ..ConsumerConfig::new(CONSUMER, TOPIC)
    }
}

/// A consumer running in the background over a `KafkaLog` of its own.
struct RunningConsumer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ConsumerError>>,
    handler: RecordingHandler,
}

impl RunningConsumer {
    async fn start(
        db: &DatabaseConnection,
        broker: &TansuBroker,
        handler: RecordingHandler,
        config: ConsumerConfig,
    ) -> RunningConsumer {
        RunningConsumer::on(db, connect(broker).await, handler, config)
    }

    /// Over an already connected log, so several instances can start at the same moment.
    fn on(
        db: &DatabaseConnection,
        log: KafkaLog,
        handler: RecordingHandler,
        config: ConsumerConfig,
    ) -> RunningConsumer {
        let consumer = Consumer::new(db.clone(), log, handler.clone(), config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let result = consumer
                .run(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = &result {
                eprintln!("consumer ended with an error: {e}");
            }
            result
        });
        RunningConsumer {
            stop,
            task,
            handler,
        }
    }

    /// Requests shutdown and returns how the consumer ended.
    async fn stop(self) -> Result<(), ConsumerError> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the consumer did not stop within 30 s of shutdown")
            .unwrap()
    }

    /// Waits for the consumer to end on its own.
    async fn ended(self, within: Duration) -> Result<(), ConsumerError> {
        tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("the consumer did not halt within {within:?}"))
            .unwrap()
    }

    /// Kills the consumer's task where it stands (a crashed process, as far as the database
    /// and the broker can tell), and waits until it is gone.
    async fn abort(self) {
        self.task.abort();
        let ended = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the aborted consumer did not end within 30 s");
        match ended {
            Err(e) if e.is_cancelled() => {}
            other => panic!("expected the consumer to be cancelled, got {other:?}"),
        }
    }
}

/// A relay running in the background until stopped.
struct RunningRelay {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningRelay {
    async fn start(app: &TestApp, broker: &TansuBroker) -> RunningRelay {
        let relay = Relay::new(app.db.clone(), connect(broker).await, relay_config());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            relay
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        RunningRelay { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the relay did not stop within 30 s of shutdown")
            .unwrap()
            .unwrap();
    }
}

// ---------------------------------------------------------------- tests

on_both_databases!(events_flow_from_mutation_to_consumer_exactly_once, |t| {
    // Arrange: some history before anything runs.
    let app = TestApp::on(t);
    create_effects_table(&t.db).await;
    let broker = TansuBroker::start().await.unwrap();
    let log = connect(&broker).await;
    let partitions = log.partition_count(TOPIC).await.unwrap();
    write_tasks(&app, 6).await;

    // Act: the relay and a consumer run while more tasks are written.
    let relay = RunningRelay::start(&app, &broker).await;
    let handler = RecordingHandler::new();
    let consumer =
        RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions)).await;
    write_tasks(&app, 6).await;
    wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
    consumer.stop().await.unwrap();
    relay.stop().await;

    // Assert
    let expected = task_events(&app).await;
    assert_eq!(expected.len(), 24);
    assert_applied_exactly_once(&t.db, &expected).await;
    let used: BTreeSet<i32> = effects(&t.db).await.iter().map(|e| e.partition).collect();
    assert!(used.len() > 1, "12 tasks spread over partitions {used:?}");
    for e in effects(&t.db).await {
        let event = expected.iter().find(|x| x.id == e.event_id).unwrap();
        assert_eq!(
            event.at,
            Some((e.partition, e.offset)),
            "applied from where the relay published it"
        );
        assert_eq!(
            (e.task_id.as_str(), e.version),
            (event.task.as_str(), event.version)
        );
    }
});

on_both_databases!(broker_killed_and_restarted_mid_stream_loses_nothing, |t| {
    // Arrange: a consumer slow enough (a pause per record, two records per transaction) to
    // be caught mid-burst.
    let app = TestApp::on(t);
    let db = &t.db;
    create_effects_table(db).await;
    let mut broker = TansuBroker::start().await.unwrap();
    let log = connect(&broker).await;
    let partitions = log.partition_count(TOPIC).await.unwrap();
    let relay = RunningRelay::start(&app, &broker).await;
    let handler = RecordingHandler::new();
    handler.script().delay = Duration::from_millis(50);
    let consumer = RunningConsumer::start(
        db,
        &broker,
        handler.clone(),
        ConsumerConfig {
            max_batch_records: 2,
            ..consumer_config(partitions)
        },
    )
    .await;

    // Act: three times: a burst; a SIGKILL as soon as the consumer has applied part of it; a
    // burst while the broker is down, kept down until the relay has failed on it; a restart on
    // the same storage.
    let mut caught_mid_stream = 0;
    for round in 1..=3 {
        let applied_before = effects(db).await.len();
        write_tasks(&app, 4).await;
        wait_until(
            &format!("the consumer applies part of burst {round}"),
            DEADLINE,
            || async move { effects(db).await.len() > applied_before },
        )
        .await;
        broker.kill();
        if effects(db).await.len() < task_events(&app).await.len() {
            caught_mid_stream += 1;
        }
        write_tasks(&app, 2).await;
        wait_until(
            &format!("the relay fails on the rows written while the broker is down ({round})"),
            DEADLINE,
            || async {
                app.outbox()
                    .await
                    .iter()
                    .any(|r| r.published_at.is_none() && r.attempts > 0)
            },
        )
        .await;
        broker.restart().await.unwrap();
        wait_until(
            &format!("the relay has published everything after restart {round}"),
            RESTART_DEADLINE,
            || async { pending(&app).await == 0 },
        )
        .await;
    }
    write_tasks(&app, 4).await;
    wait_quiescent(&app, &log, &[&consumer], RESTART_DEADLINE).await;
    consumer.stop().await.unwrap();
    relay.stop().await;

    // Assert: nothing lost on the log, nothing lost or doubled in effect, per-task order kept.
    assert!(
        caught_mid_stream > 0,
        "at least one kill landed while the consumer was behind the log"
    );
    let expected = task_events(&app).await;
    assert_eq!(expected.len(), 44);
    let on_log: BTreeSet<Uuid> = read_all(&log, TOPIC)
        .await
        .iter()
        .map(|r| Uuid::parse_str(&r.headers["ce_id"]).unwrap())
        .collect();
    let outbox: BTreeSet<Uuid> = expected.iter().map(|e| e.id).collect();
    assert_eq!(
        on_log, outbox,
        "the log holds every event (duplicates allowed)"
    );
    assert_applied_exactly_once(db, &expected).await;
    eprintln!(
        "{:?}: {caught_mid_stream} of 3 kills caught the consumer mid-stream; {} handler calls \
         for {} events",
        t.backend,
        handler.calls().len(),
        expected.len()
    );
});

on_both_databases!(
    relay_crash_between_produce_and_mark_duplicates_on_the_log_but_applies_once,
    |t| {
        // Arrange: a relay produced every pending row and crashed before marking any.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 8).await;
        let rows = app.outbox().await;
        let mut groups: BTreeMap<(String, i32), Vec<OutgoingRecord>> = BTreeMap::new();
        for row in &rows {
            let count = log.partition_count(&row.topic).await.unwrap();
            let partition = stream::partitioner::partition_for_key(row.key.as_bytes(), count);
            groups
                .entry((row.topic.clone(), partition))
                .or_default()
                .push(stream::relay::to_record(row));
        }
        for ((topic, partition), records) in groups {
            log.produce(&topic, partition, records).await.unwrap();
        }
        assert_eq!(pending(&app).await, 32, "nothing was marked");

        // Act: the relay comes back and publishes them again; a consumer reads the log.
        let relay = RunningRelay::start(&app, &broker).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();
        relay.stop().await;

        // Assert: every event twice on the log, the relay's marks on the second copies...
        let rows = app.outbox().await;
        for topic in [stream::topics::TASK_EVENTS, stream::topics::TASK_UPDATES] {
            let records = read_all(&log, topic).await;
            let mut copies: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
            for r in &records {
                copies
                    .entry(r.headers["ce_id"].clone())
                    .or_default()
                    .push((r.partition, r.offset));
            }
            let of_topic: Vec<_> = rows.iter().filter(|r| r.topic == topic).collect();
            assert_eq!(of_topic.len(), 16);
            assert_eq!(copies.len(), 16, "{topic}: no other events");
            for row in of_topic {
                let at = &copies[&row.event_id.to_string()];
                assert_eq!(
                    at.len(),
                    2,
                    "{topic}: event {} twice on the log",
                    row.event_id
                );
                assert_eq!(at[0].0, at[1].0, "both copies on the key's partition");
                assert_eq!(
                    (row.partition, row.offset),
                    (Some(at[1].0), Some(at[1].1)),
                    "{topic}: the relay marked the copy it produced"
                );
            }
        }
        // ...and each applied once, the duplicates skipped before the handler.
        let expected = task_events(&app).await;
        assert_applied_exactly_once(&t.db, &expected).await;
        assert_eq!(
            handler.calls().len(),
            expected.len(),
            "a duplicate never reaches the handler"
        );
        let processed = entities::processed_event::Entity::find()
            .filter(entities::processed_event::Column::Consumer.eq(CONSUMER))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(processed.len(), expected.len());
    }
);

on_both_databases!(
    consumer_killed_before_and_after_commit_resumes_exactly_once,
    |t| {
        // Arrange: 40 records on the log.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 20).await;
        publish_all(&app, &broker).await;
        let events = task_events(&app).await;

        // Act: three instances killed at chosen points, each started after the previous one died.
        // 1. Holding the 4th call with its effect written inside an open batch of up to five:
        //    killed before that batch commits.
        // 2. One record per transaction, holding the 9th call before it writes: killed after
        //    the commits of the records before it, with its own transaction open.
        // 3. Free-running with a pause per record: killed right after the first commit seen,
        //    wherever the other partitions stand.
        for kill in 1..=3 {
            let handler = RecordingHandler::new();
            let entered = Arc::new(Notify::new());
            let mut config = consumer_config(partitions);
            match kill {
                1 => {
                    config.max_batch_records = 5;
                    handler.script().hold = Some(Hold {
                        on_call: 4,
                        after_effect: true,
                        entered: entered.clone(),
                    });
                }
                2 => {
                    config.max_batch_records = 1;
                    handler.script().hold = Some(Hold {
                        on_call: 9,
                        after_effect: false,
                        entered: entered.clone(),
                    });
                }
                _ => {
                    config.max_batch_records = 3;
                    handler.script().delay = Duration::from_millis(30);
                }
            }
            let applied_before = effects(&t.db).await.len();
            let consumer = RunningConsumer::start(&t.db, &broker, handler.clone(), config).await;
            if kill < 3 {
                tokio::time::timeout(DEADLINE, entered.notified())
                    .await
                    .expect("the held call is reached");
            } else {
                let db = &t.db;
                wait_until("a batch is committed", DEADLINE, || async move {
                    effects(db).await.len() > applied_before
                })
                .await;
            }
            consumer.abort().await;

            // Assert after each kill: the committed effects are exactly the records below the
            // stored offsets (no half batch, nothing applied twice). Read in one snapshot: a
            // COMMIT the killed instance had already sent may still land meanwhile.
            let (applied, stored) = snapshot(&t.db, partitions).await;
            let below: BTreeSet<Uuid> = events
                .iter()
                .filter(|e| {
                    let (p, offset) = e.at.unwrap();
                    offset < stored[usize::try_from(p).unwrap()].unwrap_or(0)
                })
                .map(|e| e.id)
                .collect();
            let applied_ids: BTreeSet<Uuid> = applied.iter().map(|e| e.event_id).collect();
            assert_eq!(
                applied.len(),
                applied_ids.len(),
                "kill {kill}: nothing twice"
            );
            assert_eq!(
                applied_ids, below,
                "kill {kill}: effects match the stored offsets"
            );
            assert!(
                applied.len() < events.len(),
                "kill {kill}: killed mid-stream"
            );
            eprintln!(
                "{:?}: kill {kill} left {} of {} applied, stored offsets {stored:?}, \
                 {} handler calls",
                t.backend,
                applied.len(),
                events.len(),
                handler.calls().len()
            );
            let hold = handler.script().hold.clone();
            if let Some(hold) = hold {
                let held = handler.calls()[hold.on_call - 1].2;
                assert!(
                    !applied_ids.contains(&held),
                    "kill {kill}: the held record's transaction was rolled back"
                );
            }
        }
        let resume_at = stored_offsets(&t.db, partitions).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();

        // Assert: exactly once overall, and the last instance started at the stored offsets.
        assert_applied_exactly_once(&t.db, &events).await;
        let calls = handler.calls();
        for p in 0..partitions {
            let first = calls.iter().find(|c| c.0 == p).map(|c| c.1);
            let end = log.high_watermark(TOPIC, p).await.unwrap();
            let stored = resume_at[usize::try_from(p).unwrap()];
            if stored.unwrap_or(0) < end {
                assert_eq!(
                    first,
                    stored.or(Some(0)),
                    "partition {p} resumed at its offset"
                );
            } else {
                assert_eq!(first, None, "partition {p} had nothing left");
            }
        }
    }
);

on_both_databases!(
    consumer_restarted_from_an_offset_inside_a_batch_gets_the_rest,
    |t| {
        // Arrange: one task's first event in one batch, its next five in one batch of their own
        // (one relay round: one produce per partition), all on the task's partition.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        let relay = Relay::new(app.db.clone(), connect(&broker).await, relay_config());
        let id = app.create_task(ALICE, json!({ "title": "Batched" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(relay.publish_round().await.unwrap().published, 2);
        for n in 1..=4 {
            app.ok(
            ALICE,
            "mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": { "title": format!("Batched, edit {n}") } }),
        )
        .await;
        }
        complete(&app, &id).await;
        let round = relay.publish_round().await.unwrap();
        assert_eq!((round.published, round.failed), (10, 0), "one round");
        let events = task_events(&app).await;
        let at: Vec<(i32, i64)> = events.iter().map(|e| e.at.unwrap()).collect();
        let partition = at[0].0;
        assert_eq!(
            at,
            (0..6).map(|o| (partition, o)).collect::<Vec<_>>(),
            "one partition, offsets 0..6; the second batch spans 1..6"
        );

        // Act: the stored offset points at the middle of the second batch.
        set_stored_offset(&t.db, partition, 3).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();

        // Assert: exactly offsets 3, 4 and 5, once, in order.
        let applied: Vec<(i64, i64)> = effects(&t.db)
            .await
            .iter()
            .map(|e| (e.offset, e.version))
            .collect();
        assert_eq!(applied, [(3, 4), (4, 5), (5, 6)]);
        assert_applied_exactly_once(&t.db, &events[3..]).await;
        assert!(
            handler.calls().iter().all(|c| c.1 >= 3),
            "nothing before the stored offset reached the handler: {:?}",
            handler.calls()
        );
    }
);

on_both_databases!(
    two_instances_on_the_same_partition_never_double_apply,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 8).await;
        publish_all(&app, &broker).await;

        // Act: two instances with one name on every partition, started at the same moment on
        // a log that already holds records, with small batches so they collide; more records
        // arrive while they run.
        let small = ConsumerConfig {
            fetch_max_records: 10,
            max_batch_records: 3,
            ..consumer_config(partitions)
        };
        let (a, b) = (RecordingHandler::new(), RecordingHandler::new());
        let (log_a, log_b) = (connect(&broker).await, connect(&broker).await);
        let first = RunningConsumer::on(&t.db, log_a, a.clone(), small.clone());
        let second = RunningConsumer::on(&t.db, log_b, b.clone(), small);
        let relay = RunningRelay::start(&app, &broker).await;
        write_tasks(&app, 8).await;
        wait_quiescent(&app, &log, &[&first, &second], DEADLINE).await;
        first.stop().await.unwrap();
        second.stop().await.unwrap();
        relay.stop().await;

        // Assert
        eprintln!(
            "{:?}: the first instance ran its handler {} times, the second {}",
            t.backend,
            a.calls().len(),
            b.calls().len()
        );
        let expected = task_events(&app).await;
        assert_eq!(expected.len(), 32);
        assert_applied_exactly_once(&t.db, &expected).await;
        assert_eq!(
            a.calls().len() + b.calls().len(),
            expected.len(),
            "the offset compare-and-set comes first: a losing instance never runs its handler \
         (first {}, second {})",
            a.calls().len(),
            b.calls().len()
        );
    }
);

on_both_databases!(
    a_poison_record_is_parked_and_later_records_still_flow,
    |t| {
        // Arrange: a task whose events the handler cannot take, between healthy ones, and at
        // least one later task on the poison's partition.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 3).await;
        let poison = app.create_task(ALICE, json!({ "title": "Poison" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let poison_partition =
            stream::partitioner::partition_for_key(poison.as_bytes(), partitions);
        let mut later = write_tasks(&app, 3).await;
        while !later.iter().any(|id| {
            stream::partitioner::partition_for_key(id.as_bytes(), partitions) == poison_partition
        }) {
            assert!(
                later.len() < 60,
                "no task lands on partition {poison_partition}"
            );
            later.extend(write_tasks(&app, 1).await);
        }

        // Act
        let relay = RunningRelay::start(&app, &broker).await;
        let handler = RecordingHandler::new();
        handler.script().poison_task = Some(poison.clone());
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();
        relay.stop().await;

        // Assert: everything but the poison applied, later records on its partition included...
        let events = task_events(&app).await;
        let (poisoned, healthy): (Vec<Event>, Vec<Event>) =
            events.into_iter().partition(|e| e.task == poison);
        assert_eq!(poisoned.len(), 1);
        let poisoned = &poisoned[0];
        assert_applied_exactly_once(&t.db, &healthy).await;
        let (p, offset) = poisoned.at.unwrap();
        assert!(
            effects(&t.db)
                .await
                .iter()
                .any(|e| e.partition == p && e.offset > offset),
            "a later record on the poison's partition was applied"
        );
        // ...the poison parked once, without retries...
        let parked = dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 1);
        let dead = &parked[0];
        assert_eq!(
            (
                dead.consumer.as_str(),
                dead.topic.as_str(),
                dead.partition,
                dead.offset
            ),
            (CONSUMER, TOPIC, p, offset)
        );
        assert_eq!(dead.event_id, Some(poisoned.id));
        assert_eq!(dead.attempts, 1, "a permanent error is not retried");
        assert!(dead.error.contains("poison"), "{}", dead.error);
        // ...and its copy published to task-events.dlq with the dlq_* headers.
        let dlq_topic = stream::topics::dlq(TOPIC);
        let dlq_rows: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|r| r.topic == dlq_topic)
            .collect();
        assert_eq!(dlq_rows.len(), 1);
        assert!(dlq_rows[0].published_at.is_some());
        let on_dlq = read_all(&log, &dlq_topic).await;
        assert_eq!(on_dlq.len(), 1, "one record on {dlq_topic}");
        let copy = &on_dlq[0];
        assert_eq!(copy.key.as_deref(), Some(poison.as_str()));
        assert_eq!(
            copy.partition,
            stream::partitioner::partition_for_key(
                poison.as_bytes(),
                log.partition_count(&dlq_topic).await.unwrap()
            )
        );
        let event: CloudEvent = serde_json::from_slice(copy.value.as_deref().unwrap()).unwrap();
        assert_eq!(event.id, poisoned.id, "the original payload");
        let h = &copy.headers;
        assert_eq!(h["ce_id"], poisoned.id.to_string());
        assert_eq!(h["dlq_original_topic"], TOPIC);
        assert_eq!(h["dlq_original_partition"], p.to_string());
        assert_eq!(h["dlq_original_offset"], offset.to_string());
        assert_eq!(h["dlq_consumer"], CONSUMER);
        assert_eq!(h["dlq_attempts"], "1");
        assert!(h["dlq_error"].contains("poison"), "{}", h["dlq_error"]);

        // Act 2: the handler is fixed and the dead letter replayed, twice.
        let fixed = RecordingHandler::new();
        let outcome = dead_letters::replay(&t.db, dead.id, &fixed).await.unwrap();
        let again = dead_letters::replay(&t.db, dead.id, &fixed).await;

        // Assert 2: applied once, then refused.
        assert_eq!(outcome, ReplayOutcome::Applied);
        assert!(
            matches!(again, Err(DeadLetterError::NotParked { .. })),
            "{again:?}"
        );
        let mut all = healthy.clone();
        all.push(poisoned.clone());
        assert_applied_exactly_once(&t.db, &all).await;
        assert_eq!(
            dead_letters::show(&t.db, dead.id).await.unwrap().status,
            DeadLetterStatus::Replayed.as_str()
        );
    }
);

on_both_databases!(
    a_stored_offset_past_the_log_end_halts_with_a_clear_error,
    |t| {
        // Arrange: records on the log; one partition's stored offset 10 past its end, the others
        // at their ends (so nothing would be applied even before the halt).
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        let ids = write_tasks(&app, 6).await;
        publish_all(&app, &broker).await;
        let target = stream::partitioner::partition_for_key(ids[0].as_bytes(), partitions);
        let end = log.high_watermark(TOPIC, target).await.unwrap();
        assert!(end > 0);
        for p in 0..partitions {
            let p_end = log.high_watermark(TOPIC, p).await.unwrap();
            set_stored_offset(&t.db, p, if p == target { end + 10 } else { p_end }).await;
        }
        let before = stored_offsets(&t.db, partitions).await;

        // Act
        let handler = RecordingHandler::new();
        let result =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await
                .ended(DEADLINE)
                .await;

        // Assert
        let message = result.as_ref().err().map(ToString::to_string);
        match result {
            Err(ConsumerError::OffsetOutOfRange {
                consumer,
                topic,
                partition,
                offset,
                high_watermark,
            }) => assert_eq!(
                (
                    consumer.as_str(),
                    topic.as_str(),
                    partition,
                    offset,
                    high_watermark
                ),
                (CONSUMER, TOPIC, target, end + 10, end)
            ),
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
        let message = message.unwrap();
        assert!(
            message.contains("consumer_offsets"),
            "the error says what to fix: {message}"
        );
        assert!(effects(&t.db).await.is_empty(), "nothing applied");
        assert!(handler.calls().is_empty());
        assert_eq!(
            stored_offsets(&t.db, partitions).await,
            before,
            "never skipped"
        );
    }
);
