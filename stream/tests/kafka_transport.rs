//! The Kafka transport against a real broker: tansu 0.6.0 (SQLite engine), one broker per test,
//! started by `stream::broker_process::TansuBroker` on a free loopback port. `scripts/test`
//! installs tansu and exports `TASKSTREAM_TANSU`; without tansu these tests fail, they do not skip.
//!
//! The tests of the produce/fetch contract use a topic of their own
//! ([`TestBroker::with_topic`]), so they can also run against a shared external broker: with
//! `TASKSTREAM_TEST_KAFKA_BROKERS=host:port` they connect there instead of starting tansu (the
//! CI workflow runs them against Redpanda that way, filtered to the tests that do not start,
//! kill or reconfigure a broker: those need tansu and name it, `..._on_tansu`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use stream::broker_process::TansuBroker;
use stream::kafka::{Compression, KafkaConfig, KafkaLog, SaslMechanism, SaslSettings};
use stream::log::{LogError, LogReader, LogRecord, LogWriter, OutgoingRecord};
use stream::{partitioner, topics};

const TOPIC: &str = topics::TASK_EVENTS;

/// The external broker to use instead of tansu, for the tests that allow one.
const EXTERNAL_BROKERS_ENV: &str = "TASKSTREAM_TEST_KAFKA_BROKERS";

/// A broker and a log connected to it.
struct TestBroker {
    /// The tansu broker of this test (`None` on an external broker).
    tansu: Option<TansuBroker>,
    log: KafkaLog,
    /// A topic of this test's own, 3 partitions ([`TestBroker::with_topic`]).
    topic: String,
}

impl TestBroker {
    async fn start() -> TestBroker {
        TestBroker::start_with(|_| {}).await
    }

    /// A tansu broker of its own (tests that restart or reconfigure it).
    async fn start_with(adjust: impl FnOnce(&mut KafkaConfig)) -> TestBroker {
        let broker = TansuBroker::start().await.expect("tansu starts");
        let mut config =
            KafkaConfig::from_brokers(&broker.brokers()).expect("the broker address parses");
        adjust(&mut config);
        let log = KafkaLog::connect(config).await.expect("connects to tansu");
        TestBroker {
            tansu: Some(broker),
            log,
            topic: TOPIC.to_owned(),
        }
    }

    /// The external broker if `TASKSTREAM_TEST_KAFKA_BROKERS` is set, else a tansu broker, with
    /// a fresh topic of 3 partitions.
    async fn with_topic() -> TestBroker {
        let mut test = match std::env::var(EXTERNAL_BROKERS_ENV) {
            Ok(brokers) if !brokers.trim().is_empty() => {
                let config = KafkaConfig::from_brokers(&brokers)
                    .unwrap_or_else(|e| panic!("{EXTERNAL_BROKERS_ENV}: {e}"));
                let log = KafkaLog::connect(config)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {brokers}: {e}"));
                TestBroker {
                    tansu: None,
                    log,
                    topic: String::new(),
                }
            }
            _ => TestBroker::start().await,
        };
        test.topic = format!("transport-{}", uuid::Uuid::new_v4().simple());
        test.log
            .ensure_topics(&[test.topic.as_str()])
            .await
            .expect("the topic is created");
        test
    }

    /// This test's tansu broker.
    fn tansu(&mut self) -> &mut TansuBroker {
        self.tansu
            .as_mut()
            .expect("BUG: this test needs a tansu broker of its own")
    }
}

/// A timestamp with the millisecond precision Kafka keeps.
fn now_ms() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .unwrap()
}

fn record(key: &str, value: Option<&str>) -> OutgoingRecord {
    OutgoingRecord {
        key: key.to_owned(),
        value: value.map(|v| v.as_bytes().to_vec()),
        headers: BTreeMap::from([
            ("ce_id".to_owned(), format!("id-of-{key}")),
            ("ce_type".to_owned(), "task.updated.v1".to_owned()),
        ]),
        timestamp: now_ms(),
    }
}

fn numbered(range: std::ops::Range<i64>) -> Vec<OutgoingRecord> {
    range
        .map(|n| record(&format!("task-{n}"), Some(&format!("value-{n}"))))
        .collect()
}

fn offsets(records: &[LogRecord]) -> Vec<i64> {
    records.iter().map(|r| r.offset).collect()
}

#[tokio::test]
async fn topics_are_created_once_with_the_configured_partition_count_on_tansu() {
    // Arrange
    let test = TestBroker::start_with(|config| config.partitions = 2).await;

    // Act
    test.log.ensure_taskstream_topics().await.unwrap();
    test.log.ensure_taskstream_topics().await.unwrap();

    // Assert
    let listed = test.log.topic_partitions().await.unwrap();
    for topic in topics::ALL {
        assert_eq!(listed.get(topic), Some(&2), "{topic} in {listed:?}");
        assert_eq!(listed.get(&topics::dlq(topic)), Some(&2), "{topic}.dlq");
    }
    assert_eq!(listed.len(), 2 * topics::ALL.len(), "{listed:?}");
    assert_eq!(
        LogWriter::partition_count(&test.log, TOPIC).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn a_produced_batch_is_fetched_back_exactly() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let batch = vec![
        record("task-a", Some(r#"{"n":1}"#)),
        record("task-b", Some(r#"{"n":2}"#)),
        record("task-a", None),
        OutgoingRecord {
            headers: BTreeMap::new(),
            ..record("task-c", Some(""))
        },
    ];

    // Act
    let produced = test
        .log
        .produce(t.as_str(), 1, batch.clone())
        .await
        .unwrap();
    let fetched = test
        .log
        .fetch(t.as_str(), 1, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // Assert
    assert_eq!(produced, [0, 1, 2, 3]);
    assert_eq!(fetched.high_watermark, 4);
    let expected: Vec<LogRecord> = batch
        .into_iter()
        .zip(produced)
        .map(|(sent, offset)| LogRecord {
            topic: t.as_str().to_owned(),
            partition: 1,
            offset,
            key: Some(sent.key),
            value: sent.value,
            headers: sent.headers,
            timestamp: sent.timestamp,
        })
        .collect();
    assert_eq!(fetched.records, expected);
    assert_eq!(
        fetched.records[2].value, None,
        "a tombstone stays a tombstone"
    );
    assert_eq!(test.log.high_watermark(t.as_str(), 1).await.unwrap(), 4);
    assert_eq!(test.log.low_watermark(t.as_str(), 1).await.unwrap(), 0);
    assert_eq!(test.log.high_watermark(t.as_str(), 0).await.unwrap(), 0);
}

#[tokio::test]
async fn batches_continue_the_offsets_with_and_without_compression() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let mut plain_config = test.log.config().clone();
    plain_config.compression = Compression::None;
    let plain = KafkaLog::connect(plain_config).await.unwrap();

    // Act
    let first = test
        .log
        .produce(t.as_str(), 0, numbered(0..3))
        .await
        .unwrap();
    let second = plain.produce(t.as_str(), 0, numbered(3..5)).await.unwrap();
    let fetched = plain
        .fetch(t.as_str(), 0, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // Assert
    assert_eq!((first, second), (vec![0, 1, 2], vec![3, 4]));
    assert_eq!(offsets(&fetched.records), [0, 1, 2, 3, 4]);
    let values: Vec<_> = fetched.records.iter().map(|r| r.value.clone()).collect();
    let expected: Vec<_> = (0..5)
        .map(|n| Some(format!("value-{n}").into_bytes()))
        .collect();
    assert_eq!(values, expected);
}

#[tokio::test]
async fn a_fetch_inside_a_batch_returns_the_rest_of_the_batch_and_nothing_before() {
    // Arrange: one batch of ten records, then one of five.
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 2, numbered(0..10))
        .await
        .unwrap();
    test.log
        .produce(t.as_str(), 2, numbered(10..15))
        .await
        .unwrap();

    // Act
    let rest = test
        .log
        .fetch(t.as_str(), 2, 3, 100, Duration::from_secs(1))
        .await
        .unwrap();
    let two = test
        .log
        .fetch(t.as_str(), 2, 7, 2, Duration::from_secs(1))
        .await
        .unwrap();
    let second_batch = test
        .log
        .fetch(t.as_str(), 2, 12, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // Assert: a broker may return fewer batches than exist, but never a gap or an earlier record.
    let got = offsets(&rest.records);
    assert!(
        got.len() >= 7,
        "at least the rest of the first batch: {got:?}"
    );
    assert_eq!(got, (3..3 + got.len() as i64).collect::<Vec<_>>());
    assert_eq!(rest.records[0].key.as_deref(), Some("task-3"));
    assert_eq!(rest.high_watermark, 15);
    assert_eq!(offsets(&two.records), [7, 8]);
    assert_eq!(offsets(&second_batch.records), [12, 13, 14]);
}

#[tokio::test]
async fn a_fetch_at_the_end_waits_up_to_max_wait_and_returns_nothing() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 0, numbered(0..2))
        .await
        .unwrap();
    let max_wait = Duration::from_millis(700);

    // Act
    let started = Instant::now();
    let fetched = test
        .log
        .fetch(t.as_str(), 0, 2, 100, max_wait)
        .await
        .unwrap();
    let elapsed = started.elapsed();

    // Assert
    assert!(fetched.records.is_empty(), "{:?}", fetched.records);
    assert_eq!(fetched.high_watermark, 2);
    assert!(
        elapsed < max_wait + Duration::from_secs(3),
        "returned after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_waiting_fetch_does_not_delay_a_produce_to_the_same_partition() {
    // Arrange: a fetch at the end, which the broker holds for its max_wait.
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let log = Arc::new(test.log);
    // Connects the fetch side first, so that the spawned fetch goes straight to the wire.
    log.fetch(t.as_str(), 0, 0, 1, Duration::from_millis(10))
        .await
        .unwrap();
    let max_wait = Duration::from_secs(3);
    let fetching = {
        let log = Arc::clone(&log);
        let t = t.clone();
        tokio::spawn(async move { log.fetch(t.as_str(), 0, 0, 100, max_wait).await })
    };
    wait_until_fetch_is_waiting().await;

    // Act
    let started = Instant::now();
    let produced = log.produce(t.as_str(), 0, numbered(0..1)).await.unwrap();
    let elapsed = started.elapsed();

    // Assert
    assert_eq!(produced, [0]);
    assert!(
        elapsed < Duration::from_secs(1),
        "the produce waited {elapsed:?} behind the fetch"
    );
    let fetched = fetching.await.unwrap().unwrap();
    assert!(fetched.records.len() <= 1);
}

/// On this single-threaded runtime the spawned task runs when the test task yields; with its
/// connection already open it writes the fetch request and then waits for the answer. (Were it
/// still unsent, the produce would simply come first and the test would prove nothing, never
/// fail wrongly.)
async fn wait_until_fetch_is_waiting() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_fetch_past_the_end_is_offset_out_of_range() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 0, numbered(0..2))
        .await
        .unwrap();

    // Act
    let error = test
        .log
        .fetch(t.as_str(), 0, 5, 100, Duration::from_millis(200))
        .await
        .unwrap_err();

    // Assert
    match error {
        LogError::OffsetOutOfRange {
            topic,
            partition,
            offset,
            high_watermark,
        } => assert_eq!(
            (topic.as_str(), partition, offset, high_watermark),
            (t.as_str(), 0, 5, 2)
        ),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    let negative = test
        .log
        .fetch(t.as_str(), 0, -1, 100, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(
            negative,
            LogError::OffsetOutOfRange {
                offset: -1,
                high_watermark: 2,
                ..
            }
        ),
        "{negative:?}"
    );
    // The partition is still usable afterwards.
    let fetched = test
        .log
        .fetch(t.as_str(), 0, 1, 100, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(offsets(&fetched.records), [1]);
}

#[tokio::test]
async fn a_killed_broker_is_unavailable_within_the_deadline_and_a_restart_keeps_every_record_on_tansu()
 {
    // Arrange
    let retry_deadline = Duration::from_secs(2);
    let request_timeout = Duration::from_secs(2);
    let mut test = TestBroker::start_with(|config| {
        config.retry_deadline = retry_deadline;
        config.request_timeout = request_timeout;
    })
    .await;
    test.log.ensure_topics(&[TOPIC]).await.unwrap();
    for start in [0, 4, 8] {
        test.log
            .produce(TOPIC, 1, numbered(start..start + 4))
            .await
            .unwrap();
    }

    // Act 1: SIGKILL, then produce and fetch.
    test.tansu().kill();
    let started = Instant::now();
    let produce_error = test
        .log
        .produce(TOPIC, 1, numbered(100..101))
        .await
        .unwrap_err();
    let produce_elapsed = started.elapsed();
    let fetch_error = test
        .log
        .fetch(TOPIC, 1, 0, 100, Duration::from_millis(100))
        .await
        .unwrap_err();

    // Assert 1
    assert!(
        matches!(produce_error, LogError::Unavailable(_)),
        "{produce_error:?}"
    );
    assert!(
        produce_elapsed <= retry_deadline + request_timeout + Duration::from_secs(1),
        "produce gave up after {produce_elapsed:?}"
    );
    assert!(fetch_error.is_transient(), "{fetch_error:?}");

    // Act 2: restart on the same storage; the same KafkaLog goes on.
    test.tansu().restart().await.unwrap();
    let after_restart = test.log.produce(TOPIC, 1, numbered(12..14)).await;

    // Assert 2
    assert_eq!(after_restart.unwrap(), [12, 13]);
    let fetched = test
        .log
        .fetch(TOPIC, 1, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();
    let keys: Vec<_> = fetched
        .records
        .iter()
        .map(|r| r.key.clone().unwrap())
        .collect();
    let expected: Vec<_> = (0..14).map(|n| format!("task-{n}")).collect();
    // The produce that failed while the broker was dead never reached it.
    assert_eq!(keys, expected);
    assert_eq!(offsets(&fetched.records), (0..14).collect::<Vec<_>>());
    assert_eq!(test.log.high_watermark(TOPIC, 1).await.unwrap(), 14);
}

#[tokio::test]
async fn unknown_topics_and_partitions_are_fatal_and_not_auto_created() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();

    // Act
    let unknown_topic = test
        .log
        .fetch("no-such-topic", 0, 0, 1, Duration::from_millis(100))
        .await
        .unwrap_err();
    let unknown_partition = test
        .log
        .produce(t.as_str(), 3, numbered(0..1))
        .await
        .unwrap_err();

    // Assert
    assert!(
        matches!(&unknown_topic, LogError::Fatal(m) if m.contains("no-such-topic")),
        "{unknown_topic:?}"
    );
    assert!(
        matches!(&unknown_partition, LogError::Fatal(m) if m.contains("partition 3")),
        "{unknown_partition:?}"
    );
    let listed = test.log.topic_partitions().await.unwrap();
    assert!(!listed.contains_key("no-such-topic"), "{listed:?}");
}

#[tokio::test]
async fn keyed_records_land_on_the_partition_the_java_client_picks() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let keys: Vec<String> = (0..12).map(|n| format!("task-{n}")).collect();

    // Act
    for key in &keys {
        let partition = test.log.partition_for_key(t.as_str(), key).await.unwrap();
        test.log
            .produce(t.as_str(), partition, vec![record(key, Some("v"))])
            .await
            .unwrap();
    }

    // Assert
    for partition in 0..3 {
        let fetched = test
            .log
            .fetch(t.as_str(), partition, 0, 100, Duration::from_millis(200))
            .await
            .unwrap();
        let got: Vec<_> = fetched
            .records
            .iter()
            .filter_map(|r| r.key.clone())
            .collect();
        let expected: Vec<_> = keys
            .iter()
            .filter(|key| partitioner::partition_for_key(key.as_bytes(), 3) == partition)
            .cloned()
            .collect();
        assert_eq!(got, expected, "partition {partition}");
    }
}

#[test]
fn malformed_broker_lists_are_rejected_naming_kafka_brokers() {
    for input in ["", "host", "host:abc"] {
        let error = KafkaConfig::from_brokers(input).unwrap_err().to_string();
        assert!(error.contains("KAFKA_BROKERS"), "{input:?}: {error}");
    }
    assert!(
        KafkaConfig::from_brokers("host")
            .unwrap_err()
            .to_string()
            .contains("no port")
    );
    assert!(
        KafkaConfig::from_brokers("host:abc")
            .unwrap_err()
            .to_string()
            .contains("\"abc\"")
    );
}

#[tokio::test]
async fn sasl_scram_users_authenticate_and_wrong_credentials_are_refused_on_tansu() {
    // Arrange: a SCRAM-SHA-512 user, then the broker restarted with authentication required.
    let mut broker = TansuBroker::start().await.unwrap();
    let relay = SaslSettings {
        mechanism: SaslMechanism::ScramSha512,
        username: "relay".to_owned(),
        password: "correct horse".to_owned(),
    };
    broker
        .create_scram_user(relay.mechanism, &relay.username, &relay.password)
        .unwrap();
    broker.require_authentication(relay.clone());
    broker.restart().await.unwrap();
    let config_as = |sasl: Option<SaslSettings>| {
        let mut config = KafkaConfig::from_brokers(&broker.brokers()).unwrap();
        config.retry_deadline = Duration::from_millis(500);
        config.connect_timeout = Duration::from_secs(5);
        config.sasl = sasl;
        config
    };

    // Act
    let authenticated = KafkaLog::connect(config_as(Some(relay.clone()))).await;
    let wrong_password = KafkaLog::connect(config_as(Some(SaslSettings {
        password: "wrong".to_owned(),
        ..relay.clone()
    })))
    .await;
    let anonymous = KafkaLog::connect(config_as(None)).await;

    // Assert
    let log = authenticated.expect("the SCRAM user connects");
    log.ensure_topics(&[TOPIC]).await.unwrap();
    assert_eq!(log.produce(TOPIC, 0, numbered(0..2)).await.unwrap(), [0, 1]);
    let wrong_password = wrong_password.expect_err("a wrong password is refused");
    assert!(
        wrong_password.to_string().contains("Sasl"),
        "{wrong_password}"
    );
    assert!(
        !wrong_password.to_string().contains("wrong"),
        "{wrong_password}"
    );
    assert!(
        anonymous.is_err(),
        "a client without credentials is refused"
    );
}

#[tokio::test]
async fn a_stopped_broker_restarts_with_its_records_on_tansu() {
    // Arrange
    let mut test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 0, numbered(0..3))
        .await
        .unwrap();

    // Act
    let started = Instant::now();
    test.tansu().stop().await.unwrap();
    let stop_took = started.elapsed();
    test.tansu().restart().await.unwrap();

    // Assert
    assert_eq!(test.tansu().pid().map(|_| ()), Some(()));
    // tansu 0.6.0 takes 2-5 s to exit on SIGTERM; at 10 s stop() would SIGKILL it.
    assert!(
        stop_took < Duration::from_secs(9),
        "tansu ignored SIGTERM: {stop_took:?}"
    );
    let fetched = test
        .log
        .fetch(t.as_str(), 0, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(offsets(&fetched.records), [0, 1, 2]);
}
