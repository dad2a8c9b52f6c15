//! Task history in the API: `TaskVersion` (one version: kind, when, what changed, the task as
//! it was), its connection (`Task.history`), and the `deletedTasks` query. `task(id, asOf)`
//! and `restoreTask` live with the other task fields in `super::task`.

use async_graphql::{Context, Enum, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::task::Task;
use super::task_list::PageInfo;
use super::{db, viewer};
use crate::service::task_history::{self as service, DeletedPage, HistoryPage, Version};

/// What a version of a task did.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entities::task_version::VersionKind")]
pub enum TaskVersionKind {
    Created,
    Updated,
    Completed,
    Reopened,
    Deleted,
    /// A deleted task brought back by `restoreTask`.
    Restored,
}

/// One field of a task before and after a version; `old` is null in a task's first version.
/// Values are JSON as the field's GraphQL value would be (`tags` a list of names,
/// `recurrence` `{rule, timezone, anchor}`, `reminders` a list of
/// `{minutesBeforeDue, at, status}`).
#[derive(SimpleObject)]
pub struct FieldChange {
    /// `title`, `description`, `priority`, `dueAt`, `completed`, `completedAt`, `tags`,
    /// `recurrence` or `reminders`.
    pub field: String,
    pub old: Json<serde_json::Value>,
    pub new: Json<serde_json::Value>,
}

/// One version of a task.
pub struct TaskVersion {
    version: Version,
    previous: Option<stream::task_events::TaskSnapshot>,
}

#[Object]
impl TaskVersion {
    /// The task's `version` after this change (for a deletion, one past the last).
    async fn version(&self) -> i32 {
        self.version.row.version
    }

    async fn kind(&self) -> TaskVersionKind {
        self.version.row.kind.into()
    }

    /// When the change was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.version.row.changed_at
    }

    /// The fields this version changed, with their old and new values. Empty for a deletion
    /// and a restore (they change no field), and when the version before it is no longer kept.
    async fn changes(&self) -> Vec<FieldChange> {
        if matches!(
            self.version.row.kind,
            entities::task_version::VersionKind::Deleted
                | entities::task_version::VersionKind::Restored
        ) {
            return Vec::new();
        }
        let first = self.version.row.kind == entities::task_version::VersionKind::Created;
        if self.previous.is_none() && !first {
            return Vec::new();
        }
        service::changes(self.previous.as_ref(), &self.version.snapshot)
            .into_iter()
            .map(|c| FieldChange {
                field: c.field.to_owned(),
                old: Json(c.old),
                new: Json(c.new),
            })
            .collect()
    }

    /// What caused the change when it was not the owner's own request, e.g. "created by the
    /// recurrence rule from task <id>".
    async fn caused_by(&self) -> Option<String> {
        self.version.caused_by()
    }

    /// The task as this version left it (as it was just before, for a deletion).
    async fn task(&self) -> Task {
        Task::past(&self.version)
    }
}

/// A page of a task's versions, newest first.
pub struct TaskVersionConnection(pub HistoryPage);

#[Object]
impl TaskVersionConnection {
    async fn nodes(&self) -> Vec<TaskVersion> {
        self.0
            .versions
            .iter()
            .zip(&self.0.previous)
            .map(|(version, previous)| TaskVersion {
                version: version.clone(),
                previous: previous.clone(),
            })
            .collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_next_page,
            has_previous_page: self.0.has_previous_page,
            start_cursor: self.0.cursors.first().cloned(),
            end_cursor: self.0.cursors.last().cloned(),
        }
    }
}

/// A deleted task: as it was when deleted.
pub struct DeletedTask(Version);

#[Object]
impl DeletedTask {
    async fn task(&self) -> Task {
        Task::past(&self.0)
    }

    async fn deleted_at(&self) -> DateTime<Utc> {
        self.0.row.changed_at
    }
}

/// A page of deleted tasks, most recently deleted first.
pub struct DeletedTaskConnection(DeletedPage);

#[Object]
impl DeletedTaskConnection {
    async fn nodes(&self) -> Vec<DeletedTask> {
        self.0.versions.iter().cloned().map(DeletedTask).collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_next_page,
            has_previous_page: self.0.has_previous_page,
            start_cursor: self.0.cursors.first().cloned(),
            end_cursor: self.0.cursors.last().cloned(),
        }
    }
}

#[derive(Default)]
pub struct TaskHistoryQuery;

#[Object]
impl TaskHistoryQuery {
    /// The caller's deleted tasks (not restored since), most recently deleted first; restore
    /// one with `restoreTask`. `first` is 1 to 100 (default 20).
    async fn deleted_tasks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<DeletedTaskConnection> {
        let user = viewer(ctx)?;
        let page = service::deleted_tasks(db(ctx), &user.id, first, after.as_deref()).await?;
        Ok(DeletedTaskConnection(page))
    }
}
