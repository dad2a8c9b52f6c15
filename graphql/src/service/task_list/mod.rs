//! The task list: filters, full-text search, multi-key sort and keyset pagination, on SQLite
//! and PostgreSQL. GraphQL-free; the `tasks` resolver converts its arguments into a
//! [`TaskListQuery`] and calls [`list_tasks`] (and [`count_tasks`] for `totalCount`).
//!
//! Architecture invariant: a page is one `SELECT` (plus one to resolve tag names when the
//! filter names tags), scoped by `owner_id` first, seeking with a keyset predicate and never
//! `OFFSET`, so page N costs the same as page 1 and the owner-leading indexes serve the sorts.
//!
//! Decisions:
//! - The `id` tie-breaker follows the direction of the last sort key, so a single-key sort is
//!   one index scan of `(owner_id, key, id)` in one direction.
//! - `hasPreviousPage` when paging forward is "an `after` cursor was given" (and
//!   `hasNextPage` when paging backward is "a `before` cursor was given"), the approximation
//!   the Relay connection spec allows; it saves a second query per page.
//! - `DUE_AT` sorts tasks without a due date last in both directions.
//!
//! Module map: this file (API, statement assembly); `task_filter` (filter and search
//! validation, filter conditions); `task_cursor` (cursors, seek predicate, `ORDER BY`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entities::{tag, task};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Iterable, QueryFilter,
    QueryResult,
};

use super::task_cursor::{self, Cursor, OrderColumn, SortValue};
use super::task_filter::{self, SearchWords};
use crate::error::{ApiError, ApiResult};

pub(crate) use super::task_filter::validate_filter;
pub use super::task_filter::{MAX_FILTER_DEPTH, MAX_FILTER_NODES, TagMatchSpec, TaskFilterSpec};

/// A `TaskSortField`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    DueAt,
    Priority,
    CreatedAt,
    UpdatedAt,
    Title,
    Relevance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

impl SortField {
    /// The GraphQL enum name (`DUE_AT` ... `RELEVANCE`), for messages and cursor signatures.
    pub fn as_str(self) -> &'static str {
        match self {
            SortField::DueAt => "DUE_AT",
            SortField::Priority => "PRIORITY",
            SortField::CreatedAt => "CREATED_AT",
            SortField::UpdatedAt => "UPDATED_AT",
            SortField::Title => "TITLE",
            SortField::Relevance => "RELEVANCE",
        }
    }
}

impl SortDirection {
    fn reversed(self) -> SortDirection {
        match self {
            SortDirection::Asc => SortDirection::Desc,
            SortDirection::Desc => SortDirection::Asc,
        }
    }
}

/// One `TaskSort` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub field: SortField,
    pub direction: SortDirection,
}

/// Validated paging arguments (see [`page_request`]).
#[derive(Clone, Debug)]
pub enum PageRequest {
    Forward {
        first: Option<i32>,
        after: Option<String>,
    },
    Backward {
        last: Option<i32>,
        before: Option<String>,
    },
}

/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page: bigger requests are rejected (not clamped), so a client never mistakes a
/// clamped page for the end of the list.
pub const MAX_PAGE_SIZE: u64 = 100;

/// Validates the GraphQL paging arguments: `first` and `last` together, a size of 0, negative
/// or above [`MAX_PAGE_SIZE`], `after` with `last`, `before` with `first`, and `after` with
/// `before` are `BAD_USER_INPUT` naming the arguments.
pub fn page_request(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> ApiResult<PageRequest> {
    if first.is_some() && last.is_some() {
        return Err(ApiError::invalid(
            "last",
            "first and last cannot be used together: page forward with first/after or backward with last/before",
        ));
    }
    if let Some(n) = first {
        page_size("first", Some(n))?;
    }
    if let Some(n) = last {
        page_size("last", Some(n))?;
    }
    if after.is_some() && last.is_some() {
        return Err(ApiError::invalid(
            "after",
            "after cannot be used with last: use before to page backward",
        ));
    }
    if before.is_some() && first.is_some() {
        return Err(ApiError::invalid(
            "before",
            "before cannot be used with first: use after to page forward",
        ));
    }
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "before",
            "after and before cannot be used together",
        ));
    }
    Ok(if last.is_some() || before.is_some() {
        PageRequest::Backward { last, before }
    } else {
        PageRequest::Forward { first, after }
    })
}

pub(crate) fn page_size(argument: &str, requested: Option<i32>) -> ApiResult<u64> {
    match requested {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    argument,
                    format!("{argument} must be between 1 and {MAX_PAGE_SIZE}, not {n}"),
                )
            }),
    }
}

/// Everything `tasks(...)` asks for, for one owner.
#[derive(Clone, Debug)]
pub struct TaskListQuery {
    pub owner_id: String,
    pub filter: Option<TaskFilterSpec>,
    pub search: Option<String>,
    /// Empty: `RELEVANCE DESC` when searching, otherwise `CREATED_AT DESC`.
    pub sort: Vec<SortKey>,
    pub page: PageRequest,
    /// The clock reading that `overdue` compares against.
    pub now: DateTime<Utc>,
}

/// One page of tasks in list order, with a cursor per task.
#[derive(Clone, Debug)]
pub struct TaskPage {
    pub tasks: Vec<task::Model>,
    pub cursors: Vec<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// One page of the owner's tasks matching the query: one `SELECT` for the page, plus one to
/// resolve tag names to ids when the filter names tags.
pub async fn list_tasks<C: ConnectionTrait>(db: &C, query: &TaskListQuery) -> ApiResult<TaskPage> {
    let plan = Plan::new(db, query).await?;
    let Paging {
        size,
        backward,
        signature,
        cursor,
    } = paging(query, &plan.sort, plan.search.as_ref())?;
    let cursor_given = cursor.is_some();
    let Some(mut select) = plan.select(db.get_database_backend()) else {
        // A search without words matches nothing.
        return Ok(TaskPage {
            tasks: Vec::new(),
            cursors: Vec::new(),
            has_next_page: backward && cursor_given,
            has_previous_page: !backward && cursor_given,
        });
    };

    let backend = db.get_database_backend();
    let columns = plan.order_columns(backend, backward);
    if let Some(cursor) = &cursor {
        let mut values = cursor.values.clone();
        values.push(SortValue::Id(cursor.id));
        select.cond_where(task_cursor::seek_condition(&columns, &values));
    }
    let first_value = cursor.as_ref().and_then(|c| c.values.first());
    let select = task_cursor::ordered_page(select, &columns, first_value, backend, size + 1);

    let rows = db.query_all(&select).await?;
    let has_more = rows.len() as u64 > size;
    let mut tasks = Vec::with_capacity(rows.len());
    let mut cursors = Vec::with_capacity(rows.len());
    for row in rows.iter().take(size as usize) {
        let task = task::Model::from_query_result(row, "")?;
        let values = plan.sort_values(row, &task)?;
        cursors.push(task_cursor::encode(
            &signature,
            &Cursor {
                values,
                id: task.id,
            },
        ));
        tasks.push(task);
    }
    if backward {
        tasks.reverse();
        cursors.reverse();
    }
    Ok(TaskPage {
        tasks,
        cursors,
        has_next_page: if backward { cursor_given } else { has_more },
        has_previous_page: if backward { has_more } else { cursor_given },
    })
}

/// The page size, direction and decoded cursor of a query.
struct Paging {
    size: u64,
    backward: bool,
    signature: String,
    cursor: Option<Cursor>,
}

fn paging(
    query: &TaskListQuery,
    sort: &[SortKey],
    search: Option<&SearchWords>,
) -> ApiResult<Paging> {
    let (size, cursor_text, backward) = match &query.page {
        PageRequest::Forward { first, after } => {
            (page_size("first", *first)?, after.as_deref(), false)
        }
        PageRequest::Backward { last, before } => {
            (page_size("last", *last)?, before.as_deref(), true)
        }
    };
    let argument = if backward { "before" } else { "after" };
    let signature = task_cursor::signature(sort, search.map(SearchWords::joined).as_deref());
    let cursor = cursor_text
        .map(|text| task_cursor::decode(argument, text, &signature, sort))
        .transpose()?;
    Ok(Paging {
        size,
        backward,
        signature,
        cursor,
    })
}

/// Checks what [`list_tasks`] checks before it reads anything (search, sort, page size and
/// cursor; the filter is checked by [`count_tasks`]), for a connection whose selection needs
/// no page (only `totalCount`): its arguments are refused just as when it reads a page.
pub fn check_paging(query: &TaskListQuery) -> ApiResult<()> {
    let search = task_filter::search_words(query.search.as_deref())?;
    let sort = effective_sort(&query.sort, search.is_some())?;
    paging(query, &sort, search.as_ref()).map(|_| ())
}

/// How many of the owner's tasks match the filter and search (paging is ignored).
pub async fn count_tasks<C: ConnectionTrait>(db: &C, query: &TaskListQuery) -> ApiResult<u64> {
    let plan = Plan::new(db, query).await?;
    let Some(mut select) = plan.select(db.get_database_backend()) else {
        return Ok(0);
    };
    select
        .clear_selects()
        .expr_as(Expr::cust("COUNT(*)"), "task_count");
    let row = db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("COUNT(*) returned no row")))?;
    let count: i64 = row.try_get("", "task_count")?;
    u64::try_from(count).map_err(ApiError::internal)
}

/// The validated, resolved parts of a query that both listing and counting need.
struct Plan {
    owner_id: String,
    search: Option<SearchWords>,
    filter: Option<Condition>,
    /// The effective sort (defaults applied), without the id tie-breaker.
    sort: Vec<SortKey>,
}

impl Plan {
    async fn new<C: ConnectionTrait>(db: &C, query: &TaskListQuery) -> ApiResult<Plan> {
        let search = task_filter::search_words(query.search.as_deref())?;
        let sort = effective_sort(&query.sort, search.is_some())?;
        let filter = match &query.filter {
            None => None,
            Some(spec) => {
                let keys = task_filter::validate_filter(spec)?;
                let tag_ids = resolve_tags(db, &query.owner_id, keys).await?;
                Some(task_filter::filter_condition(spec, &tag_ids, query.now)?)
            }
        };
        Ok(Plan {
            owner_id: query.owner_id.clone(),
            search,
            filter,
            sort,
        })
    }

    /// `SELECT <task columns, sort values> FROM tasks [search joins] WHERE <owner, filter,
    /// search>`, or `None` when the search has no words and so matches nothing.
    fn select(&self, backend: DbBackend) -> Option<SelectStatement> {
        let mut select = Query::select();
        // Every column but the two search copies of the title and description, which a list
        // never shows (they can be as long as the text itself): read back as empty strings.
        select
            .columns(
                task::Column::iter()
                    .filter(|c| !matches!(c, task::Column::SearchTitle | task::Column::SearchBody))
                    .map(|c| (task::Entity, c)),
            )
            .expr_as(Expr::val(""), "search_title")
            .expr_as(Expr::val(""), "search_body")
            .from(task::Entity)
            .cond_where(
                Expr::col((task::Entity, task::Column::OwnerId)).eq(self.owner_id.as_str()),
            );
        if let Some(filter) = &self.filter {
            select.cond_where(filter.clone());
        }
        if let Some(search) = &self.search {
            if search.matches_nothing() {
                return None;
            }
            task_filter::add_search(&mut select, backend, search);
        }
        if self
            .sort
            .iter()
            .any(|key| key.field == SortField::Relevance)
        {
            select.expr_as(self.sort_expr(backend, SortField::Relevance), "relevance");
        }
        Some(select)
    }

    /// The SQL a sort field orders by. Relevance is only asked for when searching.
    fn sort_expr(&self, backend: DbBackend, field: SortField) -> Expr {
        let col = |c: task::Column| Expr::col((task::Entity, c));
        match field {
            SortField::DueAt => col(task::Column::DueAt),
            SortField::Priority => col(task::Column::Priority),
            SortField::CreatedAt => col(task::Column::CreatedAt),
            SortField::UpdatedAt => col(task::Column::UpdatedAt),
            // The stored sort key (`entities::search::title_key`), compared by its bytes on
            // both databases (`COLLATE "C"` on PostgreSQL); the index `(owner_id, title_key, id)`.
            SortField::Title => col(task::Column::TitleKey),
            SortField::Relevance => match &self.search {
                Some(search) => task_filter::relevance(backend, search),
                // Unreachable: `effective_sort` rejects RELEVANCE without search.
                None => Expr::val(0.0_f64),
            },
        }
    }

    /// The page's `ORDER BY` columns, the id tie-breaker last, in scan direction.
    fn order_columns(&self, backend: DbBackend, backward: bool) -> Vec<OrderColumn> {
        let scan = |d: SortDirection| if backward { d.reversed() } else { d };
        let mut columns: Vec<OrderColumn> = self
            .sort
            .iter()
            .map(|key| OrderColumn {
                expr: self.sort_expr(backend, key.field),
                name: result_column(key.field),
                direction: scan(key.direction),
                nullable: key.field == SortField::DueAt,
                nulls_last: !backward,
                indexed: key.field != SortField::Relevance,
            })
            .collect();
        let id_direction = self.sort.last().map_or(SortDirection::Asc, |k| k.direction);
        columns.push(OrderColumn {
            expr: Expr::col((task::Entity, task::Column::Id)),
            name: "id",
            direction: scan(id_direction),
            nullable: false,
            nulls_last: !backward,
            indexed: true,
        });
        columns
    }

    /// A row's sort-key values, read back as the database computed them.
    fn sort_values(&self, row: &QueryResult, task: &task::Model) -> ApiResult<Vec<SortValue>> {
        self.sort
            .iter()
            .map(|key| {
                Ok(match key.field {
                    SortField::DueAt => task.due_at.map_or(SortValue::Null, SortValue::Timestamp),
                    SortField::Priority => SortValue::Rank(task.priority.rank()),
                    SortField::CreatedAt => SortValue::Timestamp(task.created_at),
                    SortField::UpdatedAt => SortValue::Timestamp(task.updated_at),
                    SortField::Title => SortValue::Text(task.title_key.clone()),
                    SortField::Relevance => SortValue::Float(row.try_get("", "relevance")?),
                })
            })
            .collect()
    }
}

/// The result-set column that carries a sort field's value.
fn result_column(field: SortField) -> &'static str {
    match field {
        SortField::DueAt => "due_at",
        SortField::Priority => "priority",
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
        SortField::Title => "title_key",
        SortField::Relevance => "relevance",
    }
}

/// The sort actually used: the defaults for an empty list, and checks that name `sort`.
fn effective_sort(sort: &[SortKey], searching: bool) -> ApiResult<Vec<SortKey>> {
    if sort.is_empty() {
        let field = if searching {
            SortField::Relevance
        } else {
            SortField::CreatedAt
        };
        return Ok(vec![SortKey {
            field,
            direction: SortDirection::Desc,
        }]);
    }
    for (i, key) in sort.iter().enumerate() {
        if key.field == SortField::Relevance && !searching {
            return Err(ApiError::invalid(
                format!("sort[{i}]"),
                format!("sort[{i}]: RELEVANCE can only be used together with search"),
            ));
        }
        if sort[..i].iter().any(|earlier| earlier.field == key.field) {
            return Err(ApiError::invalid(
                format!("sort[{i}]"),
                format!(
                    "sort[{i}]: {} appears more than once; each field can be sorted by once",
                    key.field.as_str()
                ),
            ));
        }
    }
    Ok(sort.to_vec())
}

/// Resolves tag name keys to the owner's tag ids in one query. Unknown names are absent.
pub(crate) async fn resolve_tags<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    keys: std::collections::BTreeSet<String>,
) -> ApiResult<HashMap<String, uuid::Uuid>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let tags = tag::Entity::find()
        .filter(tag::Column::OwnerId.eq(owner_id))
        .filter(tag::Column::NameKey.is_in(keys))
        .all(db)
        .await?;
    Ok(tags.into_iter().map(|t| (t.name_key, t.id)).collect())
}

#[cfg(test)]
mod tests;
