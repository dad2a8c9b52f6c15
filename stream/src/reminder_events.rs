//! Reminder event types and the data they carry: what the reminder scheduler writes on
//! [`crate::topics::REMINDERS`] when a reminder fires (or is found too late), and the
//! notification subscriber reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The CloudEvents `type` of a reminder fired on time (within the lateness).
pub const REMINDER_DUE_TYPE: &str = "taskstream.reminder.due";
/// The CloudEvents `type` of a reminder found later than the lateness (after downtime).
pub const REMINDER_MISSED_TYPE: &str = "taskstream.reminder.missed";

/// A fired reminder is flagged `late` when it fires more than this after its time (a
/// catch-up), so a notifier can word it "was due" rather than "is due".
pub const LATE_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// The data of a `reminders` event ([`REMINDER_DUE_TYPE`] or [`REMINDER_MISSED_TYPE`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReminderDueData {
    pub reminder_id: Uuid,
    pub task_id: Uuid,
    pub owner_id: String,
    pub task_title: String,
    pub due_at: Option<DateTime<Utc>>,
    pub fire_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    /// Fired more than [`LATE_AFTER`] after `fire_at`; always true when missed.
    pub late: bool,
}
