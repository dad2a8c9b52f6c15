//! The transactional outbox writer: events are rows written by the same transaction as the
//! change they describe, so a change and its events commit together or not at all.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

use crate::envelope::CloudEvent;

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
    let headers = serde_json::to_string(&event.headers())
        .map_err(|e| DbErr::Custom(format!("BUG: headers do not serialise: {e}")))?;
    entities::outbox::ActiveModel {
        event_id: Set(event.id),
        topic: Set(topic.to_owned()),
        key: Set(key.to_owned()),
        payload: Set(payload),
        headers: Set(headers),
        created_at: Set(entities::to_db_precision(now)),
        published_at: Set(None),
        partition: Set(None),
        offset: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

static COMMITTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Wakes every task waiting in [`wait_for_commit`]. Services call it right after committing a
/// transaction that appended to the outbox, so the relay (or an embedded consumer) publishes
/// at once instead of at its next poll. It is process-wide because the outbox is: whichever
/// request wrote, every reader in the process cares. A wake-up that nobody waits for is lost,
/// which is fine: readers also poll.
pub fn notify_committed() {
    COMMITTED.notify_waiters();
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
