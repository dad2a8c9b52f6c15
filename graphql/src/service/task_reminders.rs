//! A task's reminder rows: replacing them from validated specs, recomputing fire times after the
//! due date moved, and loading them for many tasks at once. Part of `task`, which re-exports the
//! public items.
//!
//! What it is not: firing reminders is the `subscribers` crate's job (its reminder scheduler).

use chrono::{DateTime, Utc};
use entities::reminder_offset::{ReminderSpec, ReminderStatus};
use entities::{reminder, task};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::error::ApiResult;

/// Replaces the task's reminders with `specs`; returns the new rows.
pub(super) async fn replace_reminders<C: ConnectionTrait>(
    txn: &C,
    task: &task::Model,
    specs: &[ReminderSpec],
    now: DateTime<Utc>,
) -> ApiResult<Vec<reminder::Model>> {
    reminder::Entity::delete_many()
        .filter(reminder::Column::TaskId.eq(task.id))
        .exec(txn)
        .await?;
    add_reminders(txn, task, specs, now).await
}

/// Gives a task that has no reminders yet (one just created) the reminders of `specs`;
/// returns the rows, in the order [`reminders_of_tasks`] loads them. A completed task's
/// reminders start `CANCELLED` (the reminder subscriber would cancel them anyway).
pub(super) async fn add_reminders<C: ConnectionTrait>(
    txn: &C,
    task: &task::Model,
    specs: &[ReminderSpec],
    now: DateTime<Utc>,
) -> ApiResult<Vec<reminder::Model>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let status = if task.completed {
        ReminderStatus::Cancelled
    } else {
        ReminderStatus::Pending
    };
    let rows: Vec<reminder::Model> = specs
        .iter()
        .map(|spec| {
            let (minutes, at) = match *spec {
                ReminderSpec::MinutesBeforeDue(m) => (Some(m), None),
                ReminderSpec::At(t) => (None, Some(t)),
            };
            reminder::Model {
                id: Uuid::now_v7(),
                task_id: task.id,
                owner_id: task.owner_id.clone(),
                minutes_before_due: minutes,
                at,
                fire_at: spec.fire_at(task.due_at),
                status,
                created_at: now,
                fired_at: None,
            }
        })
        .collect();
    reminder::Entity::insert_many(rows.iter().cloned().map(reminder::ActiveModel::from))
        .exec_without_returning(txn)
        .await?;
    Ok(rows)
}

/// After the due date moved, pending relative reminders fire relative to the new date.
pub(super) async fn recompute_fire_times<C: ConnectionTrait>(
    txn: &C,
    task: &task::Model,
) -> ApiResult<()> {
    let pending = reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(task.id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending))
        .filter(reminder::Column::MinutesBeforeDue.is_not_null())
        .all(txn)
        .await?;
    for r in pending {
        let spec = ReminderSpec::MinutesBeforeDue(r.minutes_before_due.unwrap_or_default());
        let mut row: reminder::ActiveModel = r.into();
        row.fire_at = Set(spec.fire_at(task.due_at));
        row.update(txn).await?;
    }
    Ok(())
}

/// The reminders of each of these tasks, in one query, ordered by creation.
pub async fn reminders_of_tasks<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
) -> ApiResult<std::collections::HashMap<Uuid, Vec<reminder::Model>>> {
    let rows = reminder::Entity::find()
        .filter(reminder::Column::TaskId.is_in(task_ids.iter().copied()))
        .order_by_asc(reminder::Column::CreatedAt)
        .order_by_asc(reminder::Column::Id)
        .all(db)
        .await?;
    let mut map: std::collections::HashMap<Uuid, Vec<reminder::Model>> =
        std::collections::HashMap::new();
    for r in rows {
        map.entry(r.task_id).or_default().push(r);
    }
    Ok(map)
}
