//! `Task`, `Recurrence`, `Reminder`, the task query and the task mutations.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use entities::recurrence::{MAX_UPCOMING, Occurrence, RecurrenceRule};
use entities::{reminder, tag, task};

use super::loaders::{TaskRemindersLoader, TaskTagsLoader, to_gql};
use super::tag::Tag;
use super::{change_context, db, parse_id, viewer};
use crate::error::ApiError;
use crate::service::task as service;

// The GraphQL enums mirror the stored ones variant for variant (`remote` derives the
// conversions both ways), so a value read from a row is always one of them: a row with an
// unknown value does not load at all (INTERNAL), it is never shown as a default.

/// How important a task is; ordered, URGENT highest.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "entities::priority::Priority")]
pub enum Priority {
    #[default]
    None,
    Low,
    Medium,
    High,
    Urgent,
}

/// Whether the next occurrence follows the schedule or restarts from the completion time.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "entities::recurrence::RecurrenceAnchor")]
pub enum RecurrenceAnchor {
    #[default]
    Schedule,
    Completion,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entities::reminder_offset::ReminderStatus")]
pub enum ReminderStatus {
    Pending,
    Fired,
    Cancelled,
    Missed,
}

/// A task. Each occurrence of a recurring task is its own task. A task read `asOf` an instant
/// (or from its history) carries the tags and reminders of that version in its second field;
/// a current task reads them from their tables, through the batch loader, unless the query that
/// found it loaded its tags already (a list page whose selection asks for them): then they are
/// in its third field.
pub struct Task(
    pub task::Model,
    pub Option<Arc<PastState>>,
    pub Option<Vec<tag::Model>>,
);

/// The tags and reminders of a past version of a task.
pub struct PastState {
    /// Tag names, in the version's order.
    pub tags: Vec<String>,
    pub reminders: Vec<reminder::Model>,
}

impl From<task::Model> for Task {
    fn from(model: task::Model) -> Task {
        Task(model, None, None)
    }
}

impl Task {
    /// The task as `version` recorded it.
    pub fn past(version: &crate::service::task_history::Version) -> Task {
        let s = &version.snapshot;
        let reminders = s
            .reminders
            .iter()
            .map(|r| reminder::Model {
                id: r.id,
                task_id: s.id,
                owner_id: s.owner_id.clone(),
                minutes_before_due: r.minutes_before_due,
                at: r.at,
                fire_at: r.fire_at,
                status: r.status,
                created_at: s.updated_at,
                fired_at: None,
            })
            .collect();
        Task(
            version.model(),
            Some(Arc::new(PastState {
                tags: s.tags.clone(),
                reminders,
            })),
            None,
        )
    }
}

#[Object]
impl Task {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn priority(&self) -> Priority {
        self.0.priority.into()
    }

    async fn completed(&self) -> bool {
        self.0.completed
    }

    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }

    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }

    /// The task's tags, ordered by name.
    /// Its tags, by name. For a past version, the tags of that version that still exist (the
    /// version's `changes` name every tag it had).
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<Tag>> {
        if let Some(past) = &self.1 {
            return Ok(
                crate::service::tag::tags_named(db(ctx), &self.0.owner_id, &past.tags)
                    .await?
                    .into_iter()
                    .map(Tag)
                    .collect(),
            );
        }
        if let Some(tags) = &self.2 {
            return Ok(tags.iter().cloned().map(Tag).collect());
        }
        let loader = ctx.data_unchecked::<DataLoader<TaskTagsLoader>>();
        Ok(loader
            .load_one(self.0.id)
            .await
            .map_err(to_gql)?
            .unwrap_or_default()
            .into_iter()
            .map(Tag)
            .collect())
    }

    /// Null for a one-off task.
    async fn recurrence(&self) -> Option<Recurrence> {
        match (
            &self.0.recurrence_rule,
            &self.0.recurrence_timezone,
            &self.0.recurrence_anchor,
        ) {
            (Some(rule), Some(tz), Some(anchor)) => Some(Recurrence {
                rule: rule.clone(),
                timezone: tz.clone(),
                anchor: *anchor,
                due_at: self.0.due_at,
                occurrence_local: self.0.occurrence_local,
                series_start_local: self.0.series_start_local,
                occurrence_index: self.0.occurrence_index,
            }),
            _ => None,
        }
    }

    async fn reminders(&self, ctx: &Context<'_>) -> Result<Vec<Reminder>> {
        if let Some(past) = &self.1 {
            return Ok(past.reminders.iter().cloned().map(Reminder).collect());
        }
        let loader = ctx.data_unchecked::<DataLoader<TaskRemindersLoader>>();
        Ok(loader
            .load_one(self.0.id)
            .await
            .map_err(to_gql)?
            .unwrap_or_default()
            .into_iter()
            .map(Reminder)
            .collect())
    }

    /// Shared by every occurrence of a recurring task.
    async fn series_id(&self) -> Option<ID> {
        self.0.series_id.map(|id| ID(id.to_string()))
    }

    /// The occurrence this one was generated from.
    async fn previous_occurrence(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        let Some(prev) = self.0.generated_from_task_id else {
            return Ok(None);
        };
        Ok(service::find_task(db(ctx), &self.0.owner_id, prev)
            .await?
            .map(Task::from))
    }

    /// The occurrence generated from this one, once the recurrence subscriber created it.
    async fn next_occurrence(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        if self.0.series_id.is_none() {
            return Ok(None);
        }
        Ok(
            service::find_successor(db(ctx), &self.0.owner_id, self.0.id)
                .await?
                .map(Task::from),
        )
    }

    /// Increments on every change; pass it as `expectedVersion` for optimistic concurrency.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// Every version of this task, newest first: what each change did, when, and what caused
    /// it. Kept after the task is deleted (see `deletedTasks`), and for
    /// `HISTORY_RETENTION_DAYS`. `first` is 1 to 100 (default 20).
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::task_history::TaskVersionConnection> {
        let page = crate::service::task_history::history(
            db(ctx),
            &self.0.owner_id,
            self.0.id,
            first,
            after.as_deref(),
        )
        .await?;
        Ok(super::task_history::TaskVersionConnection(page))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A task's recurrence rule.
pub struct Recurrence {
    rule: String,
    timezone: String,
    anchor: entities::recurrence::RecurrenceAnchor,
    due_at: Option<DateTime<Utc>>,
    /// The wall-clock time the rule gave this occurrence, when it is not `due_at`'s.
    occurrence_local: Option<NaiveDateTime>,
    /// The wall-clock time the series started at, when this occurrence did not start it.
    series_start_local: Option<NaiveDateTime>,
    /// The position of this occurrence in its series.
    occurrence_index: Option<i32>,
}

#[Object]
impl Recurrence {
    /// RFC 5545 RRULE, e.g. "FREQ=WEEKLY;BYDAY=MO,WE".
    async fn rule(&self) -> &str {
        &self.rule
    }

    /// IANA zone; rule dates are wall-clock times in this zone.
    async fn timezone(&self) -> &str {
        &self.timezone
    }

    async fn anchor(&self) -> RecurrenceAnchor {
        self.anchor.into()
    }

    /// The next `count` dates of the series after this occurrence (1 to 50): what completing
    /// each on time would create. `COUNT` counts from the series' first occurrence, so fewer
    /// dates are returned near its end.
    async fn upcoming(
        &self,
        #[graphql(default = 5)] count: Option<i32>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let count = count.unwrap_or(5);
        let max = i32::try_from(MAX_UPCOMING).unwrap_or(50);
        if !(1..=max).contains(&count) {
            return Err(
                ApiError::invalid("count", format!("count must be between 1 and {max}")).into(),
            );
        }
        let Some(due_at) = self.due_at else {
            return Ok(Vec::new());
        };
        let rule = RecurrenceRule::parse(&self.rule, &self.timezone, self.anchor).map_err(|e| {
            ApiError::internal(anyhow::anyhow!("stored rule no longer parses: {e}"))
        })?;
        let current = Occurrence::stored(
            &rule,
            due_at,
            self.occurrence_local,
            self.series_start_local,
            self.occurrence_index.unwrap_or(1),
        );
        let n = usize::try_from(count).unwrap_or(5);
        crate::service::task::expand_off_the_runtime(move || {
            rule.following(&current, current.due_at, n)
        })
        .await?
        .map(|next| next.into_iter().map(|o| o.due_at).collect())
        .map_err(|e| ApiError::invalid("count", format!("recurrence.upcoming: {e}")).into())
    }
}

/// A reminder of a task.
pub struct Reminder(pub reminder::Model);

#[Object]
impl Reminder {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn minutes_before_due(&self) -> Option<i32> {
        self.0.minutes_before_due
    }

    async fn at(&self) -> Option<DateTime<Utc>> {
        self.0.at
    }

    /// When it fires; null for a relative reminder on a task without a due date.
    async fn fire_at(&self) -> Option<DateTime<Utc>> {
        self.0.fire_at
    }

    async fn status(&self) -> ReminderStatus {
        self.0.status.into()
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct RecurrenceInput {
    /// RFC 5545 RRULE without DTSTART; the task's dueAt starts the series.
    pub rule: String,
    /// IANA zone; defaults to the user's time zone.
    pub timezone: Option<String>,
    #[graphql(default_with = "Some(RecurrenceAnchor::Schedule)")]
    pub anchor: Option<RecurrenceAnchor>,
}

impl From<RecurrenceInput> for service::RecurrenceInput {
    fn from(r: RecurrenceInput) -> Self {
        service::RecurrenceInput {
            rule: r.rule,
            timezone: r.timezone,
            anchor: r.anchor.unwrap_or_default().into(),
        }
    }
}

/// Exactly one of the two fields.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct ReminderInput {
    pub minutes_before_due: Option<i32>,
    pub at: Option<DateTime<Utc>>,
}

impl From<ReminderInput> for service::ReminderInput {
    fn from(r: ReminderInput) -> Self {
        service::ReminderInput {
            minutes_before_due: r.minutes_before_due,
            at: r.at,
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateTaskInput {
    pub title: String,
    pub description: Option<String>,
    #[graphql(default_with = "Some(Priority::None)")]
    pub priority: Option<Priority>,
    pub due_at: Option<DateTime<Utc>>,
    /// Tag names; a missing tag is created.
    pub tags: Option<Vec<String>>,
    /// Requires dueAt.
    pub recurrence: Option<RecurrenceInput>,
    pub reminders: Option<Vec<ReminderInput>>,
}

/// Absent = unchanged, null = clear.
#[derive(InputObject, Clone, Debug, Default)]
pub struct UpdateTaskInput {
    pub title: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub priority: MaybeUndefined<Priority>,
    pub due_at: MaybeUndefined<DateTime<Utc>>,
    /// Replaces the set.
    pub tags: MaybeUndefined<Vec<String>>,
    pub recurrence: MaybeUndefined<RecurrenceInput>,
    pub reminders: MaybeUndefined<Vec<ReminderInput>>,
    /// CONFLICT when it no longer matches the task's version.
    pub expected_version: Option<i32>,
}

fn patch<T, U>(value: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v))),
    }
}

impl From<UpdateTaskInput> for service::TaskPatch {
    fn from(i: UpdateTaskInput) -> Self {
        service::TaskPatch {
            title: patch(i.title, |t| t),
            description: patch(i.description, |d| d),
            priority: patch(i.priority, Into::into),
            due_at: patch(i.due_at, |d| d),
            tags: patch(i.tags, |t| t),
            recurrence: patch(i.recurrence, Into::into),
            reminders: patch(i.reminders, |r| r.into_iter().map(Into::into).collect()),
            expected_version: i.expected_version,
        }
    }
}

#[derive(Default)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// One of the caller's tasks; null when it does not exist or is not the caller's. With
    /// `asOf`, the task as it was at that instant (from its history; also for a task deleted
    /// since): null before it was created and while it was deleted.
    async fn task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<Task>> {
        let user = viewer(ctx)?;
        let Ok(id) = uuid::Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        if let Some(at) = as_of {
            let version = crate::service::task_history::as_of(db(ctx), &user.id, id, at).await?;
            return Ok(version.as_ref().map(Task::past));
        }
        Ok(service::find_task(db(ctx), &user.id, id)
            .await?
            .map(Task::from))
    }

    /// The first `count` dates (1 to 50) of a recurrence that is not saved yet, strictly after
    /// `dueAt`: exactly what `Recurrence.upcoming` returns once a task with this dueAt and
    /// recurrence is saved. `recurrence.timezone` defaults to the caller's time zone, like in
    /// `createTask`. Nothing is written.
    async fn preview_recurrence(
        &self,
        ctx: &Context<'_>,
        recurrence: RecurrenceInput,
        due_at: DateTime<Utc>,
        #[graphql(default = 5)] count: Option<i32>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let cx = change_context(ctx)?;
        let input = service::RecurrenceInput::from(recurrence);
        Ok(service::preview_recurrence(db(ctx), &cx, &input, due_at, count.unwrap_or(5)).await?)
    }
}

#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    async fn create_task(&self, ctx: &Context<'_>, input: CreateTaskInput) -> Result<Task> {
        let cx = change_context(ctx)?;
        let new = service::NewTask {
            title: input.title,
            description: input.description,
            priority: input.priority.unwrap_or_default().into(),
            due_at: input.due_at,
            tags: input.tags,
            recurrence: input.recurrence.map(Into::into),
            reminders: input
                .reminders
                .map(|r| r.into_iter().map(Into::into).collect()),
        };
        Ok(Task::from(service::create_task(db(ctx), &cx, new).await?))
    }

    async fn update_task(&self, ctx: &Context<'_>, id: ID, input: UpdateTaskInput) -> Result<Task> {
        let cx = change_context(ctx)?;
        let id = parse_id("task", &id)?;
        Ok(Task::from(
            service::update_task(db(ctx), &cx, id, input.into()).await?,
        ))
    }

    /// Marks the task completed; completing a completed task changes nothing.
    async fn complete_task(&self, ctx: &Context<'_>, id: ID) -> Result<Task> {
        let cx = change_context(ctx)?;
        let id = parse_id("task", &id)?;
        Ok(Task::from(service::complete_task(db(ctx), &cx, id).await?))
    }

    /// Reopens a completed task; reopening an open task changes nothing.
    async fn reopen_task(&self, ctx: &Context<'_>, id: ID) -> Result<Task> {
        let cx = change_context(ctx)?;
        let id = parse_id("task", &id)?;
        Ok(Task::from(service::reopen_task(db(ctx), &cx, id).await?))
    }

    /// Brings back a deleted task as it was when deleted (same id, fields, tags and pending
    /// reminders), as a new version: its history keeps the deletion. `CONFLICT` if the task is
    /// not deleted.
    async fn restore_task(&self, ctx: &Context<'_>, id: ID) -> Result<Task> {
        let cx = change_context(ctx)?;
        let id = parse_id("task", &id)?;
        Ok(Task::from(
            crate::service::task_history::restore_task(db(ctx), &cx, id).await?,
        ))
    }

    /// Deletes the task and returns its id.
    async fn delete_task(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let cx = change_context(ctx)?;
        let uuid = parse_id("task", &id)?;
        service::delete_task(db(ctx), &cx, uuid).await?;
        Ok(id)
    }

    /// Adds tags to a task, creating missing ones.
    async fn tag_task(&self, ctx: &Context<'_>, task_id: ID, tags: Vec<String>) -> Result<Task> {
        let cx = change_context(ctx)?;
        let id = parse_id("task", &task_id)?;
        Ok(Task::from(
            service::tag_task(db(ctx), &cx, id, &tags).await?,
        ))
    }

    /// Removes tags from a task; names it does not carry are ignored.
    async fn untag_task(&self, ctx: &Context<'_>, task_id: ID, tags: Vec<String>) -> Result<Task> {
        let cx = change_context(ctx)?;
        let id = parse_id("task", &task_id)?;
        Ok(Task::from(
            service::untag_task(db(ctx), &cx, id, &tags).await?,
        ))
    }
}
