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
use chrono::SecondsFormat;
use entities::notification::{self, NotificationKind};
use sea_orm::{DatabaseTransaction, EntityTrait, Set};
use stream::CloudEvent;
use stream::consumer::{Handler, HandlerError, HandlerOutcome};
use stream::log::LogRecord;
use stream::notification_events::{NOTIFICATION_CREATED_TYPE, NotificationData};
use stream::reminder_events::{REMINDER_DUE_TYPE, REMINDER_MISSED_TYPE, ReminderDueData};
use stream::topics;
use uuid::Uuid;

/// The consumer name: the key of this subscriber's offsets, processed events and dead letters.
pub const CONSUMER: &str = "notification";

/// The CloudEvent types the handler acts on: fired reminders (the runtime skips the others).
pub const EVENT_TYPES: &[&str] = &[REMINDER_DUE_TYPE, REMINDER_MISSED_TYPE];

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

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(EVENT_TYPES)
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
            NotificationKind::ReminderMissed
        } else {
            NotificationKind::ReminderDue
        },
        title: data.task_title.clone(),
        body: body(data, missed),
        event_id: event.id,
        created_at: entities::to_db_precision(data.fired_at),
        read_at: None,
        due_at: data.due_at.map(entities::to_db_precision),
        remind_at: Some(entities::to_db_precision(data.fire_at)),
    };
    let active = notification::ActiveModel {
        id: Set(row.id),
        owner_id: Set(row.owner_id.clone()),
        task_id: Set(row.task_id),
        kind: Set(row.kind),
        title: Set(row.title.clone()),
        body: Set(row.body.clone()),
        event_id: Set(row.event_id),
        created_at: Set(row.created_at),
        read_at: Set(None),
        due_at: Set(row.due_at),
        remind_at: Set(row.remind_at),
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
