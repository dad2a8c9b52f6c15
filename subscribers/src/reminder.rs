//! The reminder subscriber: keeps a task's `reminders` rows in step with its events.
//!
//! It consumes `task-events` and, for every completion, reopening and deletion
//! ([`EVENT_TYPES`]), reconciles the task's reminders with
//! the task row as it is now (read under a row lock on PostgreSQL; the consumer's transaction is
//! `BEGIN IMMEDIATE` on SQLite):
//! - a completed task has no `PENDING` reminder: they become `CANCELLED`;
//! - an open task has no `CANCELLED` reminder: they become `PENDING` again (a reopened task, or a
//!   reminder the scheduler met after the completion but before this handler);
//! - a `PENDING` reminder fires at `at` (absolute) or `due_at - minutes_before_due` (relative,
//!   `NULL` while the task has no due date);
//! - a deleted task's reminders are gone by cascade; any row still there is cancelled.
//!
//! `FIRED` and `MISSED` are final and never touched. Firing is not done here but by
//! [`crate::reminder_scheduler::ReminderScheduler`], which only needs the database.
//!
//! Decisions:
//! - Reconciling with the current row, not the event's snapshot, makes the handler idempotent
//!   and order-proof: a redelivered event changes nothing, and an event older than the task
//!   row's version (`aggregateversion` < `tasks.version`) is ignored outright, because the
//!   event of the newer version is still to come and will reconcile.
//! - A re-armed reminder whose fire time passed while the task was completed is `PENDING` with
//!   a past `fire_at`: the scheduler fires it at once, or marks it `MISSED` past its lateness.
//!   The user reopened the task, so a late "this was due" is more useful than silence.
//! - An unparseable record is a permanent error (parked as a dead letter); database errors are
//!   transient.

use anyhow::anyhow;
use chrono::{DateTime, Duration, Utc};
use entities::reminder_offset::ReminderStatus;
use entities::{reminder, task};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use stream::consumer::{Handler, HandlerError, HandlerOutcome};
use stream::log::LogRecord;
use stream::task_events::{TaskChangeKind, TaskEventData};
use uuid::Uuid;

/// The consumer name: the key of this subscriber's offsets, processed events and dead letters.
pub const CONSUMER: &str = "reminder";

/// The CloudEvent types the handler acts on (the runtime skips the others without a write):
/// the changes of state the gateway's own transaction does not bring reminders in line with.
/// Creating or updating a task writes its reminders (and moves relative fire times with the due
/// date) in the same transaction, so CREATED and UPDATED have nothing left to reconcile;
/// completing, reopening and deleting do.
pub const EVENT_TYPES: &[&str] = &[
    TaskChangeKind::Completed.event_type(),
    TaskChangeKind::Reopened.event_type(),
    TaskChangeKind::Deleted.event_type(),
];

/// Keeps reminders in step with task events. See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReminderHandler;

impl ReminderHandler {
    pub fn new() -> ReminderHandler {
        ReminderHandler
    }
}

impl Handler for ReminderHandler {
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
        // Other event types may share the topic one day; they are not ours to reject.
        if TaskChangeKind::from_event_type(&event.event_type).is_none() {
            return Ok(HandlerOutcome::Ignored);
        }
        let data: TaskEventData = serde_json::from_value(event.data.clone()).map_err(|e| {
            HandlerError::permanent(anyhow!("event {} has invalid task data: {e}", event.id))
        })?;
        reconcile(txn, data.task_id, event.aggregateversion).await
    }
}

/// Brings the reminders of `task_id` in line with the task row, unless the event (of task
/// version `event_version`) is older than the row.
async fn reconcile(
    txn: &DatabaseTransaction,
    task_id: Uuid,
    event_version: Option<i64>,
) -> Result<HandlerOutcome, HandlerError> {
    let task = task::Entity::find_by_id(task_id)
        .lock_exclusive()
        .one(txn)
        .await?;
    let Some(task) = task else {
        let cancelled = set_status(
            txn,
            task_id,
            ReminderStatus::Pending,
            ReminderStatus::Cancelled,
        )
        .await?;
        return Ok(outcome(cancelled > 0));
    };
    if event_version.is_some_and(|v| v < i64::from(task.version)) {
        tracing::debug!(task = %task_id, ?event_version, version = task.version, "stale event");
        return Ok(HandlerOutcome::Ignored);
    }
    if task.completed {
        let cancelled = set_status(
            txn,
            task_id,
            ReminderStatus::Pending,
            ReminderStatus::Cancelled,
        )
        .await?;
        if cancelled > 0 {
            tracing::info!(task = %task_id, cancelled, "cancelled the reminders of a completed task");
        }
        return Ok(outcome(cancelled > 0));
    }
    let rearmed = set_status(
        txn,
        task_id,
        ReminderStatus::Cancelled,
        ReminderStatus::Pending,
    )
    .await?;
    if rearmed > 0 {
        tracing::info!(task = %task_id, rearmed, "re-armed the reminders of a reopened task");
    }
    let moved = recompute_fire_times(txn, &task).await?;
    Ok(outcome(rearmed > 0 || moved > 0))
}

fn outcome(changed: bool) -> HandlerOutcome {
    if changed {
        HandlerOutcome::Applied
    } else {
        HandlerOutcome::Ignored
    }
}

/// Moves the reminders of `task_id` from status `from` to `to`; returns how many moved.
async fn set_status<C: ConnectionTrait>(
    txn: &C,
    task_id: Uuid,
    from: ReminderStatus,
    to: ReminderStatus,
) -> Result<u64, HandlerError> {
    let result = reminder::Entity::update_many()
        .col_expr(reminder::Column::Status, Expr::value(to))
        .filter(reminder::Column::TaskId.eq(task_id))
        .filter(reminder::Column::Status.eq(from))
        .exec(txn)
        .await?;
    Ok(result.rows_affected)
}

/// Sets `fire_at` of the task's `PENDING` reminders from their spec and its due date, writing
/// only the rows whose time changes; returns how many changed.
async fn recompute_fire_times<C: ConnectionTrait>(
    txn: &C,
    task: &task::Model,
) -> Result<u64, HandlerError> {
    let pending = reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(task.id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending))
        .all(txn)
        .await?;
    let mut changed = 0;
    for row in pending {
        let fire_at = fire_time(&row, task.due_at);
        if row.fire_at == fire_at {
            continue;
        }
        let mut active: reminder::ActiveModel = row.into();
        active.fire_at = Set(fire_at);
        active.update(txn).await?;
        changed += 1;
    }
    Ok(changed)
}

/// When a reminder fires for a task due at `due_at`: its absolute time, else `due_at` minus its
/// lead time; `None` for a relative reminder on a task without a due date.
fn fire_time(row: &reminder::Model, due_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (row.at, row.minutes_before_due) {
        (Some(at), _) => Some(at),
        (None, Some(minutes)) => {
            due_at.map(|d| entities::to_db_precision(d - Duration::minutes(i64::from(minutes))))
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(minutes_before_due: Option<i32>, at: Option<DateTime<Utc>>) -> reminder::Model {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        reminder::Model {
            id: Uuid::nil(),
            task_id: Uuid::nil(),
            owner_id: "rita".to_owned(),
            minutes_before_due,
            at,
            fire_at: None,
            status: ReminderStatus::Pending,
            created_at: t,
            fired_at: None,
        }
    }

    #[test]
    fn relative_reminders_follow_the_due_date_and_absolute_ones_do_not() {
        let due = Utc.with_ymd_and_hms(2030, 1, 7, 9, 0, 0).unwrap();
        let evening = Utc.with_ymd_and_hms(2030, 1, 6, 18, 0, 0).unwrap();
        assert_eq!(
            fire_time(&row(Some(30), None), Some(due)),
            Some(Utc.with_ymd_and_hms(2030, 1, 7, 8, 30, 0).unwrap())
        );
        assert_eq!(fire_time(&row(Some(30), None), None), None);
        assert_eq!(
            fire_time(&row(None, Some(evening)), Some(due)),
            Some(evening)
        );
        assert_eq!(fire_time(&row(None, Some(evening)), None), Some(evening));
    }
}
