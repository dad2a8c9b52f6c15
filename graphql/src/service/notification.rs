//! The in-app inbox: a user's notifications, newest first, keyset-paged over
//! `(created_at, id)`, and marking one read.
//!
//! A cursor is base64url (no padding) of `{"v": "n1", "t": created_at, "id": "uuid"}`; anything
//! else handed back as `after` is `BAD_USER_INPUT` naming `after`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use entities::notification;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::task_list::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::error::{ApiError, ApiResult};

/// Bumped whenever the cursor layout changes, so that old cursors are rejected cleanly.
const CURSOR_VERSION: &str = "n1";

/// Which of the owner's notifications a list shows.
#[derive(Clone, Debug)]
pub struct NotificationListQuery {
    pub owner_id: String,
    pub unread_only: bool,
}

/// One page of notifications, newest first, with each row's cursor.
#[derive(Clone, Debug)]
pub struct NotificationPage {
    pub rows: Vec<notification::Model>,
    pub cursors: Vec<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// The cursor of a row.
pub fn encode_cursor(row: &notification::Model) -> String {
    let body = json!({
        "v": CURSOR_VERSION,
        "t": row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "id": row.id.to_string(),
    });
    URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_cursor(text: &str) -> ApiResult<(DateTime<Utc>, Uuid)> {
    let decoded = (|| {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let body: Json = serde_json::from_slice(&bytes).ok()?;
        if body.get("v")?.as_str()? != CURSOR_VERSION {
            return None;
        }
        let t = DateTime::parse_from_rfc3339(body.get("t")?.as_str()?)
            .ok()?
            .with_timezone(&Utc);
        let id = Uuid::parse_str(body.get("id")?.as_str()?).ok()?;
        Some((t, id))
    })();
    decoded.ok_or_else(|| ApiError::invalid("after", "after: cursor is invalid"))
}

fn page_size(first: Option<i32>) -> ApiResult<u64> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "first",
                    format!("first must be between 1 and {MAX_PAGE_SIZE}, not {n}"),
                )
            }),
    }
}

fn scoped(query: &NotificationListQuery) -> Select<notification::Entity> {
    let mut select =
        notification::Entity::find().filter(notification::Column::OwnerId.eq(&query.owner_id));
    if query.unread_only {
        select = select.filter(notification::Column::ReadAt.is_null());
    }
    select
}

/// A page of the owner's notifications, newest first (`created_at`, then `id`, descending),
/// after the row of cursor `after`. `first` is 1 to 100 (default 20).
pub async fn list_notifications<C: ConnectionTrait>(
    db: &C,
    query: &NotificationListQuery,
    first: Option<i32>,
    after: Option<&str>,
) -> ApiResult<NotificationPage> {
    let size = page_size(first)?;
    let cursor = after.map(decode_cursor).transpose()?;
    let mut select = scoped(query);
    if let Some((t, id)) = cursor {
        select = select.filter(
            Condition::any()
                .add(notification::Column::CreatedAt.lt(t))
                .add(
                    Condition::all()
                        .add(notification::Column::CreatedAt.eq(t))
                        .add(notification::Column::Id.lt(id)),
                ),
        );
    }
    let mut rows = select
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(size + 1)
        .all(db)
        .await?;
    let has_next_page = rows.len() as u64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let cursors = rows.iter().map(encode_cursor).collect();
    Ok(NotificationPage {
        rows,
        cursors,
        has_next_page,
        has_previous_page: cursor.is_some(),
    })
}

/// How many notifications the list holds, ignoring paging.
pub async fn count_notifications<C: ConnectionTrait>(
    db: &C,
    query: &NotificationListQuery,
) -> ApiResult<u64> {
    Ok(scoped(query).count(db).await?)
}

/// Marks one of the owner's notifications read (idempotent: a read one keeps its `read_at`).
/// NOT_FOUND for an unknown id or another user's notification.
pub async fn mark_read<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<notification::Model> {
    notification::Entity::update_many()
        .col_expr(
            notification::Column::ReadAt,
            Expr::value(entities::to_db_precision(now)),
        )
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::OwnerId.eq(owner_id))
        .filter(notification::Column::ReadAt.is_null())
        .exec(db)
        .await?;
    notification::Entity::find_by_id(id)
        .filter(notification::Column::OwnerId.eq(owner_id))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("notification", &id.to_string()))
}
