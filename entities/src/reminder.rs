//! `reminders`: a reminder of a task, relative to its due date or at an absolute time.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub task_id: Uuid,
    pub owner_id: String,
    /// Exactly one of `minutes_before_due` and `at` is set (`ck_reminders_one_kind`).
    pub minutes_before_due: Option<i32>,
    pub at: Option<DateTimeUtc>,
    /// When the reminder fires: `at`, or `due_at - minutes_before_due`; NULL when relative and
    /// the task has no due date.
    pub fire_at: Option<DateTimeUtc>,
    /// `PENDING`, `FIRED`, `CANCELLED` or `MISSED`.
    pub status: crate::reminder_offset::ReminderStatus,
    pub created_at: DateTimeUtc,
    pub fired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::task::Entity",
        from = "Column::TaskId",
        to = "super::task::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
}

impl Related<super::task::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Task.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
