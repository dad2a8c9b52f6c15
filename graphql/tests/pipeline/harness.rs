//! The outbox and the log as the tests see them, stored offsets and quiescence, and the
//! relay and consumers running in the background.

use super::*;

// ---------------------------------------------------------------- the outbox and the log

/// A `task-events` outbox row, as the tests need it.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) id: Uuid,
    pub(crate) task: String,
    pub(crate) version: i64,
    /// Where the relay published it (the copy the relay marked).
    pub(crate) at: Option<(i32, i64)>,
}

/// The `task-events` rows of the outbox, in id order.
pub(crate) async fn task_events(app: &TestApp) -> Vec<Event> {
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

pub(crate) async fn pending(app: &TestApp) -> u64 {
    stream::relay::pending_stats(&app.db).await.unwrap().0
}

pub(crate) async fn connect(broker: &TestBroker) -> BrokerLog {
    BrokerLog::connect_with_topics(&broker.config())
        .await
        .unwrap()
}

/// Every record of `topic`, all partitions, in (partition, offset) order.
pub(crate) async fn read_all(log: &BrokerLog, topic: &str) -> Vec<LogRecord> {
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
pub(crate) async fn write_tasks(app: &TestApp, n: usize) -> Vec<String> {
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

pub(crate) async fn complete(app: &TestApp, id: &str) {
    app.ok(
        ALICE,
        "mutation($id: ID!) { completeTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
}

pub(crate) fn relay_config() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..RelayConfig::default()
    }
}

/// Publishes every pending row with a relay of its own, round by round.
pub(crate) async fn publish_all(app: &TestApp, broker: &TestBroker) {
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

pub(crate) async fn stored_offsets(db: &impl ConnectionTrait, partitions: i32) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    for p in 0..partitions {
        out.push(stored_offset(db, p).await);
    }
    out
}

/// The committed effects and the stored offsets, read in one snapshot.
pub(crate) async fn snapshot(
    db: &DatabaseConnection,
    partitions: i32,
) -> (Vec<Effect>, Vec<Option<i64>>) {
    let isolation = (db.get_database_backend() == DbBackend::Postgres)
        .then_some(sea_orm::IsolationLevel::RepeatableRead);
    let txn = db.begin_with_config(isolation, None).await.unwrap();
    let applied = effects(&txn).await;
    let stored = stored_offsets(&txn, partitions).await;
    txn.commit().await.unwrap();
    (applied, stored)
}

/// Sets the stored offset, as an operator would with SQL (the row must not exist yet).
pub(crate) async fn set_stored_offset(db: &DatabaseConnection, partition: i32, next_offset: i64) {
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
    log: &BrokerLog,
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

pub(crate) async fn wait_quiescent(
    app: &TestApp,
    log: &BrokerLog,
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
pub(crate) async fn wait_until<F: std::future::Future<Output = bool>>(
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
pub(crate) fn consumer_config(partitions: i32) -> ConsumerConfig {
    ConsumerConfig {
        partitions: (0..partitions).collect(),
        max_attempts: 3,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        fetch_max_wait: Duration::from_millis(200),
        ..ConsumerConfig::new(CONSUMER, TOPIC)
    }
}

/// A consumer running in the background over a log of its own.
pub(crate) struct RunningConsumer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ConsumerError>>,
    handler: RecordingHandler,
}

impl RunningConsumer {
    pub(crate) async fn start(
        db: &DatabaseConnection,
        broker: &TestBroker,
        handler: RecordingHandler,
        config: ConsumerConfig,
    ) -> RunningConsumer {
        RunningConsumer::on(db, connect(broker).await, handler, config)
    }

    /// Over an already connected log, so several instances can start at the same moment.
    pub(crate) fn on(
        db: &DatabaseConnection,
        log: BrokerLog,
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
    pub(crate) async fn stop(self) -> Result<(), ConsumerError> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the consumer did not stop within 30 s of shutdown")
            .unwrap()
    }

    /// Waits for the consumer to end on its own.
    pub(crate) async fn ended(self, within: Duration) -> Result<(), ConsumerError> {
        tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("the consumer did not halt within {within:?}"))
            .unwrap()
    }

    /// Kills the consumer's task where it stands (a crashed process, as far as the database
    /// and the broker can tell), and waits until it is gone.
    pub(crate) async fn abort(self) {
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
pub(crate) struct RunningRelay {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningRelay {
    pub(crate) async fn start(app: &TestApp, broker: &TestBroker) -> RunningRelay {
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

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the relay did not stop within 30 s of shutdown")
            .unwrap()
            .unwrap();
    }
}
