//! `tasks`: one row per task (each occurrence of a recurring task is its own row).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning user's id (JWT subject). Every query is scoped by it.
    pub owner_id: String,
    pub title: String,
    pub description: String,
    /// [`crate::priority::Priority::rank`]: 0 (NONE) to 4 (URGENT), so sorting by rank is a
    /// plain integer sort.
    pub priority: i16,
    pub completed: bool,
    pub completed_at: Option<DateTimeUtc>,
    pub due_at: Option<DateTimeUtc>,
    /// RFC 5545 RRULE body (without the `RRULE:` prefix), validated on write.
    pub recurrence_rule: Option<String>,
    /// IANA zone the rule is evaluated in; set whenever `recurrence_rule` is.
    pub recurrence_timezone: Option<String>,
    /// `SCHEDULE` or `COMPLETION`; set whenever `recurrence_rule` is.
    pub recurrence_anchor: Option<String>,
    /// Shared by every occurrence of a recurring series (the first occurrence's id).
    pub series_id: Option<Uuid>,
    pub occurrence_index: Option<i32>,
    /// The completed occurrence this one was generated from. UNIQUE: at most one successor.
    #[sea_orm(unique)]
    pub generated_from_task_id: Option<Uuid>,
    /// Incremented on every change; the `aggregateversion` of the task's events.
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::task_tag::Entity")]
    TaskTag,
    #[sea_orm(has_many = "super::reminder::Entity")]
    Reminder,
}

impl Related<super::task_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TaskTag.def()
    }
}

impl Related<super::reminder::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Reminder.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
