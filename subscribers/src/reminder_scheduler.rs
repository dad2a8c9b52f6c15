//! The reminder scheduler: fires `PENDING` reminders when their time comes, writing a
//! `ReminderDue` event on `reminders` for each.
//!
//! One pass ([`ReminderScheduler::fire_due`]) is one write transaction that claims the pending
//! rows with `fire_at <= now` (oldest first, at most [`ReminderScheduler::batch_size`]), marks
//! each `FIRED` (or `MISSED` when it is later than [`ReminderScheduler::lateness`]) with
//! `fired_at = now`, appends its event to the outbox, and commits. [`ReminderScheduler::run`]
//! repeats passes, sleeping until the next fire time, at most [`ReminderScheduler::poll`], or
//! until a commit in this process wakes it.
//!
//! Guarantees:
//! - Never early: a row with `fire_at > now` is never claimed, whatever woke the scheduler.
//! - At most one event per reminder, even with several replicas: PostgreSQL claims with
//!   `FOR UPDATE SKIP LOCKED` (a replica skips the rows another is firing), SQLite serializes
//!   the pass with `BEGIN IMMEDIATE`; each row's update is also guarded by `status = 'PENDING'`,
//!   and the event id is derived from the reminder id ([`reminder_event_id`]), which the
//!   outbox's unique `event_id` refuses twice.
//! - Catch-up: after downtime every overdue row is handled on the next pass; a row later than
//!   the lateness becomes `MISSED` and still produces a `taskstream.reminder.missed` event.
//! - A reminder of a task that is already completed (the reminder handler has not caught up
//!   yet) is cancelled instead of fired, as the handler would have done.
//!
//! It does not deliver anything: the notification subscriber consumes `reminders`.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::reminder_offset::ReminderStatus;
use entities::{reminder, task};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use stream::CloudEvent;
use stream::reminder_events::{
    LATE_AFTER, REMINDER_DUE_TYPE, REMINDER_MISSED_TYPE, ReminderDueData,
};
use stream::topics;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::Clock;

/// The namespace of reminder event ids: an event's id is `Uuid::new_v5(REMINDER_EVENT_NAMESPACE,
/// reminder_id.as_bytes())`. Fixed forever: it is what makes a second firing of one reminder
/// collide in the outbox instead of notifying twice.
pub const REMINDER_EVENT_NAMESPACE: Uuid =
    Uuid::from_u128(0x2b9e_41c7_6a0d_4e3f_8c15_d7a4_90f2_6b38);

/// The id of the event that fires reminder `reminder_id`.
pub fn reminder_event_id(reminder_id: Uuid) -> Uuid {
    Uuid::new_v5(&REMINDER_EVENT_NAMESPACE, reminder_id.as_bytes())
}

/// How late a reminder may fire before it counts as missed: an hour. A reminder an hour late
/// still helps ("due in 30 minutes" becomes "was due"); a flood of day-old reminders after an
/// outage does not, so those are reported as missed instead.
pub const DEFAULT_LATENESS: Duration = Duration::from_secs(60 * 60);

/// The longest sleep between passes: the slow fallback poll ([`stream::wakeup::FALLBACK_POLL`]).
/// Commits wake the scheduler: its own process's at once, other processes' on PostgreSQL through
/// [`stream::wakeup::run`]; the poll bounds how late a reminder fires when no wake-up came
/// (a SQLite database written by another process, a lost LISTEN connection).
pub const DEFAULT_POLL: Duration = stream::wakeup::FALLBACK_POLL;

/// Most rows one pass claims, so a catch-up after downtime commits in bounded transactions.
pub const DEFAULT_BATCH_SIZE: u64 = 100;

/// What one pass did, by reminder id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Marked `FIRED`, with a `taskstream.reminder.due` event.
    pub fired: Vec<Uuid>,
    /// Marked `MISSED`, with a `taskstream.reminder.missed` event.
    pub missed: Vec<Uuid>,
    /// Cancelled because their task was completed.
    pub cancelled: Vec<Uuid>,
}

impl FireReport {
    /// How many rows the pass claimed.
    pub fn claimed(&self) -> usize {
        self.fired.len() + self.missed.len() + self.cancelled.len()
    }
}

/// Fires due reminders. See the module documentation.
#[derive(Clone, Debug)]
pub struct ReminderScheduler {
    pub db: DatabaseConnection,
    pub clock: Clock,
    /// Later than this, a reminder is `MISSED` rather than `FIRED`.
    pub lateness: Duration,
    /// The longest sleep of [`ReminderScheduler::run`].
    pub poll: Duration,
    /// Most rows one pass claims.
    pub batch_size: u64,
}

impl ReminderScheduler {
    /// A scheduler with [`DEFAULT_LATENESS`], [`DEFAULT_POLL`] and [`DEFAULT_BATCH_SIZE`];
    /// override the public fields to change them.
    pub fn new(db: DatabaseConnection, clock: Clock) -> ReminderScheduler {
        ReminderScheduler {
            db,
            clock,
            lateness: DEFAULT_LATENESS,
            poll: DEFAULT_POLL,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// One pass: fires (or misses, or cancels) up to [`Self::batch_size`] due reminders in one
    /// transaction, then wakes outbox readers.
    pub async fn fire_due(&self) -> Result<FireReport, DbErr> {
        let now = entities::to_db_precision(self.clock.now());
        let lateness = chrono::Duration::from_std(self.lateness)
            .map_err(|e| DbErr::Custom(format!("the lateness is out of range: {e}")))?;
        let txn = stream::outbox::begin_write(&self.db).await?;
        // SQLite ignores the lock clause; its `BEGIN IMMEDIATE` already serializes passes.
        let due = reminder::Entity::find()
            .filter(reminder::Column::Status.eq(ReminderStatus::Pending))
            .filter(reminder::Column::FireAt.lte(now))
            .order_by_asc(reminder::Column::FireAt)
            .order_by_asc(reminder::Column::Id)
            .limit(self.batch_size)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        let mut report = FireReport::default();
        let mut latenesses = Vec::new();
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(report);
        }
        let tasks = task::Entity::find()
            .filter(task::Column::Id.is_in(due.iter().map(|r| r.task_id)))
            .all(&txn)
            .await?;
        for row in due {
            let Some(fire_at) = row.fire_at else {
                continue;
            };
            let task = tasks.iter().find(|t| t.id == row.task_id);
            let Some(task) = task.filter(|t| !t.completed) else {
                if claim(&txn, row.id, ReminderStatus::Cancelled, None).await? {
                    report.cancelled.push(row.id);
                }
                continue;
            };
            let missed = now - fire_at > lateness;
            let status = if missed {
                ReminderStatus::Missed
            } else {
                ReminderStatus::Fired
            };
            if !claim(&txn, row.id, status, Some(now)).await? {
                continue;
            }
            let data = ReminderDueData {
                reminder_id: row.id,
                task_id: task.id,
                owner_id: task.owner_id.clone(),
                task_title: task.title.clone(),
                due_at: task.due_at,
                fire_at,
                fired_at: now,
                late: missed || now - fire_at > LATE_AFTER,
            };
            let event_type = if missed {
                REMINDER_MISSED_TYPE
            } else {
                REMINDER_DUE_TYPE
            };
            let data = serde_json::to_value(&data).map_err(|e| {
                DbErr::Custom(format!("BUG: reminder data does not serialise: {e}"))
            })?;
            let mut event = CloudEvent::new(event_type, task.id.to_string(), now, data);
            event.id = reminder_event_id(row.id);
            let key = task.id.to_string();
            // A reminder fires long after the request that set it: its event starts a trace.
            let span = tracing::info_span!(
                "reminder.fire",
                otel.name = if missed { "reminder missed" } else { "reminder fire" },
                reminder = %row.id,
                lateness_ms = (now - fire_at).num_milliseconds(),
            );
            telemetry::continue_trace(&span, None);
            stream::outbox::append(&txn, topics::REMINDERS, &key, &event, now)
                .instrument(span)
                .await?;
            latenesses.push((missed, (now - fire_at).as_seconds_f64()));
            if missed {
                tracing::warn!(reminder = %row.id, task = %task.id, %fire_at, "reminder missed");
                report.missed.push(row.id);
            } else {
                tracing::info!(reminder = %row.id, task = %task.id, %fire_at, "reminder fired");
                report.fired.push(row.id);
            }
        }
        txn.commit().await?;
        for (missed, seconds) in latenesses {
            let outcome = if missed { "missed" } else { "fired" };
            telemetry::metrics::metrics().observe_reminder_lateness(outcome, seconds);
        }
        if !report.fired.is_empty() || !report.missed.is_empty() {
            stream::outbox::notify_committed();
        }
        Ok(report)
    }

    /// The earliest fire time of a pending reminder, if any.
    pub async fn next_fire_at(&self) -> Result<Option<DateTime<Utc>>, DbErr> {
        let next = reminder::Entity::find()
            .filter(reminder::Column::Status.eq(ReminderStatus::Pending))
            .filter(reminder::Column::FireAt.is_not_null())
            .order_by_asc(reminder::Column::FireAt)
            .one(&self.db)
            .await?;
        Ok(next.and_then(|r| r.fire_at))
    }

    /// Runs passes until `shutdown` completes: after each, sleeps until the next fire time,
    /// at most [`Self::poll`], or until a commit in this process (a new reminder) wakes it.
    /// Database errors are logged and retried after [`Self::poll`]. A pass in flight when
    /// `shutdown` completes finishes first.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        crate::due_loop::run_passes("reminder scheduler", self.poll, shutdown, || self.pass())
            .await;
    }

    /// One pass, then how long to sleep ([`crate::due_loop::pass_when_due`]).
    async fn pass(&self) -> Result<Duration, DbErr> {
        crate::due_loop::pass_when_due(
            || self.clock.now(),
            self.poll,
            || self.next_fire_at(),
            || async { Ok(self.fire_due().await?.claimed() as u64 >= self.batch_size) },
        )
        .await
    }
}

/// Moves reminder `id` from `PENDING` to `status` (with `fired_at`); false when it was no longer
/// pending.
async fn claim<C: sea_orm::ConnectionTrait>(
    txn: &C,
    id: Uuid,
    status: ReminderStatus,
    fired_at: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    let mut update = reminder::Entity::update_many()
        .col_expr(reminder::Column::Status, Expr::value(status))
        .filter(reminder::Column::Id.eq(id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending));
    if let Some(t) = fired_at {
        update = update.col_expr(reminder::Column::FiredAt, Expr::value(t));
    }
    Ok(update.exec(txn).await?.rows_affected == 1)
}
