//! Task writes: create, update, complete, reopen, delete. Each runs in one transaction that
//! locks the task row, bumps its version, and appends its events to the outbox, so the change
//! and its events commit together (Architecture invariant).
//!
//! The input types and their validation live in `task_input`, tagging in `task_tagging`, and the
//! reminder rows in `task_reminders`; their public items are re-exported here, so callers use
//! `service::task::…` for all of them.
//!
//! What it is not: no GraphQL types and no authorisation beyond "the caller owns the task".

use chrono::{DateTime, Utc};
use entities::recurrence::RecurrenceRule;
use entities::task;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use stream::task_events::{TaskChangeKind, TaskSnapshot};
use uuid::Uuid;

pub use super::task_input::{
    NewTask, RecurrenceInput, ReminderInput, TaskPatch, expand_off_the_runtime, preview_recurrence,
};
pub use super::task_reminders::reminders_of_tasks;
pub use super::task_tagging::{tag_task, touch_tasks, untag_task};

use super::task_input::{
    bad, check_series_expands, stored_rule, user_timezone, validate_date, validate_description,
    validate_recurrence, validate_reminders, validate_title,
};
use super::task_reminders::{add_reminders, recompute_fire_times, replace_reminders};
use super::task_tagging::{link_tags, replace_tags};
use super::{begin_write, tag as tags, user};
use crate::error::{ApiError, ApiResult};

/// Who is changing tasks, when, and on behalf of which request.
#[derive(Clone, Debug)]
pub struct TaskChangeContext {
    pub owner_id: String,
    pub now: DateTime<Utc>,
    /// The request id, carried into events as `correlationid`.
    pub correlation_id: Option<String>,
    /// Users whose row exists (so creating a task does not upsert it again).
    pub known_users: user::KnownUsers,
}

/// Creates a task with its tags and reminders, and its CREATED events.
pub async fn create_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    input: NewTask,
) -> ApiResult<task::Model> {
    let title = validate_title(&input.title)?;
    let description = validate_description(input.description.as_deref().unwrap_or_default())?;
    let tag_names = tags::validate_tag_names("input.tags", input.tags.as_deref().unwrap_or(&[]))?;
    let reminders = validate_reminders(input.reminders.as_deref().unwrap_or(&[]))?;
    if let Some(due_at) = input.due_at {
        validate_date("input.dueAt", due_at)?;
    }
    let due_at = input.due_at.map(entities::to_db_precision);
    let recurrence = match &input.recurrence {
        Some(r) => Some(validate_recurrence(r, due_at, &user_timezone(db, ctx).await?).await?),
        None => None,
    };

    let now = entities::to_db_precision(ctx.now);
    let id = Uuid::now_v7();
    let txn = begin_write(db).await?;
    user::ensure_exists_once(&txn, &ctx.known_users, &ctx.owner_id, now).await?;
    let model = task::ActiveModel {
        id: Set(id),
        owner_id: Set(ctx.owner_id.clone()),
        title: Set(title),
        description: Set(description),
        priority: Set(input.priority),
        completed: Set(false),
        completed_at: Set(None),
        due_at: Set(due_at),
        recurrence_rule: Set(recurrence.as_ref().map(|r| r.rule().to_owned())),
        recurrence_timezone: Set(recurrence.as_ref().map(|r| r.timezone_name().to_owned())),
        recurrence_anchor: Set(recurrence.as_ref().map(RecurrenceRule::anchor)),
        series_id: Set(recurrence.as_ref().map(|_| id)),
        occurrence_index: Set(recurrence.as_ref().map(|_| 1)),
        generated_from_task_id: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        // search_title, search_body and title_key are derived from the title and description
        // by `task::ActiveModel::before_save`.
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    // A new task has no links or reminders to replace: only inserts, and the snapshot is
    // built from the rows written rather than read back.
    let tag_rows = link_tags(&txn, &ctx.owner_id, id, &tag_names, now).await?;
    let reminder_rows = add_reminders(&txn, &model, &reminders, now).await?;
    let snapshot = TaskSnapshot::from_models(&model, &tag_rows, &reminder_rows);
    append_events(&txn, ctx, TaskChangeKind::Created, &snapshot).await?;
    super::commit_and_notify(txn).await?;
    ctx.known_users.insert(&ctx.owner_id);
    Ok(model)
}

/// Loads one of the owner's tasks, locking its row on PostgreSQL (SQLite's write transaction
/// already serialises writers). Another user's task is reported exactly like a missing one.
pub(super) async fn load_for_update<C: ConnectionTrait>(
    txn: &C,
    owner_id: &str,
    id: Uuid,
) -> ApiResult<task::Model> {
    let mut query = task::Entity::find_by_id(id).filter(task::Column::OwnerId.eq(owner_id));
    if crate::db::is_postgres(txn) {
        query = query.lock_exclusive();
    }
    query
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("task", &id.to_string()))
}

/// One of the owner's tasks, or `None` (also for another user's task).
pub async fn find_task<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
) -> ApiResult<Option<task::Model>> {
    Ok(task::Entity::find_by_id(id)
        .filter(task::Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

/// The occurrence generated from `task_id` (its successor), if any.
pub async fn find_successor<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    task_id: Uuid,
) -> ApiResult<Option<task::Model>> {
    Ok(task::Entity::find()
        .filter(task::Column::GeneratedFromTaskId.eq(task_id))
        .filter(task::Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

fn check_version(current: &task::Model, expected: Option<i32>) -> ApiResult<()> {
    match expected {
        Some(v) if v != current.version => Err(ApiError::Conflict {
            message: format!(
                "input.expectedVersion: task {} is at version {}, not the expected version {v}; \
                 reload it and retry",
                current.id, current.version
            ),
            field: Some("input.expectedVersion".to_owned()),
        }),
        _ => Ok(()),
    }
}

/// Applies a patch (absent = unchanged, null = clear) and emits UPDATED.
pub async fn update_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    patch: TaskPatch,
) -> ApiResult<task::Model> {
    // Validate everything that does not need the current row before opening the transaction.
    let title = match &patch.title {
        Some(None) => {
            return Err(bad(
                "input.title",
                "input.title cannot be null; a task needs a title".into(),
            ));
        }
        Some(Some(t)) => Some(validate_title(t)?),
        None => None,
    };
    let description = match &patch.description {
        Some(d) => Some(validate_description(d.as_deref().unwrap_or_default())?),
        None => None,
    };
    let tag_names = match &patch.tags {
        Some(t) => Some(tags::validate_tag_names(
            "input.tags",
            t.as_deref().unwrap_or(&[]),
        )?),
        None => None,
    };
    let reminders = match &patch.reminders {
        Some(r) => Some(validate_reminders(r.as_deref().unwrap_or(&[]))?),
        None => None,
    };
    if let Some(Some(due_at)) = patch.due_at {
        validate_date("input.dueAt", due_at)?;
    }
    let default_tz = match &patch.recurrence {
        Some(Some(r)) if r.timezone.is_none() => Some(user_timezone(db, ctx).await?),
        _ => None,
    };

    let now = entities::to_db_precision(ctx.now);
    let txn = begin_write(db).await?;
    let current = load_for_update(&txn, &ctx.owner_id, id).await?;
    check_version(&current, patch.expected_version)?;
    if patch.is_empty() {
        super::commit_and_notify(txn).await?;
        return Ok(current);
    }

    let due_at = match patch.due_at {
        Some(d) => d.map(entities::to_db_precision),
        None => current.due_at,
    };
    let recurrence: Option<Option<RecurrenceRule>> = match &patch.recurrence {
        Some(Some(r)) => Some(Some(
            validate_recurrence(
                r,
                due_at,
                default_tz.as_deref().unwrap_or(user::DEFAULT_TIMEZONE),
            )
            .await?,
        )),
        Some(None) => Some(None),
        None => None,
    };
    let recurs_after = match &recurrence {
        Some(r) => r.is_some(),
        None => current.recurrence_rule.is_some(),
    };
    if recurs_after && due_at.is_none() {
        return Err(bad(
            "input.dueAt",
            "input.dueAt cannot be cleared while the task recurs; clear input.recurrence too"
                .into(),
        ));
    }

    let mut row: task::ActiveModel = current.clone().into();
    if let Some(t) = title {
        row.title = Set(t);
    }
    if let Some(d) = description {
        row.description = Set(d);
    }
    if let Some(p) = patch.priority {
        row.priority = Set(p.unwrap_or_default());
    }
    row.due_at = Set(due_at);
    if due_at != current.due_at || recurrence.is_some() {
        // A new due date or rule restarts the series' wall-clock time at this occurrence.
        row.occurrence_local = Set(None);
        row.series_start_local = Set(None);
        if recurrence.is_none()
            && let (Some(rule), Some(due_at)) = (stored_rule(&current), due_at)
        {
            check_series_expands("input.dueAt", &rule, due_at).await?;
        }
    }
    if let Some(r) = recurrence {
        match r {
            Some(rule) => {
                row.recurrence_rule = Set(Some(rule.rule().to_owned()));
                row.recurrence_timezone = Set(Some(rule.timezone_name().to_owned()));
                row.recurrence_anchor = Set(Some(rule.anchor()));
                if current.series_id.is_none() {
                    row.series_id = Set(Some(current.id));
                    row.occurrence_index = Set(Some(1));
                }
            }
            None => {
                row.recurrence_rule = Set(None);
                row.recurrence_timezone = Set(None);
                row.recurrence_anchor = Set(None);
            }
        }
    }
    row.version = Set(current.version + 1);
    row.updated_at = Set(now);
    let updated = row.update(&txn).await?;

    let tag_rows = match tag_names {
        Some(names) => Some(replace_tags(&txn, &ctx.owner_id, id, &names, now).await?),
        None => None,
    };
    let reminder_rows = match reminders {
        Some(specs) => Some(replace_reminders(&txn, &updated, &specs, now).await?),
        None if updated.due_at != current.due_at => {
            recompute_fire_times(&txn, &updated).await?;
            None
        }
        None => None,
    };
    let snapshot = snapshot_with(&txn, &updated, tag_rows, reminder_rows).await?;
    append_events(&txn, ctx, TaskChangeKind::Updated, &snapshot).await?;
    super::commit_and_notify(txn).await?;
    Ok(updated)
}

/// Marks a task completed (idempotent: an already completed task is returned unchanged and
/// no event is written) and emits COMPLETED.
pub async fn complete_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
) -> ApiResult<task::Model> {
    set_completed(db, ctx, id, true).await
}

/// Reopens a completed task (idempotent) and emits REOPENED.
pub async fn reopen_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
) -> ApiResult<task::Model> {
    set_completed(db, ctx, id, false).await
}

async fn set_completed(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    completed: bool,
) -> ApiResult<task::Model> {
    let now = entities::to_db_precision(ctx.now);
    let txn = begin_write(db).await?;
    let current = load_for_update(&txn, &ctx.owner_id, id).await?;
    if current.completed == completed {
        super::commit_and_notify(txn).await?;
        return Ok(current);
    }
    let mut row: task::ActiveModel = current.clone().into();
    row.completed = Set(completed);
    row.completed_at = Set(completed.then_some(now));
    row.version = Set(current.version + 1);
    row.updated_at = Set(now);
    let updated = row.update(&txn).await?;
    let kind = if completed {
        TaskChangeKind::Completed
    } else {
        TaskChangeKind::Reopened
    };
    emit(&txn, ctx, kind, &updated).await?;
    super::commit_and_notify(txn).await?;
    Ok(updated)
}

/// Deletes a task (its tags links and reminders cascade) and emits DELETED with the last
/// state; `aggregateversion` is one past the last stored version.
pub async fn delete_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
) -> ApiResult<Uuid> {
    let txn = begin_write(db).await?;
    let current = load_for_update(&txn, &ctx.owner_id, id).await?;
    let mut last = current.clone();
    last.version += 1;
    last.updated_at = entities::to_db_precision(ctx.now);
    // Build the snapshot before the cascade removes tags and reminders.
    let snapshot = snapshot(&txn, &last).await?;
    task::Entity::delete_by_id(id).exec(&txn).await?;
    append_events(&txn, ctx, TaskChangeKind::Deleted, &snapshot).await?;
    super::commit_and_notify(txn).await?;
    Ok(id)
}

async fn snapshot<C: ConnectionTrait>(txn: &C, task: &task::Model) -> ApiResult<TaskSnapshot> {
    snapshot_with(txn, task, None, None).await
}

/// The task's snapshot, with the tags and reminders given (rows the caller just wrote), or
/// else read in `txn`.
async fn snapshot_with<C: ConnectionTrait>(
    txn: &C,
    task: &task::Model,
    tag_rows: Option<Vec<entities::tag::Model>>,
    reminder_rows: Option<Vec<entities::reminder::Model>>,
) -> ApiResult<TaskSnapshot> {
    let tag_rows = match tag_rows {
        Some(rows) => rows,
        None => tags::tags_of_tasks(txn, &[task.id])
            .await?
            .remove(&task.id)
            .unwrap_or_default(),
    };
    let reminder_rows = match reminder_rows {
        Some(rows) => rows,
        None => reminders_of_tasks(txn, &[task.id])
            .await?
            .remove(&task.id)
            .unwrap_or_default(),
    };
    Ok(TaskSnapshot::from_models(task, &tag_rows, &reminder_rows))
}

/// Appends the task's change events (task-events and task-updates, key = task id) in `txn`.
pub(super) async fn emit<C: ConnectionTrait>(
    txn: &C,
    ctx: &TaskChangeContext,
    kind: TaskChangeKind,
    task: &task::Model,
) -> ApiResult<()> {
    let snapshot = snapshot(txn, task).await?;
    append_events(txn, ctx, kind, &snapshot).await
}

async fn append_events<C: ConnectionTrait>(
    txn: &C,
    ctx: &TaskChangeContext,
    kind: TaskChangeKind,
    snapshot: &TaskSnapshot,
) -> ApiResult<()> {
    stream::outbox::append_change(
        txn,
        kind,
        snapshot,
        ctx.now,
        ctx.correlation_id.clone(),
        None,
    )
    .await?;
    Ok(())
}
