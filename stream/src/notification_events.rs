//! Notification event types and the data they carry: what the notification subscriber writes
//! on [`crate::topics::NOTIFICATIONS`] (keyed by the owner) for each new in-app notification,
//! and the webhook subscriber and the gateway's live push read.

use chrono::{DateTime, Utc};
use entities::notification::{self, NotificationKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The CloudEvents `type` of a new notification.
pub const NOTIFICATION_CREATED_TYPE: &str = "taskstream.notification.created";

/// The data of a [`NOTIFICATION_CREATED_TYPE`] event: the notification as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    pub id: Uuid,
    pub owner_id: String,
    pub task_id: Option<Uuid>,
    /// `REMINDER_DUE` or `REMINDER_MISSED`; any other name does not deserialise.
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub event_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    /// The task's due date when the reminder fired (absent from events written before it
    /// existed, and when the task had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The time the reminder was set for (absent from events written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<DateTime<Utc>>,
}

impl From<&notification::Model> for NotificationData {
    fn from(n: &notification::Model) -> NotificationData {
        NotificationData {
            id: n.id,
            owner_id: n.owner_id.clone(),
            task_id: n.task_id,
            kind: n.kind,
            title: n.title.clone(),
            body: n.body.clone(),
            event_id: n.event_id,
            created_at: n.created_at,
            read_at: n.read_at,
            due_at: n.due_at,
            remind_at: n.remind_at,
        }
    }
}
