//! Live task changes: one log consumer per gateway process tails `task-events` and fans every
//! change out to the open `taskChanged` subscriptions through a bounded broadcast channel.
//!
//! Decisions:
//! - The consumer reads `task-events`, not `task-updates`: every `task-events` record carries
//!   the change kind and the full snapshot, including the owner of a deleted task, whereas a
//!   `task-updates` deletion is a tombstone with no owner to scope it by.
//! - Live only: each partition is read from its end at start-up (no history is replayed) and
//!   offsets are never stored. A client that reconnects refetches with the `tasks` query.
//! - The channel is bounded ([`LIVE_CHANNEL_CAPACITY`]). A subscriber that falls further behind
//!   than that is dropped (its stream ends with an error and it must resubscribe); nothing is
//!   ever buffered per client beyond the shared ring.
//! - Log errors are retried with capped exponential backoff from the last position; an offset
//!   that fell out of the log jumps to its end (the changes in between are not live any more).

use std::sync::Arc;
use std::time::Duration;

use stream::CloudEvent;
use stream::log::{LogError, LogReader, LogRecord};
use stream::task_events::{TaskChangeKind, TaskEventData, TaskSnapshot};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// Changes kept for slow subscribers. A burst larger than this (a bulk import) drops the
/// subscribers that have not caught up; 1024 snapshots of a few hundred bytes each is well
/// under a megabyte per gateway, whatever the number of subscribers.
pub const LIVE_CHANNEL_CAPACITY: usize = 1024;

/// Most records read per fetch.
const FETCH_MAX_RECORDS: usize = 500;

/// How long one fetch waits for new records before the loop checks for shutdown again.
const FETCH_MAX_WAIT: Duration = Duration::from_secs(1);

/// First and largest delay between retries after a log error.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One task change as seen by subscribers.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveChange {
    pub kind: TaskChangeKind,
    pub task_id: Uuid,
    pub owner_id: String,
    pub version: i32,
    /// The state after the change; for `DELETED`, the state just before deletion.
    pub task: Arc<TaskSnapshot>,
}

impl LiveChange {
    /// The change a `task-events` record describes, or `None` for a record that is not a
    /// task event (logged and skipped: live delivery never halts on a bad record).
    pub fn from_record(record: &LogRecord) -> Option<LiveChange> {
        let value = record.value.as_deref()?;
        let decoded = serde_json::from_slice::<CloudEvent>(value)
            .and_then(|event| serde_json::from_value::<TaskEventData>(event.data));
        match decoded {
            Ok(data) => Some(LiveChange::from_event(data)),
            Err(e) => {
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "skipping a record that is not a task event");
                None
            }
        }
    }

    /// The change a decoded `task-events` payload describes.
    pub fn from_event(data: TaskEventData) -> LiveChange {
        LiveChange {
            kind: data.kind,
            task_id: data.task_id,
            owner_id: data.task.owner_id.clone(),
            version: data.task.version,
            task: Arc::new(data.task),
        }
    }
}

/// The fan-out point: the consumer publishes, every subscription holds a receiver. Cheap to
/// clone; clones share the channel.
#[derive(Clone, Debug)]
pub struct LiveHub {
    tx: broadcast::Sender<LiveChange>,
    /// True once the consumer has its start position on every partition: from then on every
    /// committed change reaches the hub.
    consuming: Arc<watch::Sender<bool>>,
}

impl Default for LiveHub {
    fn default() -> LiveHub {
        LiveHub::with_capacity(LIVE_CHANNEL_CAPACITY)
    }
}

impl LiveHub {
    pub fn new() -> LiveHub {
        LiveHub::default()
    }

    /// A hub keeping `capacity` changes for slow subscribers (tests use a small one).
    pub fn with_capacity(capacity: usize) -> LiveHub {
        LiveHub {
            tx: broadcast::channel(capacity.max(1)).0,
            consuming: Arc::new(watch::channel(false).0),
        }
    }

    /// Sends `change` to every current subscriber; returns how many there are.
    pub fn publish(&self, change: LiveChange) -> usize {
        self.tx.send(change).unwrap_or(0)
    }

    /// A receiver of every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveChange> {
        self.tx.subscribe()
    }

    /// How many subscriptions are open.
    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Completes once the consumer reads every partition, so changes committed afterwards are
    /// delivered (changes committed before are history, never replayed).
    pub async fn wait_until_consuming(&self) {
        let mut consuming = self.consuming.subscribe();
        let _ = consuming.wait_for(|c| *c).await;
    }
}

/// Tails `task-events` on every partition of `log` into `hub` until `shutdown` turns true.
pub async fn run_consumer<L: LogReader + 'static>(
    log: Arc<L>,
    hub: LiveHub,
    mut shutdown: watch::Receiver<bool>,
) {
    let topic = stream::topics::TASK_EVENTS;
    let mut backoff = INITIAL_BACKOFF;
    let partitions = loop {
        match log.partition_count(topic).await {
            Ok(n) => break n,
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "live updates: cannot read the partitions of {topic}; retrying");
                if !pause(&mut shutdown, &mut backoff).await {
                    return;
                }
            }
        }
    };
    let mut starts = Vec::new();
    for partition in 0..partitions {
        backoff = INITIAL_BACKOFF;
        loop {
            match end_offset(log.as_ref(), topic, partition).await {
                Ok(end) => break starts.push((partition, end)),
                Err(e) => {
                    tracing::warn!(partition, error = %e, ?backoff, "live updates: cannot find the end of {topic}; retrying");
                    if !pause(&mut shutdown, &mut backoff).await {
                        return;
                    }
                }
            }
        }
    }
    let tasks: Vec<_> = starts
        .into_iter()
        .map(|(partition, start)| {
            tokio::spawn(tail_partition(
                Arc::clone(&log),
                partition,
                start,
                hub.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    hub.consuming.send_replace(true);
    tracing::info!(topic, partitions, "live updates consumer started");
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a live updates partition reader panicked");
        }
    }
    tracing::info!("live updates consumer stopped");
}

async fn tail_partition<L: LogReader>(
    log: Arc<L>,
    partition: i32,
    start: i64,
    hub: LiveHub,
    mut shutdown: watch::Receiver<bool>,
) {
    let topic = stream::topics::TASK_EVENTS;
    let mut offset = start;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let fetched = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            fetched = log.fetch(topic, partition, offset, FETCH_MAX_RECORDS, FETCH_MAX_WAIT) => fetched,
        };
        match fetched {
            Ok(fetched) => {
                backoff = INITIAL_BACKOFF;
                for record in &fetched.records {
                    offset = record.offset + 1;
                    if let Some(change) = LiveChange::from_record(record) {
                        hub.publish(change);
                    }
                }
            }
            Err(LogError::OffsetOutOfRange { high_watermark, .. }) if high_watermark >= 0 => {
                tracing::warn!(
                    partition,
                    offset,
                    high_watermark,
                    "live updates: position left the log; continuing from its end"
                );
                offset = high_watermark;
            }
            Err(e) => {
                tracing::warn!(partition, offset, error = %e, ?backoff, "live updates: fetch failed; retrying from the same position");
                if !pause(&mut shutdown, &mut backoff).await {
                    return;
                }
            }
        }
    }
}

/// The partition's end: where a live-only reader starts.
async fn end_offset<L: LogReader>(log: &L, topic: &str, partition: i32) -> Result<i64, LogError> {
    match log.fetch(topic, partition, 0, 1, Duration::ZERO).await {
        Ok(fetched) => Ok(fetched.high_watermark),
        Err(LogError::OffsetOutOfRange { high_watermark, .. }) if high_watermark >= 0 => {
            Ok(high_watermark)
        }
        Err(e) => Err(e),
    }
}

/// Sleeps `backoff` (then doubles it, capped); `false` when shutdown came first.
async fn pause(shutdown: &mut watch::Receiver<bool>, backoff: &mut Duration) -> bool {
    let delay = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        _ = shutdown.wait_for(|stop| *stop) => false,
        () = tokio::time::sleep(delay) => true,
    }
}
