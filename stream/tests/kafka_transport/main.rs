//! The Kafka transport against a real broker: tansu 0.6.0 (SQLite engine), one broker per test,
//! started by `stream::broker_process::TansuBroker` on a free loopback port. `scripts/test`
//! installs tansu and exports `TASKSTREAM_TANSU`; without tansu these tests fail, they do not skip.
//!
//! The tests of the produce/fetch contract use a topic of their own
//! ([`TestBroker::with_topic`]), so they can also run against a shared external broker: with
//! `TASKSTREAM_TEST_KAFKA_BROKERS=host:port` they connect there instead of starting tansu (the
//! CI workflow runs them against Redpanda that way, filtered to the tests that do not start,
//! kill or reconfigure a broker: those need tansu and name it, `..._on_tansu`).
//!
//! `TestBroker` and the record helpers live here; the tests are grouped into `produce_fetch`
//! (batches and offsets), `fetch_bounds` (waiting at the end, past the end, unknown topics),
//! `partitioning` (topic creation, the partitioner, broker lists) and `broker` (kills, restarts
//! and SASL).

mod broker;
mod fetch_bounds;
mod partitioning;
mod produce_fetch;

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
