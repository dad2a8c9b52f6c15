//! The event log seen by the relay and the consumers, independent of its transport: a set of
//! topics, each split into partitions, each an append-only sequence of records addressed by
//! offset. Two transports implement it: [`crate::kafka`] (a Kafka-protocol broker through
//! rskafka) and [`crate::embedded`] (the `outbox` table itself, in embedded mode).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// One record read from a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
    pub timestamp: DateTime<Utc>,
}

/// One record to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub key: String,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
    pub timestamp: DateTime<Utc>,
}

/// The result of one fetch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<LogRecord>,
    /// The offset the next produced record will get (the partition's end).
    pub high_watermark: i64,
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be reached right now (broker down, timeout, connection reset). Retry
    /// with backoff; nothing was lost.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The requested offset is not in the partition (past its end, or already deleted). The
    /// consumer halts loudly rather than skipping.
    #[error(
        "offset {offset} is out of range for {topic}[{partition}] (log ends at {high_watermark})"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        high_watermark: i64,
    },
    /// Anything else (unknown topic, protocol error, misconfiguration): not retried blindly.
    #[error("event log error: {0}")]
    Fatal(String),
}

impl LogError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, LogError::Unavailable(_))
    }
}

/// Reads records from a partition.
pub trait LogReader: Send + Sync {
    /// Fetches up to `max_records` records starting at `offset`, waiting up to `max_wait` for
    /// at least one when the partition has none yet.
    fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Fetched, LogError>> + Send;

    /// How many partitions `topic` has.
    fn partition_count(&self, topic: &str) -> impl Future<Output = Result<i32, LogError>> + Send;

    /// The `max_wait` a reader that has nothing else to do should pass to [`Self::fetch`]: how
    /// long an idle fetch may wait before it returns empty. One second by default (a broker
    /// long-polls, which costs the database nothing); longer where fetches wake up on commits
    /// and an idle fetch would only poll the database.
    fn idle_fetch_wait(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// Appends records to a partition.
pub trait LogWriter: Send + Sync {
    /// Appends `records` to one partition, in order, as one batch acknowledged by all in-sync
    /// replicas (acks=all). Returns the offset of each record.
    fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> impl Future<Output = Result<Vec<i64>, LogError>> + Send;

    /// How many partitions `topic` has.
    fn partition_count(&self, topic: &str) -> impl Future<Output = Result<i32, LogError>> + Send;
}

/// Runs `attempt` until it succeeds, retrying with backoff (200 ms doubling up to 30 s) while
/// it fails with [`LogError::Unavailable`]: how every process connects to its event log, whose
/// rows wait in the outbox meanwhile. `Ok(None)` once `shutdown` is cancelled; an error that
/// retrying cannot fix (bad TLS settings or credentials) is returned.
pub async fn retry_while_unavailable<T, F, Fut>(
    shutdown: &crate::lifecycle::CancellationToken,
    mut attempt: F,
) -> Result<Option<T>, LogError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LogError>>,
{
    let mut backoff =
        crate::lifecycle::Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            outcome = attempt() => outcome,
        };
        match outcome {
            Ok(connected) => return Ok(Some(connected)),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, backoff = ?backoff.next_delay(), "event log unreachable; the outbox keeps the events until it is back");
            }
            Err(e) => return Err(e),
        }
        if !backoff.pause(shutdown).await {
            return Ok(None);
        }
    }
}
