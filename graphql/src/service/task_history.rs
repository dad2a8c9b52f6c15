//! Task history: the versions `stream::outbox::append_change` records in `task_versions` with
//! every change, read back newest first; the task as it was at an instant; the owner's deleted
//! tasks; and restoring one (a new version, `RESTORED`, not a rewrite of history).
//!
//! Every version holds the full snapshot of the task after the change (before it, for a
//! deletion), so what changed is computed here by comparing a version with the one before it
//! ([`changes`]), and no query ever joins the live tables: the history outlives the task.
//! Everything is owner-scoped: another user's task id reads exactly like a missing one.
//!
//! Cursors are base64url (no padding) of `{"v": "h1", "version": n}` (history) and
//! `{"v": "d1", "t": deleted_at, "id": "uuid"}` (deleted tasks); anything else is
//! `BAD_USER_INPUT` naming `after`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use entities::task_version::{self, VersionKind};
use entities::{reminder_offset::ReminderSpec, reminder_offset::ReminderStatus, task};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value as Json, json};
use stream::task_events::{TaskChangeKind, TaskSnapshot};
use uuid::Uuid;

use super::begin_write;
use super::task::TaskChangeContext;
use super::task_list::page_size;
use crate::error::{ApiError, ApiResult};

/// The fields a version's changes are reported on, in this order, by their snapshot (and
/// GraphQL) names.
pub const TRACKED_FIELDS: [&str; 9] = [
    "title",
    "description",
    "priority",
    "dueAt",
    "completed",
    "completedAt",
    "tags",
    "recurrence",
    "reminders",
];

/// One field's value before and after a version (`null` where it had none).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: Json,
    pub new: Json,
}

/// One version of a task, with the snapshot it recorded.
#[derive(Clone, Debug)]
pub struct Version {
    pub row: task_version::Model,
    pub snapshot: TaskSnapshot,
}

impl Version {
    fn from_row(row: task_version::Model) -> ApiResult<Version> {
        let snapshot = serde_json::from_str(&row.snapshot).map_err(|e| {
            ApiError::internal(anyhow::anyhow!(
                "task version {}@{} does not decode: {e}",
                row.task_id,
                row.version
            ))
        })?;
        Ok(Version { row, snapshot })
    }

    /// The task row this version describes.
    pub fn model(&self) -> task::Model {
        self.snapshot.to_model()
    }

    /// What caused this version, in words, when not the owner's own request.
    pub fn caused_by(&self) -> Option<String> {
        let cause = self.row.caused_by.as_deref()?;
        Some(match cause.strip_prefix("recurrence:") {
            Some(task) => format!("created by the recurrence rule from task {task}"),
            None => cause.to_owned(),
        })
    }
}

/// The fields whose values differ between `before` and `after`; for a first version (no
/// `before`), the fields `after` set beyond a new task's defaults (empty text and lists, no
/// priority, not completed).
pub fn changes(before: Option<&TaskSnapshot>, after: &TaskSnapshot) -> Vec<FieldChange> {
    let after = fields(after);
    let before = before.map(fields);
    TRACKED_FIELDS
        .iter()
        .zip(after)
        .enumerate()
        .filter_map(|(i, (field, new))| {
            let old = before.as_ref().map_or(Json::Null, |b| b[i].clone());
            // What a new task has unless told otherwise.
            let empty = |v: &Json| {
                v.is_null() || [json!([]), json!(false), json!(""), json!("NONE")].contains(v)
            };
            let unchanged = match &before {
                Some(_) => old == new,
                None => empty(&new),
            };
            (!unchanged).then_some(FieldChange { field, old, new })
        })
        .collect()
}

/// The tracked fields' values, in [`TRACKED_FIELDS`] order. Reminders are reported by what
/// the owner set (offset or instant) and their status, not their internal ids.
fn fields(s: &TaskSnapshot) -> Vec<Json> {
    let reminders: Vec<Json> = s
        .reminders
        .iter()
        .map(
            |r| json!({ "minutesBeforeDue": r.minutes_before_due, "at": r.at, "status": r.status }),
        )
        .collect();
    vec![
        json!(s.title),
        json!(s.description),
        json!(s.priority),
        json!(s.due_at),
        json!(s.completed),
        json!(s.completed_at),
        json!(s.tags),
        s.recurrence.as_ref().map_or(
            Json::Null,
            |r| json!({ "rule": r.rule, "timezone": r.timezone, "anchor": r.anchor }),
        ),
        json!(reminders),
    ]
}

/// One page of a task's versions, newest first; `previous` holds, for each, the version
/// before it when it was read (for [`changes`]).
#[derive(Clone, Debug)]
pub struct HistoryPage {
    pub versions: Vec<Version>,
    pub previous: Vec<Option<TaskSnapshot>>,
    pub cursors: Vec<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

fn encode(value: Json) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode(text: &str) -> Option<Json> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The position in an `after` cursor of kind `kind` (`"v"` in the cursor), read by `read`;
/// `None` without a cursor, and an error naming `after` for anything else.
fn decode_after<T>(
    after: Option<&str>,
    kind: &str,
    read: impl FnOnce(&Json) -> Option<T>,
) -> ApiResult<Option<T>> {
    after
        .map(|text| {
            decode(text)
                .filter(|v| v["v"] == kind)
                .and_then(|v| read(&v))
                .ok_or_else(|| ApiError::invalid("after", "after: cursor is invalid"))
        })
        .transpose()
}

/// The owner's versions of task `id`, newest first, after cursor `after`; `first` is 1 to 100
/// (default 20). Empty for another user's task or one that never existed.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
    first: Option<i32>,
    after: Option<&str>,
) -> ApiResult<HistoryPage> {
    let size = page_size("first", first)?;
    let before_version = decode_after(after, "h1", |v| i32::try_from(v["version"].as_i64()?).ok())?;
    let mut select = task_version::Entity::find()
        .filter(task_version::Column::TaskId.eq(id))
        .filter(task_version::Column::OwnerId.eq(owner_id));
    if let Some(v) = before_version {
        select = select.filter(task_version::Column::Version.lt(v));
    }
    // One more than the page: it tells whether there is a next page and is the version
    // before the page's last one.
    let rows = select
        .order_by_desc(task_version::Column::Version)
        .limit(size + 1)
        .all(db)
        .await?;
    let mut versions = rows
        .into_iter()
        .map(Version::from_row)
        .collect::<ApiResult<Vec<_>>>()?;
    let has_next_page = versions.len() as u64 > size;
    let previous: Vec<Option<TaskSnapshot>> = (0..versions.len())
        .map(|i| {
            versions
                .get(i + 1)
                .filter(|p| p.row.version == versions[i].row.version - 1)
                .map(|p| p.snapshot.clone())
        })
        .collect();
    versions.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let previous = previous.into_iter().take(versions.len()).collect();
    let cursors = versions
        .iter()
        .map(|v| encode(json!({ "v": "h1", "version": v.row.version })))
        .collect();
    Ok(HistoryPage {
        versions,
        previous,
        cursors,
        has_next_page,
        has_previous_page: before_version.is_some(),
    })
}

/// The owner's task `id` as it was at `at`: its last version recorded at or before that
/// instant, unless that version deleted it. `None` before it existed, while it was deleted,
/// and for another user's task.
pub async fn as_of<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
    at: DateTime<Utc>,
) -> ApiResult<Option<Version>> {
    let row = task_version::Entity::find()
        .filter(task_version::Column::TaskId.eq(id))
        .filter(task_version::Column::OwnerId.eq(owner_id))
        .filter(task_version::Column::ChangedAt.lte(at))
        .order_by_desc(task_version::Column::Version)
        .one(db)
        .await?;
    match row {
        Some(row) if row.kind != VersionKind::Deleted => Ok(Some(Version::from_row(row)?)),
        _ => Ok(None),
    }
}

/// `SELECT 1 FROM task_versions later WHERE` the same task `AND` a higher version: in
/// `EXISTS (...)`, whether the outer `task_versions` row is not its task's newest version.
pub fn newer_version_exists() -> sea_orm::sea_query::SelectStatement {
    let later = Alias::new("later");
    Query::select()
        .expr(Expr::val(1))
        .from_as(task_version::Entity, later.clone())
        .and_where(
            Expr::col((later.clone(), task_version::Column::TaskId))
                .equals((task_version::Entity, task_version::Column::TaskId)),
        )
        .and_where(
            Expr::col((later, task_version::Column::Version)).gt(Expr::col((
                task_version::Entity,
                task_version::Column::Version,
            ))),
        )
        .to_owned()
}

/// A page of the owner's deleted tasks (newest deletion first): the deleting version of each
/// task whose latest version is a deletion.
#[derive(Clone, Debug)]
pub struct DeletedPage {
    pub versions: Vec<Version>,
    pub cursors: Vec<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// The owner's deleted tasks, most recently deleted first, after cursor `after`.
pub async fn deleted_tasks<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    first: Option<i32>,
    after: Option<&str>,
) -> ApiResult<DeletedPage> {
    let size = page_size("first", first)?;
    let cursor = decode_after(after, "d1", |v| {
        let t = DateTime::parse_from_rfc3339(v["t"].as_str()?).ok()?;
        let id = Uuid::parse_str(v["id"].as_str()?).ok()?;
        Some((t.with_timezone(&Utc), id))
    })?;
    let mut select = task_version::Entity::find()
        .filter(task_version::Column::OwnerId.eq(owner_id))
        .filter(task_version::Column::Kind.eq(VersionKind::Deleted))
        .filter(Expr::exists(newer_version_exists()).not());
    if let Some((t, id)) = cursor {
        select = select.filter(
            Condition::any()
                .add(task_version::Column::ChangedAt.lt(t))
                .add(
                    Condition::all()
                        .add(task_version::Column::ChangedAt.eq(t))
                        .add(task_version::Column::TaskId.lt(id)),
                ),
        );
    }
    let rows = select
        .order_by_desc(task_version::Column::ChangedAt)
        .order_by_desc(task_version::Column::TaskId)
        .limit(size + 1)
        .all(db)
        .await?;
    let mut versions = rows
        .into_iter()
        .map(Version::from_row)
        .collect::<ApiResult<Vec<_>>>()?;
    let has_next_page = versions.len() as u64 > size;
    versions.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let cursors = versions
        .iter()
        .map(|v| {
            encode(json!({
                "v": "d1",
                "t": v.row.changed_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                "id": v.row.task_id,
            }))
        })
        .collect();
    Ok(DeletedPage {
        versions,
        cursors,
        has_next_page,
        has_previous_page: cursor.is_some(),
    })
}

/// Brings back the owner's deleted task `id` as it was when deleted: the same id, title,
/// fields, tags (recreated if they were deleted since) and still-pending reminders, at the next
/// version, recorded as `RESTORED` and announced as a created task. `NOT_FOUND` for a task that
/// never existed or is another user's; `CONFLICT` for one that is not deleted.
pub async fn restore_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
) -> ApiResult<task::Model> {
    let now = entities::to_db_precision(ctx.now);
    let txn = begin_write(db).await?;
    let latest = task_version::Entity::find()
        .filter(task_version::Column::TaskId.eq(id))
        .filter(task_version::Column::OwnerId.eq(&ctx.owner_id))
        .order_by_desc(task_version::Column::Version)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("task", &id.to_string()))?;
    if latest.kind != VersionKind::Deleted {
        return Err(not_deleted(id));
    }
    let deleted = Version::from_row(latest)?;
    let mut model = deleted.model();
    model.version = deleted.row.version + 1;
    model.updated_at = now;
    // A concurrent restore of the same task inserted it first: this one restores nothing.
    let row: task::ActiveModel = model.clone().into();
    let inserted = task::Entity::insert(row.reset_all())
        .on_conflict_do_nothing_on([task::Column::Id])
        .exec_without_returning(&txn)
        .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Err(not_deleted(id));
    }
    let restored = model;
    let tag_rows =
        super::task_tagging::link_tags(&txn, &ctx.owner_id, id, &deleted.snapshot.tags, now)
            .await?;
    let specs: Vec<ReminderSpec> = deleted
        .snapshot
        .reminders
        .iter()
        .filter(|r| r.status == ReminderStatus::Pending)
        .filter_map(|r| match (r.minutes_before_due, r.at) {
            (Some(minutes), _) => Some(ReminderSpec::MinutesBeforeDue(minutes)),
            (None, Some(at)) => Some(ReminderSpec::At(at)),
            (None, None) => None,
        })
        .collect();
    let reminder_rows = super::task_reminders::add_reminders(&txn, &restored, &specs, now).await?;
    let snapshot = TaskSnapshot::from_models(&restored, &tag_rows, &reminder_rows);
    stream::outbox::append_change_as(
        &txn,
        TaskChangeKind::Created,
        VersionKind::Restored,
        &snapshot,
        now,
        ctx.correlation_id.clone(),
        None,
    )
    .await?;
    super::commit_and_notify(txn).await?;
    Ok(restored)
}

fn not_deleted(id: Uuid) -> ApiError {
    ApiError::Conflict {
        message: format!("id: task {id} is not deleted; only a deleted task can be restored"),
        field: Some("id".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use entities::priority::Priority;
    use serde_json::json;
    use stream::task_events::TaskSnapshot;
    use uuid::Uuid;

    use super::changes;

    fn snapshot() -> TaskSnapshot {
        let t = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        TaskSnapshot {
            id: Uuid::nil(),
            owner_id: "alice".into(),
            title: "Pay rent".into(),
            description: String::new(),
            priority: Priority::None,
            completed: false,
            completed_at: None,
            due_at: None,
            tags: vec![],
            recurrence: None,
            reminders: vec![],
            series_id: None,
            occurrence_index: None,
            occurrence_local: None,
            series_start_local: None,
            generated_from_task_id: None,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn a_first_version_reports_the_fields_it_set_and_nothing_empty() {
        let mut s = snapshot();
        s.tags = vec!["home".into()];
        let fields: Vec<&str> = changes(None, &s).iter().map(|c| c.field).collect();
        assert_eq!(fields, ["title", "tags"]);
        assert!(changes(None, &s).iter().all(|c| c.old.is_null()));
    }

    #[test]
    fn a_later_version_reports_old_and_new_values_of_what_changed_only() {
        let before = snapshot();
        let mut after = before.clone();
        after.title = "Pay the rent".into();
        after.tags = vec!["home".into(), "money".into()];
        after.version = 2;
        let found = changes(Some(&before), &after);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].field, "title");
        assert_eq!(
            (found[0].old.clone(), found[0].new.clone()),
            (json!("Pay rent"), json!("Pay the rent"))
        );
        assert_eq!(found[1].field, "tags");
        assert_eq!(found[1].new, json!(["home", "money"]));
        assert!(
            changes(Some(&after), &after).is_empty(),
            "no change, nothing reported"
        );
    }
}
