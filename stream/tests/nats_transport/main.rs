//! The NATS JetStream transport against a real nats-server (Debian's package, 2.9), one server
//! per test, started by `stream::nats_process::NatsServer` on a free loopback port with its own
//! store directory. `scripts/test` installs nats-server; without it these tests fail, they do
//! not skip.
//!
//! Grouped into `contract` (batches, offsets, tombstones, headers, watermarks, waiting at the
//! end, out-of-range offsets, unknown topics and partitions), `streams` (creation, partition
//! counts, interrupted creation, gaps), `server` (kills, restarts, duplicates, user and password,
//! a server without JetStream) and `auth` (token, TLS with client certificates, a `.creds`
//! file in operator mode).
#![allow(clippy::unwrap_used)]

mod auth;
mod contract;
mod server;
mod streams;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use stream::log::{LogError, LogReader, LogRecord, LogWriter, OutgoingRecord};
use stream::nats::{NatsAuth, NatsConfig, NatsLog};
use stream::nats_process::NatsServer;
use stream::topics;

const TOPIC: &str = topics::TASK_EVENTS;

/// A server and a log connected to it, with the taskstream streams created.
struct TestServer {
    server: NatsServer,
    log: NatsLog,
}

impl TestServer {
    async fn start() -> TestServer {
        let server = NatsServer::start().await.expect("nats-server starts");
        let log = NatsLog::connect_with_topics(config(&server))
            .await
            .expect("connects to nats-server");
        TestServer { server, log }
    }
}

/// Short bounds, so a killed server is noticed within seconds.
fn config(server: &NatsServer) -> NatsConfig {
    let mut config = NatsConfig::from_url(&server.url()).unwrap();
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(3);
    config
}

/// [`config`] with credentials.
fn config_with(server: &NatsServer, auth: NatsAuth) -> NatsConfig {
    NatsConfig {
        auth,
        ..config(server)
    }
}

/// A timestamp with the millisecond precision the transport keeps.
fn now_ms() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .unwrap()
}

/// A record with a CloudEvent id of its own.
fn record(key: &str, value: Option<&str>) -> OutgoingRecord {
    OutgoingRecord {
        key: key.to_owned(),
        value: value.map(|v| v.as_bytes().to_vec()),
        headers: BTreeMap::from([
            ("ce_id".to_owned(), uuid::Uuid::new_v4().to_string()),
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

/// Every record of partition `p` from `from` to the end, fetched in rounds of `batch`.
async fn read_from(log: &NatsLog, topic: &str, p: i32, from: i64, batch: usize) -> Vec<LogRecord> {
    let end = log.high_watermark(topic, p).await.unwrap();
    let mut out = Vec::new();
    let mut offset = from;
    while offset < end {
        let fetched = log
            .fetch(topic, p, offset, batch, Duration::from_secs(2))
            .await
            .unwrap();
        let last = fetched
            .records
            .last()
            .unwrap_or_else(|| panic!("nothing at {offset} below the end {end}"));
        offset = last.offset + 1;
        out.extend(fetched.records);
    }
    out
}

/// Asserts that `result` is [`LogError::Fatal`] with a message containing each of `signs`.
fn assert_fatal<T: std::fmt::Debug>(what: &str, result: Result<T, LogError>, signs: &[&str]) {
    match result {
        Err(LogError::Fatal(message)) => {
            for sign in signs {
                assert!(message.contains(sign), "{what}: {sign:?} not in {message}");
            }
        }
        other => panic!("{what}: expected a fatal error naming {signs:?}, got {other:?}"),
    }
}
