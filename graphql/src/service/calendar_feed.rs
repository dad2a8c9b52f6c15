//! Calendar feeds: a user's secret iCalendar URLs (create, list, revoke) and what a feed
//! serves (its tasks, found by the secret's hash). GraphQL- and HTTP-free; the body itself is
//! written by `crate::calendar::document`.
//!
//! Decisions:
//! - The secret is 256 random bits from the operating system, in base64url (43 characters);
//!   only its SHA-256 is stored (`secret_hash`), so a copy of the database serves no feed. A
//!   request is looked up by the hash of whatever it holds, one indexed equality, whatever the
//!   text: nothing about a wrong secret is decided before that lookup, and what the lookup's
//!   timing could reveal is about hashes, which tell nothing of secrets.
//! - The filter is the `TaskFilter` of `tasks(filter:)`, validated exactly as there when the
//!   feed is created (errors name `filter...`), stored as JSON and applied on every request
//!   with that request's time (`overdue`). A tag it excludes that is deleted later excludes
//!   nothing. The feed always adds: open (not completed) and with a due date.
//! - A feed lists at most [`MAX_FEED_ENTRIES`] tasks, the earliest due first; a user has at
//!   most [`MAX_FEEDS_PER_USER`] feeds. Revoking deletes the row: the URL is dead at once.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};
use entities::calendar_feed;
use entities::{reminder, tag, task};
use rand::RngCore as _;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::task::TaskChangeContext;
use super::task_filter::{self, TaskFilterSpec};
use crate::error::{ApiError, ApiResult};

/// Longest feed name, in characters: a label in a calendar app's list.
pub const MAX_FEED_NAME_CHARS: usize = 100;

/// Most feeds one user may have: a few per device or per filter, and a bound on rows.
pub const MAX_FEEDS_PER_USER: u64 = 20;

/// Most tasks one feed serves (the earliest due first): calendar apps handle a few thousand
/// entries, and one request renders at most this many.
pub const MAX_FEED_ENTRIES: u64 = 1_000;

/// Random bytes in a secret: 256 bits, beyond guessing.
const SECRET_BYTES: usize = 32;

/// A new feed and its secret, which exists only in this value (and the response).
#[derive(Debug)]
pub struct CreatedFeed {
    pub feed: calendar_feed::Model,
    pub secret: String,
}

/// What one feed serves: its tasks in due order, their tags and their reminders.
#[derive(Debug, Default)]
pub struct FeedTasks {
    pub tasks: Vec<task::Model>,
    pub tags: HashMap<Uuid, Vec<tag::Model>>,
    pub reminders: HashMap<Uuid, Vec<reminder::Model>>,
    /// Whether more tasks matched than [`MAX_FEED_ENTRIES`].
    pub truncated: bool,
}

/// SHA-256 of a secret (or of anything a request holds in its place), lower-case hex.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_secret() -> String {
    let mut bytes = [0_u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Validates a feed's name: trimmed, not empty, at most [`MAX_FEED_NAME_CHARS`], no NUL.
pub fn validate_name(field: &str, name: &str) -> ApiResult<String> {
    entities::limits::required_text(field, name, MAX_FEED_NAME_CHARS).map_err(ApiError::at(field))
}

/// Validates a feed's filter as `tasks(filter:)` does, including its tag names against the
/// owner's tags (an unknown tag in `none` is an error naming `filter...tags.none`); returns it
/// as the JSON stored.
async fn validate_filter<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    filter: &TaskFilterSpec,
    now: DateTime<Utc>,
) -> ApiResult<String> {
    let keys = task_filter::validate_filter(filter)?;
    let tag_ids = super::task_list::resolve_tags(db, owner_id, keys).await?;
    task_filter::filter_condition(filter, &tag_ids, now)?;
    serde_json::to_string(filter).map_err(ApiError::internal)
}

/// Creates a feed for `cx.owner_id`. Everything is validated before anything is written.
pub async fn create_feed(
    db: &DatabaseConnection,
    cx: &TaskChangeContext,
    name: &str,
    filter: Option<&TaskFilterSpec>,
) -> ApiResult<CreatedFeed> {
    let name = validate_name("name", name)?;
    let filter = match filter {
        Some(filter) => Some(validate_filter(db, &cx.owner_id, filter, cx.now).await?),
        None => None,
    };
    let secret = new_secret();
    let now = entities::to_db_precision(cx.now);
    let txn = super::begin_write(db).await?;
    super::user::ensure_exists_once(&txn, &cx.known_users, &cx.owner_id, now).await?;
    // Two concurrent creations must not both pass the count: the user's row is the lock
    // (SQLite's write transaction already serialises them).
    if crate::db::is_postgres(&txn) {
        entities::user::Entity::find_by_id(cx.owner_id.clone())
            .lock_exclusive()
            .one(&txn)
            .await?;
    }
    let existing = calendar_feed::Entity::find()
        .filter(calendar_feed::Column::OwnerId.eq(cx.owner_id.as_str()))
        .count(&txn)
        .await?;
    if existing >= MAX_FEEDS_PER_USER {
        return Err(ApiError::Conflict {
            message: format!(
                "you have {existing} calendar feeds, the most allowed \
                 ({MAX_FEEDS_PER_USER}); revoke one first"
            ),
            field: None,
        });
    }
    let feed = calendar_feed::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(cx.owner_id.clone()),
        name: Set(name),
        secret_hash: Set(secret_hash(&secret)),
        filter: Set(filter),
        created_at: Set(now),
        content_etag: Set(None),
        content_changed_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    cx.known_users.insert(&cx.owner_id);
    Ok(CreatedFeed { feed, secret })
}

/// The owner's feeds, oldest first.
pub async fn list_feeds<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
) -> ApiResult<Vec<calendar_feed::Model>> {
    Ok(calendar_feed::Entity::find()
        .filter(calendar_feed::Column::OwnerId.eq(owner_id))
        .order_by_asc(calendar_feed::Column::CreatedAt)
        .order_by_asc(calendar_feed::Column::Id)
        .all(db)
        .await?)
}

/// Deletes one of the owner's feeds; another user's feed is NOT_FOUND like a missing one.
pub async fn revoke_feed<C: ConnectionTrait>(db: &C, owner_id: &str, id: Uuid) -> ApiResult<()> {
    let deleted = calendar_feed::Entity::delete_many()
        .filter(calendar_feed::Column::Id.eq(id))
        .filter(calendar_feed::Column::OwnerId.eq(owner_id))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(ApiError::not_found("calendar feed", &id.to_string()));
    }
    Ok(())
}

/// The feed whose secret is `candidate`, if any: one lookup by the candidate's hash.
pub async fn find_by_secret<C: ConnectionTrait>(
    db: &C,
    candidate: &str,
) -> ApiResult<Option<calendar_feed::Model>> {
    Ok(calendar_feed::Entity::find()
        .filter(calendar_feed::Column::SecretHash.eq(secret_hash(candidate)))
        .one(db)
        .await?)
}

/// The tasks `feed` serves at `now`: the owner's open tasks with a due date that match its
/// filter, the earliest due first (ties by id), at most [`MAX_FEED_ENTRIES`], with their tags
/// and reminders. One query for the tasks (plus one for tag names when the filter has any),
/// one for the tags and one for the reminders.
pub async fn feed_tasks<C: ConnectionTrait>(
    db: &C,
    feed: &calendar_feed::Model,
    now: DateTime<Utc>,
) -> ApiResult<FeedTasks> {
    let mut select = task::Entity::find()
        .filter(task::Column::OwnerId.eq(feed.owner_id.as_str()))
        .filter(task::Column::Completed.eq(false))
        .filter(task::Column::DueAt.is_not_null());
    if let Some(json) = &feed.filter {
        let filter: TaskFilterSpec = serde_json::from_str(json).map_err(|e| {
            ApiError::internal(anyhow::anyhow!(
                "calendar feed {} has a filter that no longer reads: {e}",
                feed.id
            ))
        })?;
        let keys = task_filter::validate_filter(&filter)?;
        let tag_ids = super::task_list::resolve_tags(db, &feed.owner_id, keys).await?;
        select = select.filter(task_filter::stored_filter_condition(
            &filter, &tag_ids, now,
        )?);
    }
    let mut tasks = select
        .order_by_asc(task::Column::DueAt)
        .order_by_asc(task::Column::Id)
        .limit(MAX_FEED_ENTRIES + 1)
        .all(db)
        .await?;
    let truncated = tasks.len() as u64 > MAX_FEED_ENTRIES;
    tasks.truncate(MAX_FEED_ENTRIES as usize);
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    if ids.is_empty() {
        return Ok(FeedTasks::default());
    }
    Ok(FeedTasks {
        tags: super::tag::tags_of_tasks(db, &ids).await?,
        reminders: super::task::reminders_of_tasks(db, &ids).await?,
        tasks,
        truncated,
    })
}

/// Records that `feed` now serves a body with `etag` and returns when that body first
/// appeared (the feed's `Last-Modified`, whole seconds): the time stored with the same ETag,
/// or `now` when the body changed (then stored). A change within the second of the previous
/// one is stamped a second later, so that every body has its own `Last-Modified` and
/// `If-Modified-Since` never mistakes one for the other.
pub async fn record_content(
    db: &DatabaseConnection,
    feed: &calendar_feed::Model,
    etag: &str,
    now: DateTime<Utc>,
) -> ApiResult<DateTime<Utc>> {
    if let (Some(stored), Some(changed)) = (&feed.content_etag, feed.content_changed_at)
        && stored == etag
    {
        return Ok(changed.trunc_subsecs(0));
    }
    let mut now = now.trunc_subsecs(0);
    if let Some(previous) = feed.content_changed_at.map(|t| t.trunc_subsecs(0))
        && previous >= now
    {
        now = previous + chrono::Duration::seconds(1);
    }
    let txn = super::begin_write(db).await?;
    calendar_feed::Entity::update_many()
        .col_expr(calendar_feed::Column::ContentEtag, Expr::value(etag))
        .col_expr(calendar_feed::Column::ContentChangedAt, Expr::value(now))
        .filter(calendar_feed::Column::Id.eq(feed.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bits_of_base64url_and_differ() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("name", "  Work ").unwrap(), "Work");
        assert!(validate_name("name", " ").is_err());
        assert!(validate_name("name", &"x".repeat(101)).is_err());
        assert!(validate_name("name", &"x".repeat(100)).is_ok());
        let err = validate_name("name", "a\0b").unwrap_err();
        assert!(err.to_string().starts_with("name"), "{err}");
    }
}
