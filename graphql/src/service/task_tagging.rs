//! Tagging tasks: adding and removing tags on one task, replacing a task's tag links, and giving
//! tasks a new version when a tag they carry changed. Part of `task`, which re-exports the public
//! items.
//!
//! What it is not: the tags themselves (names, colours, counts) are `service::tag`'s.

use chrono::{DateTime, Utc};
use entities::{limits, task, task_tag};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use stream::task_events::TaskChangeKind;
use uuid::Uuid;

use super::task::{TaskChangeContext, emit, load_for_update};
use super::{begin_write, tag as tags};
use crate::error::{ApiError, ApiResult};

/// Adds tags (creating missing ones) to a task; no-op (no new version) when it has them all.
pub async fn tag_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    names: &[String],
) -> ApiResult<task::Model> {
    let names = tags::validate_tag_names("tags", names)?;
    retag(db, ctx, id, |current| {
        let mut out = current.to_vec();
        for n in &names {
            if !out
                .iter()
                .any(|c| entities::tag::name_key(c) == entities::tag::name_key(n))
            {
                out.push(n.clone());
            }
        }
        out
    })
    .await
}

/// Removes tags from a task; names it does not carry are ignored.
pub async fn untag_task(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    names: &[String],
) -> ApiResult<task::Model> {
    let names = tags::validate_tag_names("tags", names)?;
    let keys: Vec<String> = names.iter().map(|n| entities::tag::name_key(n)).collect();
    retag(db, ctx, id, |current| {
        current
            .iter()
            .filter(|c| !keys.contains(&entities::tag::name_key(c)))
            .cloned()
            .collect()
    })
    .await
}

/// Gives each task a new version and an UPDATED event (used when a tag they carry changed).
pub async fn touch_tasks<C: ConnectionTrait>(
    txn: &C,
    ctx: &TaskChangeContext,
    ids: &[Uuid],
) -> ApiResult<()> {
    let now = entities::to_db_precision(ctx.now);
    for id in ids {
        let current = load_for_update(txn, &ctx.owner_id, *id).await?;
        let updated = bump(txn, &current, now).await?;
        emit(txn, ctx, TaskChangeKind::Updated, &updated).await?;
    }
    Ok(())
}

async fn retag(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    change: impl FnOnce(&[String]) -> Vec<String>,
) -> ApiResult<task::Model> {
    let now = entities::to_db_precision(ctx.now);
    let txn = begin_write(db).await?;
    let current = load_for_update(&txn, &ctx.owner_id, id).await?;
    let before: Vec<String> = tags::tags_of_tasks(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .collect();
    let after = change(&before);
    if after.len() > limits::MAX_TAGS_PER_TASK {
        return Err(ApiError::invalid(
            "tags",
            format!(
                "tags: the task would carry {} tags; the limit is {}",
                after.len(),
                limits::MAX_TAGS_PER_TASK
            ),
        ));
    }
    if after.len() == before.len() && after.iter().all(|a| before.contains(a)) {
        super::commit_and_notify(txn).await?;
        return Ok(current);
    }
    replace_tags(&txn, &ctx.owner_id, id, &after, now).await?;
    let updated = bump(&txn, &current, now).await?;
    emit(&txn, ctx, TaskChangeKind::Updated, &updated).await?;
    super::commit_and_notify(txn).await?;
    Ok(updated)
}

async fn bump<C: ConnectionTrait>(
    txn: &C,
    current: &task::Model,
    now: DateTime<Utc>,
) -> ApiResult<task::Model> {
    let mut row: task::ActiveModel = current.clone().into();
    row.version = Set(current.version + 1);
    row.updated_at = Set(now);
    Ok(row.update(txn).await?)
}

/// Replaces the task's tag links with `names` (creating missing tags); returns the tags.
pub(super) async fn replace_tags<C: ConnectionTrait>(
    txn: &C,
    owner_id: &str,
    task_id: Uuid,
    names: &[String],
    now: DateTime<Utc>,
) -> ApiResult<Vec<entities::tag::Model>> {
    task_tag::Entity::delete_many()
        .filter(task_tag::Column::TaskId.eq(task_id))
        .exec(txn)
        .await?;
    link_tags(txn, owner_id, task_id, names, now).await
}

/// Links a task that has no tags yet (one just created) to `names` (creating missing tags);
/// returns the tags.
pub(super) async fn link_tags<C: ConnectionTrait>(
    txn: &C,
    owner_id: &str,
    task_id: Uuid,
    names: &[String],
    now: DateTime<Utc>,
) -> ApiResult<Vec<entities::tag::Model>> {
    let tag_rows = tags::ensure_tags(txn, owner_id, names, now).await?;
    if !tag_rows.is_empty() {
        task_tag::Entity::insert_many(tag_rows.iter().map(|t| task_tag::ActiveModel {
            task_id: Set(task_id),
            tag_id: Set(t.id),
        }))
        .exec_without_returning(txn)
        .await?;
    }
    Ok(tag_rows)
}
