//! `task_versions`: the append-only history of tasks, one row per version (the full snapshot
//! of the task after the change), kept after the task is deleted.

use sea_orm::entity::prelude::*;

text_enum! {
    /// What a version did: `task_versions.kind` (`ck_task_versions_kind`) and the GraphQL
    /// `TaskVersion.kind`.
    pub enum VersionKind("task version kind") {
        Created = "CREATED",
        Updated = "UPDATED",
        Completed = "COMPLETED",
        Reopened = "REOPENED",
        Deleted = "DELETED",
        /// A deleted task brought back (`restoreTask`): a new version, history kept.
        Restored = "RESTORED",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub owner_id: String,
    pub kind: VersionKind,
    /// The task after the change (before it, for a deletion), as the `task` of its
    /// `task-events` CloudEvent: JSON of `stream::task_events::TaskSnapshot`.
    pub snapshot: String,
    /// The CloudEvent on `task-events` that announced this version.
    pub event_id: Uuid,
    /// What caused it, when not the owner's own request: `recurrence:<task id>` for an
    /// occurrence the recurrence rule created when that task was completed.
    pub caused_by: Option<String>,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
