//! Live updates: one log consumer per gateway process tails `task-events` and `notifications`
//! and fans every task change out to the open `taskChanged` subscriptions, and every new
//! notification to the open `notificationReceived` subscriptions, through two bounded
//! broadcast channels.
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

use entities::notification;
use stream::CloudEvent;
use stream::lifecycle::{Backoff, CancellationToken};
use stream::log::{LogError, LogReader, LogRecord};
use stream::notification_events::{NOTIFICATION_CREATED_TYPE, NotificationData};
use stream::task_events::{TaskChangeKind, TaskEventData, TaskSnapshot};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// Changes kept for slow subscribers. A burst larger than this (a bulk import) drops the
/// subscribers that have not caught up; 1024 snapshots of a few hundred bytes each is well
/// under a megabyte per gateway, whatever the number of subscribers.
pub const LIVE_CHANNEL_CAPACITY: usize = 1024;

/// Most records read per fetch.
const FETCH_MAX_RECORDS: usize = 500;

/// First and largest delay between retries after a log error.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn backoff() -> Backoff {
    Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF)
}

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

/// One new notification as seen by subscribers.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveNotification {
    pub owner_id: String,
    pub notification: Arc<notification::Model>,
}

impl LiveNotification {
    /// The notification a `notifications` record announces, or `None` for any other record
    /// (logged when it is not even a CloudEvent: live delivery never halts on a bad record).
    pub fn from_record(record: &LogRecord) -> Option<LiveNotification> {
        let value = record.value.as_deref()?;
        let event = match serde_json::from_slice::<CloudEvent>(value) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "skipping a record that is not a CloudEvent");
                return None;
            }
        };
        if event.event_type != NOTIFICATION_CREATED_TYPE {
            return None;
        }
        match serde_json::from_value::<NotificationData>(event.data) {
            Ok(data) => Some(LiveNotification::from_data(data)),
            Err(e) => {
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "skipping a notification event with invalid data");
                None
            }
        }
    }

    /// The notification a decoded `taskstream.notification.created` payload describes.
    pub fn from_data(data: NotificationData) -> LiveNotification {
        LiveNotification {
            owner_id: data.owner_id.clone(),
            notification: Arc::new(notification::Model {
                id: data.id,
                owner_id: data.owner_id,
                task_id: data.task_id,
                kind: data.kind,
                title: data.title,
                body: data.body,
                event_id: data.event_id,
                created_at: data.created_at,
                read_at: data.read_at,
                due_at: data.due_at,
                remind_at: data.remind_at,
            }),
        }
    }
}

/// The fan-out point: the consumer publishes, every subscription holds a receiver. Cheap to
/// clone; clones share the channels.
#[derive(Clone, Debug)]
pub struct LiveHub {
    tx: broadcast::Sender<LiveChange>,
    notifications: broadcast::Sender<LiveNotification>,
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
            notifications: broadcast::channel(capacity.max(1)).0,
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

    /// Sends `notification` to every current `notificationReceived` subscriber; returns how
    /// many there are.
    pub fn publish_notification(&self, notification: LiveNotification) -> usize {
        self.notifications.send(notification).unwrap_or(0)
    }

    /// A receiver of every notification published from now on.
    pub fn subscribe_notifications(&self) -> broadcast::Receiver<LiveNotification> {
        self.notifications.subscribe()
    }

    /// How many subscriptions are open (both kinds).
    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count() + self.notifications.receiver_count()
    }

    /// Hands one record of a live topic to the matching channel.
    fn deliver(&self, record: &LogRecord) {
        if record.topic == stream::topics::NOTIFICATIONS {
            if let Some(n) = LiveNotification::from_record(record) {
                self.publish_notification(n);
            }
        } else if let Some(change) = LiveChange::from_record(record) {
            self.publish(change);
        }
    }

    /// Completes once the consumer reads every partition, so changes committed afterwards are
    /// delivered (changes committed before are history, never replayed).
    pub async fn wait_until_consuming(&self) {
        let mut consuming = self.consuming.subscribe();
        let _ = consuming.wait_for(|c| *c).await;
    }
}

/// The topics the live consumer tails.
pub const LIVE_TOPICS: [&str; 2] = [stream::topics::TASK_EVENTS, stream::topics::NOTIFICATIONS];

/// Tails [`LIVE_TOPICS`] on every partition of `log` into `hub` until `shutdown` is
/// cancelled.
pub async fn run_consumer<L: LogReader + 'static>(
    log: Arc<L>,
    hub: LiveHub,
    shutdown: CancellationToken,
) {
    let mut starts = Vec::new();
    for topic in LIVE_TOPICS {
        let mut backoff = backoff();
        let partitions = loop {
            match log.partition_count(topic).await {
                Ok(n) => break n,
                Err(e) => {
                    tracing::warn!(error = %e, backoff = ?backoff.next_delay(), "live updates: cannot read the partitions of {topic}; retrying");
                    if !backoff.pause(&shutdown).await {
                        return;
                    }
                }
            }
        };
        for partition in 0..partitions {
            backoff.reset();
            loop {
                match end_offset(log.as_ref(), topic, partition).await {
                    Ok(end) => break starts.push((topic, partition, end)),
                    Err(e) => {
                        tracing::warn!(partition, error = %e, backoff = ?backoff.next_delay(), "live updates: cannot find the end of {topic}; retrying");
                        if !backoff.pause(&shutdown).await {
                            return;
                        }
                    }
                }
            }
        }
    }
    let readers = starts.len();
    let tasks: Vec<_> = starts
        .into_iter()
        .map(|(topic, partition, start)| {
            tokio::spawn(tail_partition(
                Arc::clone(&log),
                topic,
                partition,
                start,
                hub.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    hub.consuming.send_replace(true);
    tracing::info!(topics = ?LIVE_TOPICS, readers, "live updates consumer started");
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a live updates partition reader panicked");
        }
    }
    tracing::info!("live updates consumer stopped");
}

async fn tail_partition<L: LogReader>(
    log: Arc<L>,
    topic: &'static str,
    partition: i32,
    start: i64,
    hub: LiveHub,
    shutdown: CancellationToken,
) {
    let mut offset = start;
    let mut backoff = backoff();
    loop {
        let fetched = tokio::select! {
            () = shutdown.cancelled() => return,
            fetched = log.fetch(topic, partition, offset, FETCH_MAX_RECORDS, log.idle_fetch_wait()) => fetched,
        };
        match fetched {
            Ok(fetched) => {
                backoff.reset();
                for record in &fetched.records {
                    offset = record.offset + 1;
                    hub.deliver(record);
                }
            }
            Err(LogError::OffsetOutOfRange { high_watermark, .. }) if high_watermark >= 0 => {
                tracing::warn!(
                    topic,
                    partition,
                    offset,
                    high_watermark,
                    "live updates: position left the log; continuing from its end"
                );
                offset = high_watermark;
            }
            Err(e) => {
                tracing::warn!(topic, partition, offset, error = %e, backoff = ?backoff.next_delay(), "live updates: fetch failed; retrying from the same position");
                if !backoff.pause(&shutdown).await {
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
