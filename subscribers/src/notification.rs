//! The notification subscriber: turns fired reminders into in-app notifications.
//!
//! It consumes `reminders` and, for each `taskstream.reminder.due` or `.missed` event, inserts
//! one `notifications` row for the task's owner (kind `REMINDER_DUE` or `REMINDER_MISSED`) and
//! appends a `taskstream.notification.created` event on `notifications` (keyed by the owner),
//! in the consumer's transaction.
//!
//! Decisions:
//! - One notification per source event: the row carries the event id under a unique
//!   constraint (`uq_notifications_event`) and is inserted with `ON CONFLICT DO NOTHING`, so a
//!   redelivery (even one the runtime's dedupe did not see) changes nothing and is `Ignored`.
//! - Other event types on the topic are ignored; an unparseable record is a permanent error
//!   (parked as a dead letter); database errors are transient.
//! - Webhook delivery is not done here.

use anyhow::anyhow;
use chrono::{DateTime, SecondsFormat, Utc};
use entities::notification;
use sea_orm::{DatabaseTransaction, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use stream::CloudEvent;
use stream::consumer::{Handler, HandlerError, HandlerOutcome};
use stream::log::LogRecord;
use stream::topics;
use uuid::Uuid;

use crate::reminder_scheduler::{REMINDER_DUE_TYPE, REMINDER_MISSED_TYPE, ReminderDueData};

/// The consumer name: the key of this subscriber's offsets, processed events and dead letters.
pub const CONSUMER: &str = "notification";

/// The CloudEvents `type` of a new notification, on `notifications`.
pub const NOTIFICATION_CREATED_TYPE: &str = "taskstream.notification.created";

/// The kind of a notification of a reminder fired on time.
pub const KIND_REMINDER_DUE: &str = "REMINDER_DUE";
/// The kind of a notification of a reminder found later than the lateness.
pub const KIND_REMINDER_MISSED: &str = "REMINDER_MISSED";

/// The data of a `taskstream.notification.created` event: the notification as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    pub id: Uuid,
    pub owner_id: String,
    pub task_id: Option<Uuid>,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub event_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<&notification::Model> for NotificationData {
    fn from(n: &notification::Model) -> NotificationData {
        NotificationData {
            id: n.id,
            owner_id: n.owner_id.clone(),
            task_id: n.task_id,
            kind: n.kind.clone(),
            title: n.title.clone(),
            body: n.body.clone(),
            event_id: n.event_id,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// Creates notifications from reminder events. See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotificationHandler;

impl NotificationHandler {
    pub fn new() -> NotificationHandler {
        NotificationHandler
    }
}

impl Handler for NotificationHandler {
    fn name(&self) -> &str {
        CONSUMER
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let event = stream::consumer::decode_event(record)?;
        let missed = match event.event_type.as_str() {
            REMINDER_DUE_TYPE => false,
            REMINDER_MISSED_TYPE => true,
            _ => return Ok(HandlerOutcome::Ignored),
        };
        let data: ReminderDueData = serde_json::from_value(event.data.clone()).map_err(|e| {
            HandlerError::permanent(anyhow!("event {} has invalid reminder data: {e}", event.id))
        })?;
        notify(txn, &event, &data, missed).await
    }
}

/// The body text of a reminder notification.
fn body(data: &ReminderDueData, missed: bool) -> String {
    let due = data.due_at.unwrap_or(data.fire_at);
    let due = due.to_rfc3339_opts(SecondsFormat::Secs, true);
    if missed {
        format!("Missed: was due at {due}")
    } else {
        format!("Due at {due}")
    }
}

/// Inserts the notification of `event` unless one exists, with its outbox event.
async fn notify(
    txn: &DatabaseTransaction,
    event: &CloudEvent,
    data: &ReminderDueData,
    missed: bool,
) -> Result<HandlerOutcome, HandlerError> {
    let row = notification::Model {
        id: Uuid::now_v7(),
        owner_id: data.owner_id.clone(),
        task_id: Some(data.task_id),
        kind: if missed {
            KIND_REMINDER_MISSED
        } else {
            KIND_REMINDER_DUE
        }
        .to_owned(),
        title: data.task_title.clone(),
        body: body(data, missed),
        event_id: event.id,
        created_at: entities::to_db_precision(data.fired_at),
        read_at: None,
    };
    let active = notification::ActiveModel {
        id: Set(row.id),
        owner_id: Set(row.owner_id.clone()),
        task_id: Set(row.task_id),
        kind: Set(row.kind.clone()),
        title: Set(row.title.clone()),
        body: Set(row.body.clone()),
        event_id: Set(row.event_id),
        created_at: Set(row.created_at),
        read_at: Set(None),
    };
    let inserted = notification::Entity::insert(active)
        .on_conflict_do_nothing_on([notification::Column::EventId])
        .exec_without_returning(txn)
        .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        tracing::debug!(event = %event.id, "notification already exists");
        return Ok(HandlerOutcome::Ignored);
    }
    let payload = serde_json::to_value(NotificationData::from(&row)).map_err(|e| {
        HandlerError::permanent(anyhow!("BUG: notification does not serialise: {e}"))
    })?;
    let mut created = CloudEvent::new(
        NOTIFICATION_CREATED_TYPE,
        row.id.to_string(),
        row.created_at,
        payload,
    )
    .with_correlation(event.correlationid.clone());
    created.causationid = Some(event.id.to_string());
    stream::outbox::append(
        txn,
        topics::NOTIFICATIONS,
        &row.owner_id,
        &created,
        row.created_at,
    )
    .await?;
    tracing::info!(notification = %row.id, owner = %row.owner_id, kind = %row.kind, "notification created");
    Ok(HandlerOutcome::Applied)
}
