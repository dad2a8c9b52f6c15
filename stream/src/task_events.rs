//! Task event types and the task snapshot they carry.
//!
//! Every task change produces one event on [`crate::topics::TASK_EVENTS`] (the history) and one
//! on [`crate::topics::TASK_UPDATES`] (latest state; a deletion carries `data: null` and the
//! relay turns it into a tombstone). Both carry the full post-change snapshot so that consumers
//! never need to read the database to know what happened.
//!
//! The snapshot's priority, recurrence anchor and reminder statuses are the `entities` enums,
//! carried by their names (`HIGH`, `SCHEDULE`, `PENDING`, ...): an event with any other name
//! does not deserialise, and consumers park it as a dead letter rather than read a default.

use chrono::{DateTime, NaiveDateTime, Utc};
use entities::priority::Priority;
use entities::recurrence::RecurrenceAnchor;
use entities::reminder_offset::ReminderStatus;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::CloudEvent;

/// What happened to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskChangeKind {
    Created,
    Updated,
    Completed,
    Reopened,
    Deleted,
}

impl TaskChangeKind {
    /// The CloudEvents `type` on `task-events`.
    pub const fn event_type(self) -> &'static str {
        match self {
            TaskChangeKind::Created => "taskstream.task.created",
            TaskChangeKind::Updated => "taskstream.task.updated",
            TaskChangeKind::Completed => "taskstream.task.completed",
            TaskChangeKind::Reopened => "taskstream.task.reopened",
            TaskChangeKind::Deleted => "taskstream.task.deleted",
        }
    }

    /// Parses a `task-events` type back into a kind.
    pub fn from_event_type(event_type: &str) -> Option<TaskChangeKind> {
        [
            TaskChangeKind::Created,
            TaskChangeKind::Updated,
            TaskChangeKind::Completed,
            TaskChangeKind::Reopened,
            TaskChangeKind::Deleted,
        ]
        .into_iter()
        .find(|k| k.event_type() == event_type)
    }
}

/// The CloudEvents `type` of every record on `task-updates`.
pub const TASK_STATE_TYPE: &str = "taskstream.task.state";

/// A task's recurrence in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrenceSnapshot {
    pub rule: String,
    pub timezone: String,
    pub anchor: RecurrenceAnchor,
}

/// A reminder in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReminderSnapshot {
    pub id: Uuid,
    pub minutes_before_due: Option<i32>,
    pub at: Option<DateTime<Utc>>,
    pub fire_at: Option<DateTime<Utc>>,
    pub status: ReminderStatus,
}

/// The full state of a task after a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSnapshot {
    pub id: Uuid,
    pub owner_id: String,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    /// Tag names, sorted case-insensitively.
    pub tags: Vec<String>,
    pub recurrence: Option<RecurrenceSnapshot>,
    pub reminders: Vec<ReminderSnapshot>,
    pub series_id: Option<Uuid>,
    pub occurrence_index: Option<i32>,
    /// The wall-clock time, in the rule's zone, that the recurrence rule gave this occurrence,
    /// when it is not the local time of `dueAt` (the rule's time fell in a daylight-saving gap);
    /// absent otherwise. The next occurrence is computed from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence_local: Option<NaiveDateTime>,
    /// The wall-clock time its series started at, when this occurrence did not start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_start_local: Option<NaiveDateTime>,
    pub generated_from_task_id: Option<Uuid>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TaskSnapshot {
    /// The task row this snapshot describes (the derived search columns computed as
    /// `entities::task`'s `before_save` would).
    pub fn to_model(&self) -> entities::task::Model {
        let s = self;
        let recurrence = s.recurrence.as_ref();
        entities::task::Model {
            id: s.id,
            owner_id: s.owner_id.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            priority: s.priority,
            completed: s.completed,
            completed_at: s.completed_at,
            due_at: s.due_at,
            recurrence_rule: recurrence.map(|r| r.rule.clone()),
            recurrence_timezone: recurrence.map(|r| r.timezone.clone()),
            recurrence_anchor: recurrence.map(|r| r.anchor),
            series_id: s.series_id,
            occurrence_index: s.occurrence_index,
            occurrence_local: s.occurrence_local,
            series_start_local: s.series_start_local,
            generated_from_task_id: s.generated_from_task_id,
            version: s.version,
            created_at: s.created_at,
            updated_at: s.updated_at,
            search_title: entities::search::document(&s.title),
            search_body: entities::search::document(&s.description),
            title_key: entities::search::title_key(&s.title),
        }
    }

    /// Builds the snapshot from the stored rows.
    pub fn from_models(
        task: &entities::task::Model,
        tags: &[entities::tag::Model],
        reminders: &[entities::reminder::Model],
    ) -> TaskSnapshot {
        let mut tag_names: Vec<String> = tags.iter().map(|t| t.name.clone()).collect();
        tag_names.sort_by_key(|n| n.to_lowercase());
        let recurrence = match (
            &task.recurrence_rule,
            &task.recurrence_timezone,
            &task.recurrence_anchor,
        ) {
            (Some(rule), Some(tz), Some(anchor)) => Some(RecurrenceSnapshot {
                rule: rule.clone(),
                timezone: tz.clone(),
                anchor: *anchor,
            }),
            _ => None,
        };
        TaskSnapshot {
            id: task.id,
            owner_id: task.owner_id.clone(),
            title: task.title.clone(),
            description: task.description.clone(),
            priority: task.priority,
            completed: task.completed,
            completed_at: task.completed_at,
            due_at: task.due_at,
            tags: tag_names,
            recurrence,
            reminders: reminders
                .iter()
                .map(|r| ReminderSnapshot {
                    id: r.id,
                    minutes_before_due: r.minutes_before_due,
                    at: r.at,
                    fire_at: r.fire_at,
                    status: r.status,
                })
                .collect(),
            series_id: task.series_id,
            occurrence_index: task.occurrence_index,
            occurrence_local: task.occurrence_local,
            series_start_local: task.series_start_local,
            generated_from_task_id: task.generated_from_task_id,
            version: task.version,
            created_at: task.created_at,
            updated_at: task.updated_at,
        }
    }
}

/// The data of a `task-events` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEventData {
    pub kind: TaskChangeKind,
    pub task_id: Uuid,
    /// The state after the change; for `DELETED`, the state just before deletion.
    pub task: TaskSnapshot,
}

/// The pair of events one task change produces: (task-events, task-updates).
pub fn task_change_events(
    kind: TaskChangeKind,
    snapshot: &TaskSnapshot,
    now: DateTime<Utc>,
    correlation_id: Option<String>,
) -> Result<(CloudEvent, CloudEvent), serde_json::Error> {
    let subject = snapshot.id.to_string();
    let version = i64::from(snapshot.version);
    let history = CloudEvent::new(
        kind.event_type(),
        subject.clone(),
        now,
        serde_json::to_value(TaskEventData {
            kind,
            task_id: snapshot.id,
            task: snapshot.clone(),
        })?,
    )
    .with_version(version)
    .with_correlation(correlation_id.clone());
    let state_data = if kind == TaskChangeKind::Deleted {
        serde_json::Value::Null
    } else {
        serde_json::to_value(snapshot)?
    };
    let mut state = CloudEvent::new(TASK_STATE_TYPE, subject, now, state_data)
        .with_version(version)
        .with_correlation(correlation_id);
    state.causationid = Some(history.id.to_string());
    Ok((history, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for k in [
            TaskChangeKind::Created,
            TaskChangeKind::Updated,
            TaskChangeKind::Completed,
            TaskChangeKind::Reopened,
            TaskChangeKind::Deleted,
        ] {
            assert_eq!(TaskChangeKind::from_event_type(k.event_type()), Some(k));
        }
        assert_eq!(
            TaskChangeKind::from_event_type("taskstream.task.exploded"),
            None
        );
    }

    fn snapshot_json() -> serde_json::Value {
        serde_json::json!({
            "id": "01900000-0000-7000-8000-000000000001",
            "ownerId": "alice",
            "title": "t",
            "description": "",
            "priority": "HIGH",
            "completed": false,
            "completedAt": null,
            "dueAt": "2030-01-07T09:00:00Z",
            "tags": [],
            "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC", "anchor": "COMPLETION" },
            "reminders": [{
                "id": "01900000-0000-7000-8000-000000000002",
                "minutesBeforeDue": 30,
                "at": null,
                "fireAt": "2030-01-07T08:30:00Z",
                "status": "FIRED"
            }],
            "seriesId": null,
            "occurrenceIndex": null,
            "generatedFromTaskId": null,
            "version": 1,
            "createdAt": "2030-01-01T00:00:00Z",
            "updatedAt": "2030-01-01T00:00:00Z"
        })
    }

    #[test]
    fn the_snapshot_keeps_its_wire_names() {
        let json = snapshot_json();
        let snapshot: TaskSnapshot = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(snapshot.priority, Priority::High);
        assert_eq!(
            snapshot.recurrence.as_ref().map(|r| r.anchor),
            Some(RecurrenceAnchor::Completion)
        );
        assert_eq!(snapshot.reminders[0].status, ReminderStatus::Fired);
        assert_eq!(serde_json::to_value(&snapshot).unwrap(), json);
    }

    #[test]
    fn a_snapshot_with_an_unknown_name_does_not_decode() {
        for (pointer, value, message) in [
            ("/priority", "WHENEVER", "unknown priority \"WHENEVER\""),
            ("/priority", "high", "unknown priority \"high\""),
            (
                "/recurrence/anchor",
                "SOMETIMES",
                "unknown recurrence anchor",
            ),
            ("/reminders/0/status", "SNOOZED", "unknown reminder status"),
        ] {
            let mut json = snapshot_json();
            *json.pointer_mut(pointer).unwrap() = serde_json::json!(value);
            let error = serde_json::from_value::<TaskSnapshot>(json)
                .unwrap_err()
                .to_string();
            assert!(error.contains(message), "{pointer}: {error}");
        }
    }
}
