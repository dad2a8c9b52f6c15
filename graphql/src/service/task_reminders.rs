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

pub(super) async fn replace_reminders<C: ConnectionTrait>(
    txn: &C,
    task: &task::Model,
    specs: &[ReminderSpec],
    now: DateTime<Utc>,
) -> ApiResult<()> {
    reminder::Entity::delete_many()
        .filter(reminder::Column::TaskId.eq(task.id))
        .exec(txn)
        .await?;
    if specs.is_empty() {
        return Ok(());
    }
    reminder::Entity::insert_many(specs.iter().map(|spec| {
        let (minutes, at) = match *spec {
            ReminderSpec::MinutesBeforeDue(m) => (Some(m), None),
            ReminderSpec::At(t) => (None, Some(t)),
        };
        reminder::ActiveModel {
            id: Set(Uuid::now_v7()),
            task_id: Set(task.id),
            owner_id: Set(task.owner_id.clone()),
            minutes_before_due: Set(minutes),
            at: Set(at),
            fire_at: Set(spec.fire_at(task.due_at)),
            status: Set(ReminderStatus::Pending),
            created_at: Set(now),
            fired_at: Set(None),
        }
    }))
    .exec(txn)
    .await?;
    Ok(())
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
