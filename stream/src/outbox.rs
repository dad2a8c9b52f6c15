//! The transactional outbox: events are rows written by the same transaction as the change they
//! describe, so a change and its events commit together or not at all.
//!
//! This module owns the outbox's shape on both sides, so the writers, the relay, the embedded
//! log and the consumer runtime agree without importing each other:
//! - writing: [`begin_write`] (the write transaction every writer opens), [`append`] (one
//!   event), [`append_change`] (the two events of one task change, for the gateway and the
//!   recurrence subscriber alike), and the commit wake-up ([`notify_committed`]);
//! - the record headers: their names ([`header`]) and an event's ([`event_headers`]);
//! - rows and records: [`to_record`] (a row as the relay publishes it and the embedded log reads
//!   it) and [`row`] (a record as a row: the embedded log's produce, dead-letter copies).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use entities::outbox;
use entities::task_version::{self, VersionKind};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use uuid::Uuid;

use crate::envelope::CloudEvent;
use crate::log::OutgoingRecord;
use crate::task_events::{TaskChangeKind, TaskSnapshot, task_change_events};
use crate::topics;

/// Record header names: the CloudEvents Kafka binding's `ce_*` copies of the attributes, and
/// the `dlq_*` headers a dead-letter copy adds.
pub mod header {
    pub const SPECVERSION: &str = "ce_specversion";
    pub const ID: &str = "ce_id";
    pub const SOURCE: &str = "ce_source";
    pub const TYPE: &str = "ce_type";
    pub const SUBJECT: &str = "ce_subject";
    pub const TIME: &str = "ce_time";
    pub const AGGREGATE_VERSION: &str = "ce_aggregateversion";
    pub const CORRELATION_ID: &str = "ce_correlationid";
    pub const CAUSATION_ID: &str = "ce_causationid";
    /// The W3C trace context of the span that wrote (or, on a broker, published) the event.
    pub const TRACEPARENT: &str = "ce_traceparent";
    /// `application/cloudevents+json`: the value is a structured-mode CloudEvent.
    pub const CONTENT_TYPE: &str = "content-type";

    /// The topic a dead-lettered record was consumed from.
    pub const DLQ_ORIGINAL_TOPIC: &str = "dlq_original_topic";
    pub const DLQ_ORIGINAL_PARTITION: &str = "dlq_original_partition";
    pub const DLQ_ORIGINAL_OFFSET: &str = "dlq_original_offset";
    /// The consumer that gave up on it.
    pub const DLQ_CONSUMER: &str = "dlq_consumer";
    /// Its last error (at most 1 KiB).
    pub const DLQ_ERROR: &str = "dlq_error";
    pub const DLQ_ATTEMPTS: &str = "dlq_attempts";
}

/// The record headers of `event`: every attribute but `data`, as strings, so a consumer can
/// route or filter without parsing the body.
pub fn event_headers(event: &CloudEvent) -> BTreeMap<String, String> {
    let mut h = BTreeMap::new();
    h.insert(header::SPECVERSION.to_owned(), event.specversion.clone());
    h.insert(header::ID.to_owned(), event.id.to_string());
    h.insert(header::SOURCE.to_owned(), event.source.clone());
    h.insert(header::TYPE.to_owned(), event.event_type.clone());
    h.insert(header::SUBJECT.to_owned(), event.subject.clone());
    h.insert(
        header::TIME.to_owned(),
        event.time.to_rfc3339_opts(SecondsFormat::Micros, true),
    );
    h.insert(
        header::CONTENT_TYPE.to_owned(),
        "application/cloudevents+json".to_owned(),
    );
    let optional = [
        (
            header::AGGREGATE_VERSION,
            event.aggregateversion.map(|v| v.to_string()),
        ),
        (header::CORRELATION_ID, event.correlationid.clone()),
        (header::CAUSATION_ID, event.causationid.clone()),
        (header::TRACEPARENT, event.traceparent.clone()),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            h.insert(name.to_owned(), v);
        }
    }
    h
}

/// The write transaction every writer opens (and the SQLite writers' queue): see
/// [`crate::write_txn`].
pub use crate::write_txn::{WriteTxn, begin_write};

/// Appends `event` for `topic` with record key `key` to the outbox, on `conn` (pass the open
/// transaction of the change). `now` is the row's `created_at`.
///
/// An event without a `traceparent` gets the current span's (when spans are exported), in
/// its body and its `ce_traceparent` header, so the trace continues in whoever consumes it.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    topic: &str,
    key: &str,
    event: &CloudEvent,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    outbox::Entity::insert(traced_row(topic, key, event, now)?)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The outbox row of `event`, given the current span's trace context when it has none.
fn traced_row(
    topic: &str,
    key: &str,
    event: &CloudEvent,
    now: DateTime<Utc>,
) -> Result<outbox::ActiveModel, DbErr> {
    let traced;
    let event = match telemetry::current_traceparent() {
        Some(traceparent) if event.traceparent.is_none() => {
            traced = CloudEvent {
                traceparent: Some(traceparent),
                ..event.clone()
            };
            &traced
        }
        _ => event,
    };
    let payload = serde_json::to_string(event)
        .map_err(|e| DbErr::Custom(format!("BUG: event does not serialise: {e}")))?;
    row(event.id, topic, key, payload, &event_headers(event), now)
}

/// Appends the events of one task change, on `conn` (the change's open transaction): the
/// `kind` event with the full `snapshot` on `task-events` and the latest state on
/// `task-updates`, both keyed by the task id, built by [`task_change_events`], in one
/// two-row `INSERT`; and the task's version in `task_versions` (its history), so the history
/// is exactly as durable as the change. The history event carries `correlation_id` and, when
/// the change was caused by another event (the recurrence subscriber's successor),
/// `causation_id`.
pub async fn append_change<C: ConnectionTrait>(
    conn: &C,
    kind: TaskChangeKind,
    snapshot: &TaskSnapshot,
    now: DateTime<Utc>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
) -> Result<(), DbErr> {
    append_change_as(
        conn,
        kind,
        version_kind(kind),
        snapshot,
        now,
        correlation_id,
        causation_id,
    )
    .await
}

/// [`append_change`], recording the version as `version` rather than as `kind` says: a
/// restored task goes out as `Created` (for every consumer it is a task that appears) and is
/// recorded as `RESTORED`.
pub async fn append_change_as<C: ConnectionTrait>(
    conn: &C,
    kind: TaskChangeKind,
    version: VersionKind,
    snapshot: &TaskSnapshot,
    now: DateTime<Utc>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
) -> Result<(), DbErr> {
    let (mut history, state) = task_change_events(kind, snapshot, now, correlation_id)
        .map_err(|e| DbErr::Custom(format!("BUG: the task snapshot does not serialise: {e}")))?;
    history.causationid = causation_id;
    let key = snapshot.id.to_string();
    outbox::Entity::insert_many([
        traced_row(topics::TASK_EVENTS, &key, &history, now)?,
        traced_row(topics::TASK_UPDATES, &key, &state, now)?,
    ])
    .exec_without_returning(conn)
    .await?;
    let caused_by = match (version, snapshot.generated_from_task_id) {
        (VersionKind::Created, Some(from)) => Some(format!("recurrence:{from}")),
        _ => None,
    };
    task_version::Entity::insert(task_version::ActiveModel {
        task_id: Set(snapshot.id),
        version: Set(snapshot.version),
        owner_id: Set(snapshot.owner_id.clone()),
        kind: Set(version),
        snapshot: Set(serde_json::to_string(snapshot).map_err(|e| {
            DbErr::Custom(format!("BUG: the task snapshot does not serialise: {e}"))
        })?),
        event_id: Set(history.id),
        caused_by: Set(caused_by),
        changed_at: Set(entities::to_db_precision(now)),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The version kind a change of `kind` records.
pub fn version_kind(kind: TaskChangeKind) -> VersionKind {
    match kind {
        TaskChangeKind::Created => VersionKind::Created,
        TaskChangeKind::Updated => VersionKind::Updated,
        TaskChangeKind::Completed => VersionKind::Completed,
        TaskChangeKind::Reopened => VersionKind::Reopened,
        TaskChangeKind::Deleted => VersionKind::Deleted,
    }
}

/// A pending outbox row (not yet published), created at `created_at` (to the microsecond).
pub fn row(
    event_id: Uuid,
    topic: &str,
    key: &str,
    payload: String,
    headers: &BTreeMap<String, String>,
    created_at: DateTime<Utc>,
) -> Result<outbox::ActiveModel, DbErr> {
    let headers = serde_json::to_string(headers)
        .map_err(|e| DbErr::Custom(format!("BUG: headers do not serialise: {e}")))?;
    Ok(outbox::ActiveModel {
        event_id: Set(event_id),
        topic: Set(topic.to_owned()),
        key: Set(key.to_owned()),
        payload: Set(payload),
        headers: Set(headers),
        created_at: Set(entities::to_db_precision(created_at)),
        published_at: Set(None),
        partition: Set(None),
        offset: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    })
}

/// Turns an outbox row into a log record. A `task-updates` deletion (CloudEvent data `null`)
/// becomes a Kafka tombstone (no value), so compaction can drop the task; its `ce_*` headers
/// still say what happened. Corrupt stored headers are an error, never an empty set.
pub fn to_record(row: &outbox::Record) -> Result<OutgoingRecord, outbox::CorruptHeaders> {
    let headers = outbox::decode_headers(&row.headers)?;
    let tombstone = row.topic == topics::TASK_UPDATES && has_null_data(&row.payload);
    Ok(OutgoingRecord {
        key: row.key.clone(),
        value: (!tombstone).then(|| row.payload.clone().into_bytes()),
        headers,
        timestamp: row.created_at,
    })
}

/// Whether `payload` is a JSON object whose `data` is `null` (present: a missing `data` is
/// not a deletion). Skims the payload without building it: this runs for every `task-updates`
/// row published or read.
fn has_null_data(payload: &str) -> bool {
    use serde::de::IgnoredAny;
    /// `None`: no `data`; `Some(None)`: `data` is null; `Some(Some(_))`: anything else.
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default, deserialize_with = "present")]
        data: Option<Option<IgnoredAny>>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<IgnoredAny>>, D::Error> {
        serde::Deserialize::deserialize(d).map(Some)
    }
    serde_json::from_str::<Envelope>(payload).is_ok_and(|e| matches!(e.data, Some(None)))
}

static COMMITTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How many commit wake-ups this process has seen ([`notify_committed`], [`wake_readers`]).
/// Raised *before* the waiters are woken, so a reader that registered for the wake-up and then
/// finds the count unchanged since an earlier read of the outbox knows that no commit
/// announced since then can be missing from that read: anything committed later wakes it.
/// The embedded log uses it to share one read among the readers woken by one commit.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This process's commits not yet announced to other processes ([`crate::wakeup::run`]): one
/// stored permit, so a commit during an announcement is announced next time.
pub(crate) static LOCAL_COMMITS: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Wakes every task waiting in [`wait_for_commit`]. Services call it right after committing a
/// transaction that appended to the outbox, so the relay (or an embedded consumer) publishes
/// at once instead of at its next poll. It is process-wide because the outbox is: whichever
/// request wrote, every reader in the process cares. A wake-up that nobody waits for is lost,
/// which is fine: readers also poll. On PostgreSQL, [`crate::wakeup::run`] also announces it
/// to the other processes.
pub fn notify_committed() {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    COMMITTED.notify_waiters();
    LOCAL_COMMITS.notify_one();
}

/// Wakes this process's readers for a commit made elsewhere (not announced again).
pub(crate) fn wake_readers() {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    COMMITTED.notify_waiters();
}

/// The current commit wake-up count (see `GENERATION`). Read it only after registering for
/// the next wake-up ([`committed`], [`wait_for_commit`] polled once).
pub(crate) fn commit_generation() -> u64 {
    GENERATION.load(std::sync::atomic::Ordering::SeqCst)
}

/// A future that completes at the next [`notify_committed`]. Create it *before* reading, so a
/// commit during the read is not missed.
pub fn committed() -> tokio::sync::futures::Notified<'static> {
    COMMITTED.notified()
}

/// Waits until [`notify_committed`] is called or `timeout` passes (the slow poll).
pub async fn wait_for_commit(timeout: std::time::Duration) {
    let _ = tokio::time::timeout(timeout, COMMITTED.notified()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn headers_copy_every_attribute_but_data() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let ev = CloudEvent::new("x", "s", t, serde_json::Value::Null)
            .with_version(2)
            .with_correlation(Some("req-1".into()));
        let h = event_headers(&ev);
        assert_eq!(h["ce_id"], ev.id.to_string());
        assert_eq!(h["ce_type"], "x");
        assert_eq!(h["ce_aggregateversion"], "2");
        assert_eq!(h["ce_correlationid"], "req-1");
        assert_eq!(h["ce_time"], "2026-11-27T09:00:00.000000Z");
        assert!(!h.contains_key("ce_traceparent"));
    }

    #[test]
    fn only_a_present_null_data_makes_a_tombstone() {
        assert!(has_null_data(r#"{"id":"1","data":null,"type":"t"}"#));
        for not_null in [
            r#"{"id":"1","type":"t"}"#,
            r#"{"data":{"task":null}}"#,
            r#"{"data":false}"#,
            r#"{"data":[null]}"#,
            r#"{"data":"null"}"#,
            "not json",
            "[]",
            "null",
        ] {
            assert!(!has_null_data(not_null), "{not_null}");
        }
    }
}
