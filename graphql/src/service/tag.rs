//! Tags: per-user, case-insensitive names, optional colour, created on demand.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entities::{limits, tag, task_tag};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::task::{TaskChangeContext, touch_tasks};
use crate::error::{ApiError, ApiResult};

/// Validates one tag name: trimmed, non-empty, at most [`limits::MAX_TAG_NAME_CHARS`].
pub fn validate_tag_name(field: &str, name: &str) -> ApiResult<String> {
    limits::required_text(field, name, limits::MAX_TAG_NAME_CHARS).map_err(ApiError::at(field))
}

/// Validates a list of tag names for one task: each valid, case-insensitive duplicates folded
/// (first spelling wins), at most [`limits::MAX_TAGS_PER_TASK`].
///
/// The list's length is checked before anything else, so a huge list costs one comparison;
/// folding is linear (a set of keys).
pub fn validate_tag_names(field: &str, names: &[String]) -> ApiResult<Vec<String>> {
    if names.len() > limits::MAX_TAGS_PER_TASK {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} has {} tags; the limit is {}",
                names.len(),
                limits::MAX_TAGS_PER_TASK
            ),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let name = validate_tag_name(&format!("{field}[{i}]"), name)?;
        if seen.insert(tag::name_key(&name)) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Validates a colour: `#rgb` or `#rrggbb` hex; returned lower-cased.
pub fn validate_color(field: &str, color: &str) -> ApiResult<String> {
    let c = color.trim();
    let hex = c.strip_prefix('#').unwrap_or("");
    if (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
        Ok(c.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be a hex colour like #1e90ff or #f80"),
        ))
    }
}

/// The owner's tags with these names (any case), creating the missing ones. Returned in the
/// order of `names`.
pub async fn ensure_tags<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    names: &[String],
    now: DateTime<Utc>,
) -> ApiResult<Vec<tag::Model>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = names.iter().map(|n| tag::name_key(n)).collect();
    let mut found = find_by_keys(db, owner_id, &keys).await?;
    let missing: Vec<tag::ActiveModel> = names
        .iter()
        .filter(|n| !found.contains_key(&tag::name_key(n)))
        .map(|n| tag::ActiveModel {
            id: Set(Uuid::now_v7()),
            owner_id: Set(owner_id.to_owned()),
            name: Set(n.clone()),
            name_key: Set(tag::name_key(n)),
            color: Set(None),
            created_at: Set(entities::to_db_precision(now)),
        })
        .collect();
    if !missing.is_empty() {
        // A concurrent request may create the same tag; keep whichever row won.
        tag::Entity::insert_many(missing)
            .on_conflict_do_nothing_on([tag::Column::OwnerId, tag::Column::NameKey])
            .exec(db)
            .await?;
        found = find_by_keys(db, owner_id, &keys).await?;
    }
    keys.iter()
        .map(|k| {
            found
                .get(k)
                .cloned()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("tag {k} missing after insert")))
        })
        .collect()
}

/// The owner's tags with these names (any case) that exist, in the order of `names`; none is
/// created.
pub async fn tags_named<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    names: &[String],
) -> ApiResult<Vec<tag::Model>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = names.iter().map(|n| tag::name_key(n)).collect();
    let found = find_by_keys(db, owner_id, &keys).await?;
    Ok(keys.iter().filter_map(|k| found.get(k).cloned()).collect())
}

async fn find_by_keys<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    keys: &[String],
) -> ApiResult<HashMap<String, tag::Model>> {
    Ok(tag::Entity::find()
        .filter(tag::Column::OwnerId.eq(owner_id))
        .filter(tag::Column::NameKey.is_in(keys.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.name_key.clone(), t))
        .collect())
}

/// The owner's tags, ordered by name (case-insensitive).
pub async fn list_tags<C: ConnectionTrait>(db: &C, owner_id: &str) -> ApiResult<Vec<tag::Model>> {
    Ok(tag::Entity::find()
        .filter(tag::Column::OwnerId.eq(owner_id))
        .order_by_asc(tag::Column::NameKey)
        .all(db)
        .await?)
}

/// One of the owner's tags by id; another user's tag is reported as missing.
pub async fn find_tag<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
) -> ApiResult<Option<tag::Model>> {
    Ok(tag::Entity::find_by_id(id)
        .filter(tag::Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

#[derive(FromQueryResult)]
struct TagCount {
    tag_id: Uuid,
    n: i64,
}

/// How many tasks carry each of these tags, in one query.
pub async fn task_counts<C: ConnectionTrait>(
    db: &C,
    tag_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, i64>> {
    let rows = task_tag::Entity::find()
        .select_only()
        .column(task_tag::Column::TagId)
        .column_as(
            Expr::expr(Func::count(Expr::col(task_tag::Column::TaskId))),
            "n",
        )
        .filter(task_tag::Column::TagId.is_in(tag_ids.iter().copied()))
        .group_by(task_tag::Column::TagId)
        .into_model::<TagCount>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.tag_id, r.n)).collect())
}

/// The tags of each of these tasks, in one query, each list ordered by name.
pub async fn tags_of_tasks<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<tag::Model>>> {
    let rows = task_tag::Entity::find()
        .filter(task_tag::Column::TaskId.is_in(task_ids.iter().copied()))
        .find_also_related(tag::Entity)
        .order_by_asc(tag::Column::NameKey)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<tag::Model>> = HashMap::new();
    for (link, tag) in rows {
        if let Some(tag) = tag {
            map.entry(link.task_id).or_default().push(tag);
        }
    }
    Ok(map)
}

/// Creates a tag; CONFLICT when the owner already has one with that name (any case). The unique
/// index decides (`uq_tags_owner_name`, mapped to CONFLICT by `error::constraints`), so two
/// concurrent requests cannot both create it.
pub async fn create_tag(
    db: &DatabaseConnection,
    owner_id: &str,
    name: &str,
    color: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<tag::Model> {
    let name = validate_tag_name("name", name)?;
    let color = color.map(|c| validate_color("color", c)).transpose()?;
    let txn = super::begin_write(db).await?;
    super::user::ensure_exists(&txn, owner_id, now).await?;
    let row = tag::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(owner_id.to_owned()),
        name_key: Set(tag::name_key(&name)),
        name: Set(name),
        color: Set(color),
        created_at: Set(entities::to_db_precision(now)),
    }
    .insert(&txn)
    .await?;
    super::commit_and_notify(txn).await?;
    Ok(row)
}

/// Renames and/or recolours a tag (`color: Some(None)` clears it); CONFLICT, as in
/// [`create_tag`], when another of the owner's tags has the new name. A rename changes the tag
/// set of every task carrying it, so those tasks get a new version and an UPDATED event.
pub async fn update_tag(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
    name: Option<&str>,
    color: Option<Option<&str>>,
) -> ApiResult<tag::Model> {
    let name = name.map(|n| validate_tag_name("name", n)).transpose()?;
    let color = match color {
        Some(Some(c)) => Some(Some(validate_color("color", c)?)),
        Some(None) => Some(None),
        None => None,
    };
    let txn = super::begin_write(db).await?;
    let current = find_tag(&txn, &ctx.owner_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("tag", &id.to_string()))?;
    let mut renamed = false;
    let mut row: tag::ActiveModel = current.clone().into();
    if let Some(name) = name {
        renamed = name != current.name;
        row.name_key = Set(tag::name_key(&name));
        row.name = Set(name);
    }
    if let Some(color) = color {
        row.color = Set(color);
    }
    let updated = row.update(&txn).await?;
    if renamed {
        let task_ids = tasks_with_tag(&txn, id).await?;
        touch_tasks(&txn, ctx, &task_ids).await?;
    }
    super::commit_and_notify(txn).await?;
    Ok(updated)
}

async fn tasks_with_tag<C: ConnectionTrait>(db: &C, tag_id: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(task_tag::Entity::find()
        .filter(task_tag::Column::TagId.eq(tag_id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.task_id)
        .collect())
}

/// Deletes a tag, removing it from every task (each gets a new version and an UPDATED event).
pub async fn delete_tag(
    db: &DatabaseConnection,
    ctx: &TaskChangeContext,
    id: Uuid,
) -> ApiResult<Uuid> {
    let txn = super::begin_write(db).await?;
    find_tag(&txn, &ctx.owner_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("tag", &id.to_string()))?;
    let task_ids = tasks_with_tag(&txn, id).await?;
    task_tag::Entity::delete_many()
        .filter(task_tag::Column::TagId.eq(id))
        .exec(&txn)
        .await?;
    tag::Entity::delete_by_id(id).exec(&txn).await?;
    touch_tasks(&txn, ctx, &task_ids).await?;
    super::commit_and_notify(txn).await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_are_trimmed_deduplicated_case_insensitively_and_bounded() {
        let names = vec!["Work".to_owned(), " work ".to_owned(), "Home".to_owned()];
        assert_eq!(
            validate_tag_names("tags", &names).unwrap(),
            vec!["Work", "Home"]
        );
        let err = validate_tag_names("input.tags", &["ok".into(), " ".into()]).unwrap_err();
        assert!(err.to_string().starts_with("input.tags[1]"), "{err}");
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(validate_tag_names("tags", &many).is_err());
    }

    #[test]
    fn a_huge_tag_list_is_refused_by_its_length_before_any_name_is_looked_at() {
        // 100,000 copies of one name: folding them first used to be quadratic.
        let names = vec!["same".to_owned(); 100_000];
        let err = validate_tag_names("input.tags", &names).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input.tags has 100000 tags; the limit is 50"
        );
    }

    #[test]
    fn colours_must_be_hex() {
        assert_eq!(validate_color("color", "#1E90FF").unwrap(), "#1e90ff");
        assert!(validate_color("color", "#f80").is_ok());
        for bad in ["red", "#12345", "1e90ff", "#ggg"] {
            assert!(validate_color("color", bad).is_err(), "{bad}");
        }
    }
}
