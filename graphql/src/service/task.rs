//! Task writes: create, update, complete, reopen, delete. Each runs in one transaction that
//! locks the task row, bumps its version, and appends its events to the outbox, so the change
//! and its events commit together (Architecture invariant).

use chrono::{DateTime, Utc};
use entities::priority::Priority;
use entities::recurrence::{MAX_UPCOMING, RecurrenceAnchor, RecurrenceRule};
use entities::reminder_offset::{ReminderSpec, ReminderStatus};
use entities::{limits, reminder, task, task_tag};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use stream::task_events::{TaskChangeKind, TaskSnapshot, task_change_events};
use stream::topics;
use uuid::Uuid;

use super::{begin_write, tag as tags, user};
use crate::error::{ApiError, ApiResult};

/// Who is changing tasks, when, and on behalf of which request.
#[derive(Clone, Debug)]
pub struct TaskChangeContext {
    pub owner_id: String,
    pub now: DateTime<Utc>,
    /// The request id, carried into events as `correlationid`.
    pub correlation_id: Option<String>,
}

/// Recurrence as the client sent it (not yet validated).
#[derive(Clone, Debug)]
pub struct RecurrenceInput {
    pub rule: String,
    pub timezone: Option<String>,
    pub anchor: RecurrenceAnchor,
}

/// A reminder as the client sent it: exactly one field must be set.
#[derive(Clone, Copy, Debug)]
pub struct ReminderInput {
    pub minutes_before_due: Option<i32>,
    pub at: Option<DateTime<Utc>>,
}

/// `createTask` input.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub due_at: Option<DateTime<Utc>>,
    pub tags: Option<Vec<String>>,
    pub recurrence: Option<RecurrenceInput>,
    pub reminders: Option<Vec<ReminderInput>>,
}

/// `updateTask` input: `None` = absent (unchanged), `Some(None)` = null (clear).
#[derive(Clone, Debug, Default)]
pub struct TaskPatch {
    pub title: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub priority: Option<Option<Priority>>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub tags: Option<Option<Vec<String>>>,
    pub recurrence: Option<Option<RecurrenceInput>>,
    pub reminders: Option<Option<Vec<ReminderInput>>>,
    pub expected_version: Option<i32>,
}

impl TaskPatch {
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.priority.is_none()
            && self.due_at.is_none()
            && self.tags.is_none()
            && self.recurrence.is_none()
            && self.reminders.is_none()
    }
}

fn bad(msg: String) -> ApiError {
    ApiError::BadUserInput(msg)
}

fn validate_title(value: &str) -> ApiResult<String> {
    limits::required_text("input.title", value, limits::MAX_TITLE_CHARS).map_err(bad)
}

fn validate_description(value: &str) -> ApiResult<String> {
    limits::optional_text("input.description", value, limits::MAX_DESCRIPTION_CHARS).map_err(bad)
}

fn validate_reminders(inputs: &[ReminderInput]) -> ApiResult<Vec<ReminderSpec>> {
    if inputs.len() > limits::MAX_REMINDERS_PER_TASK {
        return Err(bad(format!(
            "input.reminders has {} entries; the limit is {}",
            inputs.len(),
            limits::MAX_REMINDERS_PER_TASK
        )));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            ReminderSpec::from_input(&format!("input.reminders[{i}]"), r.minutes_before_due, r.at)
                .map_err(bad)
        })
        .collect()
}

/// Parses a recurrence; the zone defaults to the user's. Error messages name `field.rule` or
/// `field.timezone`, where `field` is the argument path (`input.recurrence` in mutations).
fn parse_recurrence(
    field: &str,
    input: &RecurrenceInput,
    default_timezone: &str,
) -> ApiResult<RecurrenceRule> {
    let timezone = input.timezone.as_deref().unwrap_or(default_timezone);
    RecurrenceRule::parse(&input.rule, timezone, input.anchor).map_err(|e| match e {
        entities::recurrence::RecurrenceError::UnknownTimezone(_) => {
            bad(format!("{field}.timezone: {e}"))
        }
        _ => bad(format!("{field}.rule: {e}")),
    })
}

/// Validates a recurrence against the task's (final) due date; the zone defaults to the
/// user's.
fn validate_recurrence(
    input: &RecurrenceInput,
    due_at: Option<DateTime<Utc>>,
    default_timezone: &str,
) -> ApiResult<RecurrenceRule> {
    let rule = parse_recurrence("input.recurrence", input, default_timezone)?;
    if due_at.is_none() {
        return Err(bad(
            "input.recurrence requires input.dueAt: the due date starts the series".to_owned(),
        ));
    }
    Ok(rule)
}

async fn user_timezone(db: &DatabaseConnection, ctx: &TaskChangeContext) -> ApiResult<String> {
    Ok(user::find_or_default(db, &ctx.owner_id, ctx.now)
        .await?
        .timezone)
}

/// The first `count` dates (1 to [`MAX_UPCOMING`]) of a recurrence that is not saved yet,
/// strictly after `due_at`: what `Recurrence.upcoming` returns once a task with this due date
/// and recurrence is saved (the same parsing, zone default and due-date precision). Reads the
/// caller's settings only when the zone is missing; writes nothing.
pub async fn preview_recurrence(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    input: &RecurrenceInput,
    due_at: DateTime<Utc>,
    count: i32,
) -> ApiResult<Vec<DateTime<Utc>>> {
    let count = usize::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_UPCOMING).contains(n))
        .ok_or_else(|| bad(format!("count must be between 1 and {MAX_UPCOMING}")))?;
    let default_tz = match &input.timezone {
        Some(_) => user::DEFAULT_TIMEZONE.to_owned(),
        None => user_timezone(db, ctx).await?,
    };
    let rule = parse_recurrence("recurrence", input, &default_tz)?;
    rule.upcoming(entities::to_db_precision(due_at), count)
        .map_err(|e| bad(format!("recurrence.rule: {e}")))
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
    let due_at = input.due_at.map(entities::to_db_precision);
    let recurrence = match &input.recurrence {
        Some(r) => Some(validate_recurrence(
            r,
            due_at,
            &user_timezone(db, ctx).await?,
        )?),
        None => None,
    };

    let now = entities::to_db_precision(ctx.now);
    let id = Uuid::now_v7();
    let txn = begin_write(db).await?;
    user::ensure_exists(&txn, &ctx.owner_id, now).await?;
    let model = task::ActiveModel {
        id: Set(id),
        owner_id: Set(ctx.owner_id.clone()),
        title: Set(title),
        description: Set(description),
        priority: Set(input.priority.rank()),
        completed: Set(false),
        completed_at: Set(None),
        due_at: Set(due_at),
        recurrence_rule: Set(recurrence.as_ref().map(|r| r.rule().to_owned())),
        recurrence_timezone: Set(recurrence.as_ref().map(|r| r.timezone_name().to_owned())),
        recurrence_anchor: Set(recurrence.as_ref().map(|r| r.anchor().as_str().to_owned())),
        series_id: Set(recurrence.as_ref().map(|_| id)),
        occurrence_index: Set(recurrence.as_ref().map(|_| 1)),
        generated_from_task_id: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    replace_tags(&txn, &ctx.owner_id, id, &tag_names, now).await?;
    replace_reminders(&txn, &model, &reminders, now).await?;
    emit(&txn, ctx, TaskChangeKind::Created, &model).await?;
    super::commit_and_notify(txn).await?;
    Ok(model)
}

/// Loads one of the owner's tasks, locking its row on PostgreSQL (SQLite's write transaction
/// already serialises writers). Another user's task is reported exactly like a missing one.
async fn load_for_update<C: ConnectionTrait>(
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
        Some(v) if v != current.version => Err(ApiError::Conflict(format!(
            "task {} is at version {}, not the expected version {v}; reload it and retry",
            current.id, current.version
        ))),
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
                "input.title cannot be null; a task needs a title".into()
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
        Some(Some(r)) => Some(Some(validate_recurrence(
            r,
            due_at,
            default_tz.as_deref().unwrap_or(user::DEFAULT_TIMEZONE),
        )?)),
        Some(None) => Some(None),
        None => None,
    };
    let recurs_after = match &recurrence {
        Some(r) => r.is_some(),
        None => current.recurrence_rule.is_some(),
    };
    if recurs_after && due_at.is_none() {
        return Err(bad(
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
        row.priority = Set(p.unwrap_or_default().rank());
    }
    row.due_at = Set(due_at);
    if let Some(r) = recurrence {
        match r {
            Some(rule) => {
                row.recurrence_rule = Set(Some(rule.rule().to_owned()));
                row.recurrence_timezone = Set(Some(rule.timezone_name().to_owned()));
                row.recurrence_anchor = Set(Some(rule.anchor().as_str().to_owned()));
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

    if let Some(names) = tag_names {
        replace_tags(&txn, &ctx.owner_id, id, &names, now).await?;
    }
    match reminders {
        Some(specs) => replace_reminders(&txn, &updated, &specs, now).await?,
        None if updated.due_at != current.due_at => recompute_fire_times(&txn, &updated).await?,
        None => {}
    }
    emit(&txn, ctx, TaskChangeKind::Updated, &updated).await?;
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

/// Adds tags (creating missing ones) to a task; no-op (no new version) when it has them all.
pub async fn tag_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    names: &[String],
) -> ApiResult<task::Model> {
    let names = tags::validate_tag_names("tags", names)?;
    retag(db, ctx, id, |current| {
        let mut out = current.to_vec();
        for n in &names {
            if !out
                .iter()
                .any(|c| entities::tag::name_key(c) == entities::tag::name_key(n))
            {
                out.push(n.clone());
            }
        }
        out
    })
    .await
}

/// Removes tags from a task; names it does not carry are ignored.
pub async fn untag_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    names: &[String],
) -> ApiResult<task::Model> {
    let names = tags::validate_tag_names("tags", names)?;
    let keys: Vec<String> = names.iter().map(|n| entities::tag::name_key(n)).collect();
    retag(db, ctx, id, |current| {
        current
            .iter()
            .filter(|c| !keys.contains(&entities::tag::name_key(c)))
            .cloned()
            .collect()
    })
    .await
}

async fn retag(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    change: impl FnOnce(&[String]) -> Vec<String>,
) -> ApiResult<task::Model> {
    let now = entities::to_db_precision(ctx.now);
    let txn = begin_write(db).await?;
    let current = load_for_update(&txn, &ctx.owner_id, id).await?;
    let before: Vec<String> = tags::tags_of_tasks(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .collect();
    let after = change(&before);
    if after.len() > limits::MAX_TAGS_PER_TASK {
        return Err(bad(format!(
            "tags: the task would carry {} tags; the limit is {}",
            after.len(),
            limits::MAX_TAGS_PER_TASK
        )));
    }
    if after.len() == before.len() && after.iter().all(|a| before.contains(a)) {
        super::commit_and_notify(txn).await?;
        return Ok(current);
    }
    replace_tags(&txn, &ctx.owner_id, id, &after, now).await?;
    let updated = bump(&txn, &current, now).await?;
    emit(&txn, ctx, TaskChangeKind::Updated, &updated).await?;
    super::commit_and_notify(txn).await?;
    Ok(updated)
}

async fn bump<C: ConnectionTrait>(
    txn: &C,
    current: &task::Model,
    now: DateTime<Utc>,
) -> ApiResult<task::Model> {
    let mut row: task::ActiveModel = current.clone().into();
    row.version = Set(current.version + 1);
    row.updated_at = Set(now);
    Ok(row.update(txn).await?)
}

/// Gives each task a new version and an UPDATED event (used when a tag they carry changed).
pub async fn touch_tasks<C: ConnectionTrait>(
    txn: &C,
    ctx: &TaskChangeContext,
    ids: &[Uuid],
) -> ApiResult<()> {
    let now = entities::to_db_precision(ctx.now);
    for id in ids {
        let current = load_for_update(txn, &ctx.owner_id, *id).await?;
        let updated = bump(txn, &current, now).await?;
        emit(txn, ctx, TaskChangeKind::Updated, &updated).await?;
    }
    Ok(())
}

async fn replace_tags<C: ConnectionTrait>(
    txn: &C,
    owner_id: &str,
    task_id: Uuid,
    names: &[String],
    now: DateTime<Utc>,
) -> ApiResult<()> {
    task_tag::Entity::delete_many()
        .filter(task_tag::Column::TaskId.eq(task_id))
        .exec(txn)
        .await?;
    let tag_rows = tags::ensure_tags(txn, owner_id, names, now).await?;
    if !tag_rows.is_empty() {
        task_tag::Entity::insert_many(tag_rows.iter().map(|t| task_tag::ActiveModel {
            task_id: Set(task_id),
            tag_id: Set(t.id),
        }))
        .exec(txn)
        .await?;
    }
    Ok(())
}

async fn replace_reminders<C: ConnectionTrait>(
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
            status: Set(ReminderStatus::Pending.as_str().to_owned()),
            created_at: Set(now),
            fired_at: Set(None),
        }
    }))
    .exec(txn)
    .await?;
    Ok(())
}

/// After the due date moved, pending relative reminders fire relative to the new date.
async fn recompute_fire_times<C: ConnectionTrait>(txn: &C, task: &task::Model) -> ApiResult<()> {
    let pending = reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(task.id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()))
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

async fn snapshot<C: ConnectionTrait>(txn: &C, task: &task::Model) -> ApiResult<TaskSnapshot> {
    let tag_rows = tags::tags_of_tasks(txn, &[task.id])
        .await?
        .remove(&task.id)
        .unwrap_or_default();
    let reminder_rows = reminders_of_tasks(txn, &[task.id])
        .await?
        .remove(&task.id)
        .unwrap_or_default();
    Ok(TaskSnapshot::from_models(task, &tag_rows, &reminder_rows))
}

/// Appends the task's change events (task-events and task-updates, key = task id) in `txn`.
async fn emit<C: ConnectionTrait>(
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
    let (history, state) = task_change_events(kind, snapshot, ctx.now, ctx.correlation_id.clone())
        .map_err(ApiError::internal)?;
    let key = snapshot.id.to_string();
    stream::outbox::append(txn, topics::TASK_EVENTS, &key, &history, ctx.now).await?;
    stream::outbox::append(txn, topics::TASK_UPDATES, &key, &state, ctx.now).await?;
    Ok(())
}
