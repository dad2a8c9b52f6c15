//! The outbox relay against a real Kafka-protocol broker (tansu, started per test), with the
//! application database on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use stream::broker_process::TansuBroker;
use stream::kafka::{KafkaConfig, KafkaLog};
use stream::log::{LogReader, LogRecord};
use stream::relay::{Relay, RelayConfig};
use support::TestApp;

const ALICE: &str = "alice";

async fn connect(broker: &TansuBroker) -> KafkaLog {
    let log = KafkaLog::connect(KafkaConfig::from_brokers(&broker.brokers()).unwrap())
        .await
        .unwrap();
    log.ensure_taskstream_topics().await.unwrap();
    log
}

/// Every record of `topic`, all partitions, in (partition, offset) order.
async fn read_all(log: &KafkaLog, topic: &str) -> Vec<LogRecord> {
    let partitions = log.partition_count(topic).await.unwrap();
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut offset = 0;
        loop {
            let fetched = log
                .fetch(topic, p, offset, 500, Duration::from_millis(100))
                .await
                .unwrap();
            if fetched.records.is_empty() {
                break;
            }
            offset = fetched.records.last().unwrap().offset + 1;
            out.extend(fetched.records);
            if offset >= fetched.high_watermark {
                break;
            }
        }
    }
    out
}

async fn pending(app: &TestApp) -> u64 {
    stream::relay::pending_stats(&app.db).await.unwrap().0
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn write_tasks(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let task = app
            .create_task(
                ALICE,
                json!({ "title": format!("Task {i}"), "tags": ["t"] }),
            )
            .await;
        let id = task["id"].as_str().unwrap().to_owned();
        app.ok(
            ALICE,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        ids.push(id);
    }
    ids
}

/// Checks the log holds exactly the outbox's events: each event id once per topic, per-task
/// order by version, and the outbox rows marked with the partition and offset they landed at.
async fn assert_log_matches_outbox(app: &TestApp, log: &KafkaLog) {
    let rows = app.outbox().await;
    assert!(
        rows.iter().all(|r| r.published_at.is_some()),
        "every row published"
    );
    for topic in [stream::topics::TASK_EVENTS, stream::topics::TASK_UPDATES] {
        let records = read_all(log, topic).await;
        let expected: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.topic == topic)
            .map(|r| r.event_id.to_string())
            .collect();
        let seen: Vec<String> = records.iter().map(|r| r.headers["ce_id"].clone()).collect();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique, expected,
            "{topic}: every event exactly the outbox's"
        );
        assert_eq!(seen.len(), expected.len(), "{topic}: no duplicates");
        let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for r in &records {
            versions
                .entry(r.key.clone().unwrap())
                .or_default()
                .push(r.headers["ce_aggregateversion"].parse().unwrap());
        }
        for (key, v) in versions {
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert_eq!(v, sorted, "{topic}: events of task {key} in version order");
        }
        for r in &records {
            let row = rows
                .iter()
                .find(|row| row.event_id.to_string() == r.headers["ce_id"])
                .unwrap();
            assert_eq!(
                (row.partition, row.offset),
                (Some(r.partition), Some(r.offset))
            );
            assert_eq!(
                r.partition,
                stream::partitioner::partition_for_key(
                    row.key.as_bytes(),
                    log.partition_count(topic).await.unwrap()
                )
            );
        }
    }
}

/// Twelve tasks written and completed (their outbox rows pending), a broker, a client of it,
/// and a relay that reads 7 rows a round.
struct Twelve {
    app: TestApp,
    log: KafkaLog,
    relay: Relay<KafkaLog>,
    /// The broker, running while the fixture lives.
    _broker: TansuBroker,
}

impl Twelve {
    async fn on(t: &support::TestDb) -> Twelve {
        let app = TestApp::on(t);
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        write_tasks(&app, 12).await;
        let relay = Relay::new(
            app.db.clone(),
            connect(&broker).await,
            RelayConfig {
                batch_size: 7,
                ..RelayConfig::default()
            },
        );
        Twelve {
            app,
            log,
            relay,
            _broker: broker,
        }
    }
}

on_both_databases!(
    the_relay_publishes_every_outbox_row_once_in_per_task_order,
    |t| {
        let twelve = Twelve::on(t).await;
        let (app, log, relay) = (&twelve.app, &twelve.log, &twelve.relay);
        while relay.publish_round().await.unwrap().published > 0 {}
        assert_eq!(pending(app).await, 0);
        assert_log_matches_outbox(app, log).await;
    }
);

on_both_databases!(
    draining_in_overlapping_rounds_publishes_every_row_once_in_order_and_marks_each,
    |t| {
        let twelve = Twelve::on(t).await;
        let (app, log, relay) = (&twelve.app, &twelve.log, &twelve.relay);
        let rows = app.outbox().await.len();

        // One call drains every full round (each marked while the next is produced).
        let report = relay.publish_pending().await.unwrap();

        assert_eq!((report.published, report.failed), (rows, 0));
        assert_eq!(pending(app).await, 0);
        assert_log_matches_outbox(app, log).await;
        assert_eq!(
            relay.publish_pending().await.unwrap(),
            stream::relay::RoundReport::default(),
            "nothing is left"
        );
    }
);

/// A log kept in memory that refuses one partition's batches after it has taken `after` of
/// them, until told otherwise: the relay's handling of a failed group inside a drain, without
/// a broker (the broker tests above cover the real transports).
struct ScriptedLog(std::sync::Arc<Script>);

/// What a [`ScriptedLog`] took, and whom it refuses.
#[derive(Default)]
struct Script {
    /// The `ce_id`s taken per (topic, partition), in order; offsets are positions in it.
    taken: std::sync::Mutex<BTreeMap<(String, i32), Vec<String>>>,
    /// Batches taken per partition number (all topics).
    batches: std::sync::Mutex<BTreeMap<i32, usize>>,
    /// `(partition, after)`: refuse that partition once it has taken `after` batches.
    refuse: std::sync::Mutex<Option<(i32, usize)>>,
}

impl stream::log::LogWriter for ScriptedLog {
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<stream::log::OutgoingRecord>,
    ) -> Result<Vec<i64>, stream::log::LogError> {
        let script = &self.0;
        let mut batches = script.batches.lock().unwrap();
        let taken_batches = batches.entry(partition).or_default();
        if let Some((refused, after)) = *script.refuse.lock().unwrap()
            && refused == partition
            && *taken_batches >= after
        {
            return Err(stream::log::LogError::Unavailable(format!(
                "partition {partition} refuses batches (scripted)"
            )));
        }
        *taken_batches += 1;
        let mut taken = script.taken.lock().unwrap();
        let list = taken.entry((topic.to_owned(), partition)).or_default();
        let first = list.len() as i64;
        list.extend(records.iter().map(|r| r.headers["ce_id"].clone()));
        Ok((first..list.len() as i64).collect())
    }

    async fn partition_count(&self, _topic: &str) -> Result<i32, stream::log::LogError> {
        Ok(3)
    }
}

on_both_databases!(
    a_failed_group_ends_a_drain_and_nothing_of_a_later_round_goes_out,
    |t| {
        let app = TestApp::on(t);
        write_tasks(&app, 12).await;
        let script = std::sync::Arc::new(Script {
            refuse: std::sync::Mutex::new(Some((1, 1))),
            ..Script::default()
        });
        let relay = Relay::new(
            app.db.clone(),
            ScriptedLog(std::sync::Arc::clone(&script)),
            RelayConfig {
                batch_size: 7,
                ..RelayConfig::default()
            },
        );
        let partition_of = |row: &entities::outbox::Model| {
            stream::partitioner::partition_for_key(row.key.as_bytes(), 3)
        };

        let report = relay.publish_pending().await.unwrap();

        assert!(report.failed > 0, "partition 1 refused a batch: {report:?}");
        let rows = app.outbox().await;
        let taken = script.taken.lock().unwrap().clone();
        let marked: Vec<_> = rows.iter().filter(|r| r.published_at.is_some()).collect();
        assert_eq!(
            marked.len(),
            report.published,
            "every row that went out is marked"
        );
        assert_eq!(
            marked.len(),
            taken.values().map(Vec::len).sum::<usize>(),
            "nothing went out unmarked"
        );
        for row in &marked {
            let on_log = &taken[&(row.topic.clone(), row.partition.unwrap())];
            assert_eq!(
                on_log[row.offset.unwrap() as usize],
                row.event_id.to_string()
            );
        }
        // The drain stopped at the failed round: in every partition, every row that went out
        // comes before every row that did not (no later round was produced, and no later row
        // of the refused partition overtook the refused ones).
        for row in rows.iter().filter(|r| r.published_at.is_none()) {
            let (topic, partition) = (row.topic.as_str(), partition_of(row));
            assert!(
                marked
                    .iter()
                    .filter(|m| m.topic == topic && m.partition == Some(partition))
                    .all(|m| m.id < row.id),
                "row {} of {topic}[{partition}] was overtaken",
                row.id
            );
        }
        assert!(
            rows.iter()
                .any(|r| r.published_at.is_none() && partition_of(r) == 1),
            "the refused rows stay pending"
        );

        // Once the partition takes batches again, the next drain publishes the rest, each
        // partition in id order.
        *script.refuse.lock().unwrap() = None;
        let rest = relay.publish_pending().await.unwrap();
        assert_eq!(rest.failed, 0);
        assert_eq!(rest.published + report.published, rows.len());
        let rows = app.outbox().await;
        assert!(rows.iter().all(|r| r.published_at.is_some()));
        let taken = script.taken.lock().unwrap().clone();
        for ((topic, partition), on_log) in taken {
            let in_id_order: Vec<String> = rows
                .iter()
                .filter(|r| r.topic == topic && partition_of(r) == partition)
                .map(|r| r.event_id.to_string())
                .collect();
            assert_eq!(on_log, in_id_order, "{topic}[{partition}] in id order");
        }
    }
);

on_both_databases!(
    a_shutdown_stops_a_drain_between_rounds_and_what_went_out_is_marked,
    |t| {
        let twelve = Twelve::on(t).await;
        let (app, log, relay) = (&twelve.app, &twelve.log, &twelve.relay);
        let rows = app.outbox().await.len();

        // Shutdown is requested before the relay starts: it may finish one round, no more.
        relay.run(async {}).await.unwrap();

        let marked = app
            .outbox()
            .await
            .into_iter()
            .filter(|row| row.published_at.is_some())
            .count();
        assert!(marked <= 7, "at most one round of 7 went out, {marked} did");
        assert_eq!(pending(app).await as usize, rows - marked);
        let records = read_all(log, stream::topics::TASK_EVENTS).await.len()
            + read_all(log, stream::topics::TASK_UPDATES).await.len();
        assert_eq!(
            records, marked,
            "every record on the log is marked, no more"
        );
    }
);

on_both_databases!(
    a_deletion_is_a_tombstone_on_task_updates_with_its_headers,
    |t| {
        let app = TestApp::on(t);
        let broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let id = app
            .create_task(ALICE, json!({ "title": "Short-lived" }))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.ok(
            ALICE,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        let relay = Relay::new(
            app.db.clone(),
            connect(&broker).await,
            RelayConfig::default(),
        );
        relay.publish_round().await.unwrap();
        let updates = read_all(&log, stream::topics::TASK_UPDATES).await;
        assert_eq!(updates.len(), 2);
        assert!(updates[0].value.is_some());
        assert_eq!(updates[1].value, None, "a deletion is a tombstone");
        assert_eq!(updates[1].key.as_deref(), Some(id.as_str()));
        assert_eq!(updates[1].headers["ce_aggregateversion"], "2");
        let history = read_all(&log, stream::topics::TASK_EVENTS).await;
        let deleted: Value = serde_json::from_slice(history[1].value.as_ref().unwrap()).unwrap();
        assert_eq!(deleted["type"], "taskstream.task.deleted");
    }
);

on_both_databases!(
    rows_written_while_the_broker_is_down_are_published_when_it_returns,
    |t| {
        let app = TestApp::on(t);
        let mut broker = TansuBroker::start().await.unwrap();
        let log = connect(&broker).await;
        let relay = Relay::new(
            app.db.clone(),
            connect(&broker).await,
            RelayConfig {
                backoff_initial: Duration::from_millis(50),
                backoff_max: Duration::from_millis(500),
                poll_interval: Duration::from_millis(100),
                ..RelayConfig::default()
            },
        );
        broker.kill();
        write_tasks(&app, 5).await;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            relay
                .run(async {
                    stop_rx.await.ok();
                })
                .await
                .unwrap();
        });
        let attempted = || async {
            app.outbox()
                .await
                .iter()
                .any(|r| r.attempts > 0 && r.last_error.is_some())
        };
        wait_until(
            "the relay has tried and failed while the broker is down",
            attempted,
        )
        .await;
        assert_eq!(
            pending(&app).await,
            20,
            "nothing is lost or marked while the broker is down"
        );
        broker.restart().await.unwrap();
        wait_until(
            "every row is published after the broker returns",
            || async { pending(&app).await == 0 },
        )
        .await;
        stop_tx.send(()).unwrap();
        running.await.unwrap();
        assert_log_matches_outbox(&app, &log).await;
    }
);

on_both_databases!(
    a_second_client_reads_the_cloudevents_and_agrees_on_partitions,
    |t| {
        let app = TestApp::on(t);
        let broker = TansuBroker::start().await.unwrap();
        write_tasks(&app, 4).await;
        let relay = Relay::new(
            app.db.clone(),
            connect(&broker).await,
            RelayConfig::default(),
        );
        relay.publish_round().await.unwrap();
        let output = run_python(
            "read_topic.py",
            vec![
                "--brokers".into(),
                broker.brokers(),
                "--topic".into(),
                "task-events".into(),
            ],
        )
        .await;
        assert_same_cloudevents("kafka-python", &output);
    }
);

on_both_databases!(
    a_nats_client_reads_the_cloudevents_from_jetstream_and_agrees_on_partitions,
    |t| {
        let app = TestApp::on(t);
        let server = stream::nats_process::NatsServer::start().await.unwrap();
        write_tasks(&app, 4).await;
        let config = stream::nats::NatsConfig::from_url(&server.url()).unwrap();
        let log = stream::nats::NatsLog::connect_with_topics(config)
            .await
            .unwrap();
        let relay = Relay::new(app.db.clone(), log, RelayConfig::default());
        relay.publish_round().await.unwrap();
        assert_eq!(pending(&app).await, 0);
        let output = run_python(
            "read_stream.py",
            vec![
                "--url".into(),
                server.url(),
                "--topic".into(),
                "task-events".into(),
            ],
        )
        .await;
        assert_same_cloudevents("nats-py", &output);
    }
);

/// Runs `scripts/interop/<script>` with `args` and `--count 8`, and returns its stdout.
async fn run_python(script: &str, mut args: Vec<String>) -> String {
    let path = format!("{}/../scripts/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    args.extend(["--count".to_owned(), "8".to_owned()]);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(path)
            .args(args)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The 8 `task-events` records of 4 created and completed tasks, as the independent client
/// printed them: CloudEvents with their `ce_*` headers, each on its key's murmur2 partition.
fn assert_same_cloudevents(client: &str, output: &str) {
    let lines: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8, "{client}: {output}");
    for line in &lines {
        assert_eq!(
            line["partition"], line["expected_partition"],
            "murmur2 partitioning agrees with {client}"
        );
        let event = &line["event"];
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["subject"], line["key"]);
        assert_eq!(line["headers"]["ce_id"], event["id"]);
        assert_eq!(line["headers"]["ce_type"], event["type"]);
        assert_eq!(line["headers"]["ce_source"], "urn:taskstream");
        assert!(
            event["data"]["task"]["title"]
                .as_str()
                .unwrap()
                .starts_with("Task ")
        );
    }
}

/// The PostgreSQL sessions holding the relay's advisory lock.
async fn relay_lock_holders(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::ConnectionTrait;
    let key = stream::relay::RELAY_LOCK_KEY;
    let sql = format!(
        "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND classid = {} AND objid = {} AND objsubid = 1",
        (key >> 32) as u32,
        (key & 0xffff_ffff) as u32
    );
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn on_postgres_one_relay_leads_and_a_standby_takes_over_when_it_stops() {
    let Some(t) = support::TestDb::migrated(support::Backend::Postgres).await else {
        return;
    };
    let app = TestApp::on(&t);
    let broker = TansuBroker::start().await.unwrap();
    let log = connect(&broker).await;
    let fast = RelayConfig {
        poll_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    let start = |config: RelayConfig, log: KafkaLog| {
        let relay = Relay::new(app.db.clone(), log, config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            relay
                .run(async {
                    rx.await.ok();
                })
                .await
                .unwrap();
        });
        (tx, task)
    };
    let (stop_a, a) = start(fast.clone(), connect(&broker).await);
    wait_until("the first relay leads", || async {
        relay_lock_holders(&app.db).await == 1
    })
    .await;
    let (stop_b, b) = start(fast.clone(), connect(&broker).await);
    write_tasks(&app, 4).await;
    wait_until("everything is published", || async {
        pending(&app).await == 0
    })
    .await;
    assert_eq!(
        relay_lock_holders(&app.db).await,
        1,
        "exactly one relay holds the lock"
    );

    // The leader stops; the standby takes the lock and publishes what comes next.
    stop_a.send(()).unwrap();
    a.await.unwrap();
    write_tasks(&app, 3).await;
    wait_until("the standby publishes after the leader stopped", || async {
        pending(&app).await == 0
    })
    .await;
    assert_eq!(relay_lock_holders(&app.db).await, 1);
    assert_log_matches_outbox(&app, &log).await;

    // A relay that is cancelled outright (no graceful stop) also releases the lock.
    b.abort();
    let _ = b.await;
    drop(stop_b);
    wait_until("a cancelled relay's lock is released", || async {
        relay_lock_holders(&app.db).await == 0
    })
    .await;
    t.cleanup().await;
}

on_both_databases!(
    published_rows_past_the_retention_are_pruned_and_pending_rows_kept,
    |t| {
        let app = TestApp::on(t);
        let broker = TansuBroker::start().await.unwrap();
        write_tasks(&app, 3).await;
        let relay = Relay::new(
            app.db.clone(),
            connect(&broker).await,
            RelayConfig::default(),
        );
        relay.publish_round().await.unwrap();
        app.create_task(ALICE, json!({ "title": "Still pending" }))
            .await;
        // The retention loop prunes the outbox now; a cutoff just ahead means zero retention.
        let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
        let distributed = stream::retention::LogMode::Distributed;
        let pruned = stream::retention::prune_outbox(&app.db, &distributed, cutoff, 1_000)
            .await
            .unwrap()
            .rows;
        assert_eq!(pruned, 12, "every published row is past a zero retention");
        let left = app.outbox().await;
        assert_eq!(left.len(), 2, "the pending rows stay");
        assert!(left.iter().all(|r| r.published_at.is_none()));
    }
);
