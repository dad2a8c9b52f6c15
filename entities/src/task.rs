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
    /// Stored as [`crate::priority::Priority::rank`]: 0 (NONE) to 4 (URGENT), so sorting by
    /// rank is a plain integer sort.
    pub priority: crate::priority::Priority,
    pub completed: bool,
    pub completed_at: Option<DateTimeUtc>,
    pub due_at: Option<DateTimeUtc>,
    /// RFC 5545 RRULE body (without the `RRULE:` prefix), validated on write.
    pub recurrence_rule: Option<String>,
    /// IANA zone the rule is evaluated in; set whenever `recurrence_rule` is.
    pub recurrence_timezone: Option<String>,
    /// `SCHEDULE` or `COMPLETION`; set whenever `recurrence_rule` is.
    pub recurrence_anchor: Option<crate::recurrence::RecurrenceAnchor>,
    /// Shared by every occurrence of a recurring series (the first occurrence's id).
    pub series_id: Option<Uuid>,
    pub occurrence_index: Option<i32>,
    /// The wall-clock time, in the rule's zone, that the rule gave this occurrence; `None` when
    /// it is the local time of `due_at` (see [`crate::recurrence::Occurrence::local`]).
    pub occurrence_local: Option<DateTime>,
    /// The wall-clock time its series started at (the rule's DTSTART); `None` when this
    /// occurrence started it (see [`crate::recurrence::Occurrence::start`]).
    pub series_start_local: Option<DateTime>,
    /// The completed occurrence this one was generated from. UNIQUE: at most one successor.
    #[sea_orm(unique)]
    pub generated_from_task_id: Option<Uuid>,
    /// Incremented on every change; the `aggregateversion` of the task's events.
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The title's search words ([`crate::search::document`]), derived from `title` on every
    /// write (see `before_save` below); the full-text index is built from them.
    pub search_title: String,
    /// The description's search words ([`crate::search::document`]), derived likewise.
    pub search_body: String,
    /// The title's sort key ([`crate::search::title_key`]), derived likewise; `TITLE` sorts
    /// by its bytes.
    pub title_key: String,
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

/// Keeps the derived search columns in step: whenever a title or description is written
/// through an `ActiveModel` (insert or update), its search words and sort key are written with
/// it. A `Model` inserted with `Entity::insert` skips this hook, so such code must fill the
/// columns itself (`search_title: search::document(&title)`, ...).
#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    async fn before_save<C>(mut self, _db: &C, _insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if let sea_orm::ActiveValue::Set(title) = &self.title {
            self.search_title = sea_orm::ActiveValue::Set(crate::search::document(title));
            self.title_key = sea_orm::ActiveValue::Set(crate::search::title_key(title));
        }
        if let sea_orm::ActiveValue::Set(description) = &self.description {
            self.search_body = sea_orm::ActiveValue::Set(crate::search::document(description));
        }
        Ok(self)
    }
}
