//! The recurrence subscriber: on a completed recurring task, creates exactly one next
//! occurrence.
//!
//! It consumes `task-events` and acts on `COMPLETED` events whose snapshot has a recurrence and
//! a due date; every other event is ignored. The successor is a new task row (the completed one
//! stays as history) with:
//! - a deterministic id, UUID v5 of the predecessor's id in [`SUCCESSOR_NAMESPACE`], and
//!   `generated_from_task_id` = the predecessor (UNIQUE), so a redelivered completion, a second
//!   completion after a reopen, or a concurrent instance can never create a second successor:
//!   when the successor exists the event is ignored and nothing is written;
//! - title, description, priority and recurrence copied from the completed snapshot, the due
//!   date from [`crate::next_occurrence::next_due`], the predecessor's series, and the next
//!   occurrence index;
//! - the predecessor's tags (read from the database by tag id, so a renamed tag is still the
//!   same tag) and its reminders, reset to `PENDING`: relative ones keep their lead time, absolute
//!   ones move by as much as the due date moved;
//! - its `CREATED` events on `task-events` and `task-updates`, whose history event is caused by
//!   the completion event (`causationid`) and shares its `correlationid`.
//!
//! Decisions:
//! - A predecessor deleted before its completion was handled gets no successor: deleting a task
//!   ends its series rather than being resurrected by a late event.
//! - The successor is created even if the predecessor was reopened meanwhile: the completion
//!   happened, and a later completion will not create a second one.
//! - An unparseable record (an unknown priority, anchor or reminder status included: the
//!   snapshot does not deserialise), and a rule that no longer parses or is too expensive to
//!   expand, are permanent errors (parked as dead letters); database errors are transient.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use entities::recurrence::{Occurrence, RecurrenceRule};
use entities::reminder_offset::ReminderStatus;
use entities::{reminder, tag, task, task_tag};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
    TryInsertResult,
};
use stream::CloudEvent;
use stream::consumer::{Handler, HandlerError, HandlerOutcome};
use stream::log::LogRecord;
use stream::task_events::{TaskChangeKind, TaskEventData, TaskSnapshot};
use uuid::Uuid;

use crate::Clock;

/// The consumer name: the key of this subscriber's offsets, processed events and dead letters.
pub const CONSUMER: &str = "recurrence";

/// The CloudEvent types the handler acts on: a completion (the runtime skips the others).
pub const EVENT_TYPES: &[&str] = &[TaskChangeKind::Completed.event_type()];

/// The namespace of successor ids: a successor's id is `Uuid::new_v5(SUCCESSOR_NAMESPACE,
/// predecessor_id.as_bytes())`. Fixed forever: changing it would let a replayed completion
/// create a second successor.
pub const SUCCESSOR_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_3c2a_8e4b_4f57_9a0e_2b7c_5d81_e394);

/// The id of the occurrence generated from `predecessor`.
pub fn successor_id(predecessor: Uuid) -> Uuid {
    Uuid::new_v5(&SUCCESSOR_NAMESPACE, predecessor.as_bytes())
}

/// Creates the next occurrence of completed recurring tasks. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct RecurrenceHandler {
    clock: Clock,
}

impl RecurrenceHandler {
    /// A handler reading "now" from `clock`.
    pub fn new(clock: Clock) -> RecurrenceHandler {
        RecurrenceHandler { clock }
    }
}

impl Handler for RecurrenceHandler {
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
        if TaskChangeKind::from_event_type(&event.event_type) != Some(TaskChangeKind::Completed) {
            return Ok(HandlerOutcome::Ignored);
        }
        let data: TaskEventData = serde_json::from_value(event.data.clone()).map_err(|e| {
            HandlerError::permanent(anyhow!("event {} has invalid task data: {e}", event.id))
        })?;
        if data.kind != TaskChangeKind::Completed {
            return Ok(HandlerOutcome::Ignored);
        }
        create_successor(txn, &event, &data.task, self.clock.now()).await
    }
}

/// Creates the successor of the completed `done` in `txn`, unless it exists, the series is over,
/// or the predecessor is gone.
async fn create_successor(
    txn: &DatabaseTransaction,
    event: &CloudEvent,
    done: &TaskSnapshot,
    now: DateTime<Utc>,
) -> Result<HandlerOutcome, HandlerError> {
    let (Some(recurrence), Some(due_at)) = (&done.recurrence, done.due_at) else {
        return Ok(HandlerOutcome::Ignored);
    };
    let anchor = recurrence.anchor;
    let rule = RecurrenceRule::parse(&recurrence.rule, &recurrence.timezone, anchor)
        .map_err(|e| HandlerError::permanent(anyhow!("task {}: {e}", done.id)))?;
    let current = Occurrence::stored(
        &rule,
        due_at,
        done.occurrence_local,
        done.series_start_local,
        done.occurrence_index.unwrap_or(1),
    );
    let completed_at = done.completed_at.unwrap_or(now);
    let Some(next) = crate::next_occurrence::next_due(&rule, &current, completed_at, now)
        .map_err(|e| HandlerError::permanent(anyhow!("task {}: {e}", done.id)))?
    else {
        tracing::debug!(task = %done.id, "the recurrence series is over");
        return Ok(HandlerOutcome::Ignored);
    };

    if task::Entity::find_by_id(done.id).one(txn).await?.is_none() {
        tracing::debug!(task = %done.id, "the completed task was deleted; no successor");
        return Ok(HandlerOutcome::Ignored);
    }
    let existing = task::Entity::find()
        .filter(task::Column::GeneratedFromTaskId.eq(done.id))
        .one(txn)
        .await?;
    if existing.is_some() {
        return Ok(HandlerOutcome::Ignored);
    }

    let now = entities::to_db_precision(now);
    let id = successor_id(done.id);
    let successor = task::Model {
        id,
        owner_id: done.owner_id.clone(),
        title: done.title.clone(),
        description: done.description.clone(),
        priority: done.priority,
        completed: false,
        completed_at: None,
        due_at: Some(next.due_at),
        recurrence_rule: Some(rule.rule().to_owned()),
        recurrence_timezone: Some(rule.timezone_name().to_owned()),
        recurrence_anchor: Some(anchor),
        series_id: Some(done.series_id.unwrap_or(done.id)),
        occurrence_index: Some(i32::try_from(next.index).unwrap_or(i32::MAX)),
        occurrence_local: next.stored_local(&rule),
        series_start_local: Some(next.start),
        generated_from_task_id: Some(done.id),
        version: 1,
        created_at: now,
        updated_at: now,
        // `Entity::insert` skips `before_save`, which derives these elsewhere.
        search_title: entities::search::document(&done.title),
        search_body: entities::search::document(&done.description),
        title_key: entities::search::title_key(&done.title),
    };
    let active: task::ActiveModel = successor.clone().into();
    let inserted = task::Entity::insert(active)
        .on_conflict_do_nothing_on([task::Column::Id])
        .exec_without_returning(txn)
        .await?;
    if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(HandlerOutcome::Ignored);
    }

    let tags = copy_tags(txn, done.id, id).await?;
    let reminders = copy_reminders(txn, done.id, &successor, due_at, now).await?;

    let snapshot = TaskSnapshot::from_models(&successor, &tags, &reminders);
    stream::outbox::append_change(
        txn,
        TaskChangeKind::Created,
        &snapshot,
        now,
        event.correlationid.clone(),
        Some(event.id.to_string()),
    )
    .await?;
    tracing::info!(
        task = %done.id,
        successor = %id,
        due_at = %next.due_at,
        "created the next occurrence"
    );
    Ok(HandlerOutcome::Applied)
}

/// Gives `to` the tags of `from`; returns them.
async fn copy_tags<C: ConnectionTrait>(
    txn: &C,
    from: Uuid,
    to: Uuid,
) -> Result<Vec<tag::Model>, HandlerError> {
    let tag_ids: Vec<Uuid> = task_tag::Entity::find()
        .filter(task_tag::Column::TaskId.eq(from))
        .all(txn)
        .await?
        .into_iter()
        .map(|row| row.tag_id)
        .collect();
    if tag_ids.is_empty() {
        return Ok(Vec::new());
    }
    task_tag::Entity::insert_many(tag_ids.iter().map(|tag_id| task_tag::ActiveModel {
        task_id: Set(to),
        tag_id: Set(*tag_id),
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(tag::Entity::find()
        .filter(tag::Column::Id.is_in(tag_ids))
        .all(txn)
        .await?)
}

/// Gives `successor` the reminders of `from`, pending again: relative ones keep their lead time,
/// absolute ones move by as much as the due date moved (from `old_due`). Returns them.
async fn copy_reminders<C: ConnectionTrait>(
    txn: &C,
    from: Uuid,
    successor: &task::Model,
    old_due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<reminder::Model>, HandlerError> {
    let originals = reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(from))
        .order_by_asc(reminder::Column::CreatedAt)
        .order_by_asc(reminder::Column::Id)
        .all(txn)
        .await?;
    let shift = successor
        .due_at
        .map_or(chrono::Duration::zero(), |d| d - old_due);
    let copies: Vec<reminder::Model> = originals
        .iter()
        .map(|r| {
            let at = r.at.map(|t| entities::to_db_precision(t + shift));
            let fire_at = match (r.minutes_before_due, at) {
                (_, Some(t)) => Some(t),
                (Some(m), None) => successor
                    .due_at
                    .map(|d| d - chrono::Duration::minutes(i64::from(m))),
                (None, None) => None,
            };
            reminder::Model {
                id: Uuid::now_v7(),
                task_id: successor.id,
                owner_id: successor.owner_id.clone(),
                minutes_before_due: r.minutes_before_due,
                at,
                fire_at,
                status: ReminderStatus::Pending,
                created_at: now,
                fired_at: None,
            }
        })
        .collect();
    if !copies.is_empty() {
        reminder::Entity::insert_many(
            copies
                .iter()
                .cloned()
                .map(Into::<reminder::ActiveModel>::into),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(copies)
}
