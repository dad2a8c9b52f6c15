//! `notifications`: one in-app notification of a user, created from one source event.

use sea_orm::entity::prelude::*;

text_enum! {
    /// What a notification is about: `notifications.kind` (`ck_notifications_kind`), the `kind`
    /// of a `taskstream.notification.created` event, and the GraphQL `Notification.kind`.
    pub enum NotificationKind("notification kind") {
        /// A reminder fired on time.
        ReminderDue = "REMINDER_DUE",
        /// A reminder found later than the lateness.
        ReminderMissed = "REMINDER_MISSED",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: String,
    /// The task it is about; no foreign key, so the task may be gone.
    pub task_id: Option<Uuid>,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// The source event; unique (`uq_notifications_event`): one notification per event.
    #[sea_orm(unique)]
    pub event_id: Uuid,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
    /// The task's due date when the reminder fired; null if it had none (and for
    /// notifications stored before this column existed).
    pub due_at: Option<DateTimeUtc>,
    /// The time the reminder was set for; null for notifications stored before this column
    /// existed.
    pub remind_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
