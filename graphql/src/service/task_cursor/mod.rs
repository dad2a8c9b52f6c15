//! Keyset paging for the task list: what a cursor carries and how it is encoded, the seek
//! predicate built from it, and the `ORDER BY ... LIMIT` shape that lets an index serve each
//! page (including the nulls-last `due_at` sort, see [`ordered_page`]).
//!
//! A cursor is base64url (no padding) of a small JSON object:
//! `{"s": signature, "k": [sort-key values], "id": "uuid"}`. The signature names the sort keys
//! and directions and whether (and for which words) the list is searched, so a cursor handed
//! back with another sort or another search is rejected instead of silently seeking to a
//! meaningless position. Values are typed per sort field: timestamps as RFC 3339 strings with
//! microseconds, priority ranks as integers, the title's sort key (`tasks.title_key`) as a
//! string, relevance as its exact decimal string, and `null` for a missing due date.
//!
//! The module is pure: it builds sea-query expressions but never touches a connection.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::DbBackend;
use sea_orm::sea_query::{
    Asterisk, Condition, Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement, UnionType,
    Value,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::task_list::{SortDirection, SortField, SortKey};
use crate::error::{ApiError, ApiResult};

/// The message for every cursor that cannot be used, whatever the reason: a client cannot do
/// anything more useful with a finer distinction than "start again from the first page".
const INVALID_CURSOR: &str = "cursor is invalid or belongs to a different sort or search";

/// Bumped whenever the cursor layout or the meaning of its values changes, so that old cursors
/// are rejected cleanly. v2: titles sort by `title_key` and searches are folded and stemmed by
/// `entities::search`.
const CURSOR_VERSION: &str = "v2";

/// One sort-key value of a row, as carried in a cursor and bound in the seek predicate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SortValue {
    /// A missing due date (the only nullable sort key).
    Null,
    Timestamp(DateTime<Utc>),
    Rank(i16),
    Text(String),
    Float(f64),
    /// The id tie-breaker; travels in the cursor's `id` field, not among the sort values.
    Id(Uuid),
}

/// A decoded cursor: the row's sort-key values, in sort order, and its id.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cursor {
    pub values: Vec<SortValue>,
    pub id: Uuid,
}

/// The signature of a sort (and search) that a cursor is only valid for. `search_words` is the
/// normalised search (tokens joined by spaces), or `None` when the list is not searched.
pub(crate) fn signature(sort: &[SortKey], search_words: Option<&str>) -> String {
    let keys: Vec<String> = sort
        .iter()
        .map(|k| format!("{}:{}", k.field.as_str(), direction_name(k.direction)))
        .collect();
    let search = match search_words {
        Some(words) => format!("{:016x}", fnv1a64(words.as_bytes())),
        None => "-".to_owned(),
    };
    format!("{CURSOR_VERSION}|{}|{search}", keys.join(","))
}

/// Encodes a row's position as an opaque cursor.
pub(crate) fn encode(signature: &str, cursor: &Cursor) -> String {
    let values: Vec<Json> = cursor.values.iter().map(value_to_json).collect();
    let body = json!({ "s": signature, "k": values, "id": cursor.id.to_string() });
    URL_SAFE_NO_PAD.encode(body.to_string())
}

/// Decodes a cursor given as `argument` (`after` or `before`) for the sort `sort` with
/// `signature`. Any defect is `BAD_USER_INPUT` naming the argument.
pub(crate) fn decode(
    argument: &str,
    text: &str,
    signature: &str,
    sort: &[SortKey],
) -> ApiResult<Cursor> {
    try_decode(text, signature, sort)
        .ok_or_else(|| ApiError::invalid(argument, format!("{argument}: {INVALID_CURSOR}")))
}

fn try_decode(text: &str, signature: &str, sort: &[SortKey]) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    let body: Json = serde_json::from_slice(&bytes).ok()?;
    if body.get("s")?.as_str()? != signature {
        return None;
    }
    let raw_values = body.get("k")?.as_array()?;
    if raw_values.len() != sort.len() {
        return None;
    }
    let values = sort
        .iter()
        .zip(raw_values)
        .map(|(key, raw)| value_from_json(key.field, raw))
        .collect::<Option<Vec<_>>>()?;
    let id = Uuid::parse_str(body.get("id")?.as_str()?).ok()?;
    Some(Cursor { values, id })
}

fn value_to_json(value: &SortValue) -> Json {
    match value {
        SortValue::Null => Json::Null,
        SortValue::Timestamp(t) => Json::String(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        SortValue::Rank(r) => json!(r),
        SortValue::Text(s) => Json::String(s.clone()),
        // Rust prints the shortest decimal that parses back to the same f64, and `str::parse`
        // rounds correctly; serde_json's default float parser only promises best effort (its
        // `float_roundtrip` feature is off), and an off-by-one-ULP relevance would skip rows.
        SortValue::Float(f) => Json::String(f.to_string()),
        SortValue::Id(id) => Json::String(id.to_string()),
    }
}

fn value_from_json(field: SortField, raw: &Json) -> Option<SortValue> {
    match field {
        SortField::DueAt if raw.is_null() => Some(SortValue::Null),
        SortField::DueAt | SortField::CreatedAt | SortField::UpdatedAt => {
            let t = DateTime::parse_from_rfc3339(raw.as_str()?).ok()?;
            Some(SortValue::Timestamp(t.with_timezone(&Utc)))
        }
        SortField::Priority => Some(SortValue::Rank(i16::try_from(raw.as_i64()?).ok()?)),
        // A title never holds a NUL (it is refused on input), and PostgreSQL cannot take one.
        SortField::Title => Some(SortValue::Text(
            raw.as_str().filter(|s| !s.contains('\0'))?.to_owned(),
        )),
        SortField::Relevance => {
            let f: f64 = raw.as_str()?.parse().ok()?;
            f.is_finite().then_some(SortValue::Float(f))
        }
    }
}

fn direction_name(direction: SortDirection) -> &'static str {
    match direction {
        SortDirection::Asc => "asc",
        SortDirection::Desc => "desc",
    }
}

/// 64-bit FNV-1a: a stable (across builds and Rust versions) fingerprint of the search words.
/// Not a security measure; it only tells one search from another.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One column (or expression) of the effective ordering, as it is scanned for this page.
#[derive(Clone, Debug)]
pub(crate) struct OrderColumn {
    pub expr: Expr,
    /// The column's name in the page's result set, for ordering a `UNION ALL` of branches.
    pub name: &'static str,
    /// The direction of this page's scan (already reversed for backward paging).
    pub direction: SortDirection,
    /// Whether the column can be NULL (only `due_at`); `nulls_last` says where NULLs go.
    pub nullable: bool,
    pub nulls_last: bool,
    /// Whether `expr` is an index key, so that a one-sided bound on it can start an index
    /// range scan (relevance is computed per row, so a bound on it would only cost time).
    pub indexed: bool,
}

/// How `ORDER BY` places NULLs of a nullable column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NullsPlacement {
    /// `NULLS FIRST`/`LAST` as the column asks.
    Explicit,
    /// No clause: the database default, which an index scan can deliver. Only correct when the
    /// rows being ordered are all NULL or all non-NULL in that column.
    Default,
}

/// Adds `ORDER BY` and `LIMIT limit` to `select` (which already carries the seek predicate),
/// in the shape that lets an index serve the scan; see [`nulls_plan`]. `first_value` is the
/// cursor's value for the first column, if paging from a cursor.
pub(crate) fn ordered_page(
    mut select: SelectStatement,
    columns: &[OrderColumn],
    first_value: Option<&SortValue>,
    backend: DbBackend,
    limit: u64,
) -> SelectStatement {
    match nulls_plan(backend, columns, first_value) {
        NullsPlan::Order(nulls) => {
            order_by(&mut select, columns, nulls);
            select.limit(limit);
            select
        }
        NullsPlan::SplitByNull => split_by_null(select, columns, first_value, limit),
    }
}

/// How a page orders a leading nullable key (`due_at`).
enum NullsPlan {
    /// One ordered scan, with NULLs placed as given.
    Order(NullsPlacement),
    /// One ordered scan each for the non-NULL and the NULL rows, then merged (see
    /// [`split_by_null`]).
    SplitByNull,
}

/// An index on `(owner_id, due_at, id)` yields NULLs where the database puts them by default
/// (last in ascending order on PostgreSQL, first on SQLite), and cannot be range-scanned with
/// "after `v` or NULL". So when rows of both kinds can follow the cursor, the page scans the
/// non-NULL and the NULL rows separately and merges them; otherwise one scan serves (with the
/// default placement when only one kind follows, which orders it just as well).
fn nulls_plan(
    backend: DbBackend,
    columns: &[OrderColumn],
    first_value: Option<&SortValue>,
) -> NullsPlan {
    let Some(first) = columns.first().filter(|c| c.nullable) else {
        return NullsPlan::Order(NullsPlacement::Explicit);
    };
    let ascending = first.direction == SortDirection::Asc;
    let default_nulls_last = if backend == DbBackend::Postgres {
        ascending
    } else {
        !ascending
    };
    let both_kinds_follow = match first_value {
        None => true,
        // NULLs last: after a NULL only NULLs follow. NULLs first: after a value, only values.
        Some(SortValue::Null) => !first.nulls_last,
        Some(_) => first.nulls_last,
    };
    if !both_kinds_follow {
        NullsPlan::Order(NullsPlacement::Default)
    } else if first_value.is_none() && first.nulls_last == default_nulls_last {
        // The first page in index order: one scan from the start of the index.
        NullsPlan::Order(NullsPlacement::Explicit)
    } else {
        NullsPlan::SplitByNull
    }
}

/// For a nullable first column: `SELECT * FROM (<non-NULL rows, ordered, limited>) UNION ALL
/// SELECT * FROM (<NULL rows, ordered, limited>) ORDER BY <result columns> LIMIT n`. Each
/// branch is an index range scan with the database's default NULL placement (irrelevant
/// inside a branch; the non-NULL branch also gets the cursor's one-sided bound), and the
/// outer `ORDER BY` puts at most `2 * limit` rows in the requested order.
fn split_by_null(
    base: SelectStatement,
    columns: &[OrderColumn],
    first_value: Option<&SortValue>,
    limit: u64,
) -> SelectStatement {
    let branch = |is_null: bool| {
        let mut branch = base.clone();
        let first = &columns[0];
        if is_null {
            branch.cond_where(first.expr.clone().is_null());
        } else {
            branch.cond_where(first.expr.clone().is_not_null());
            if let Some(value) = first_value.filter(|v| **v != SortValue::Null) {
                branch.cond_where(non_null_bound(first, value));
            }
        }
        order_by(&mut branch, columns, NullsPlacement::Default);
        branch.limit(limit);
        let mut wrapper = Query::select();
        wrapper
            .column(Asterisk)
            .from_subquery(branch, if is_null { "undated" } else { "dated" });
        wrapper
    };
    let mut page = branch(false);
    page.union(UnionType::All, branch(true));
    order_by_result_columns(&mut page, columns);
    page.limit(limit);
    page
}

/// Adds `ORDER BY` over the column expressions.
fn order_by(select: &mut SelectStatement, columns: &[OrderColumn], nulls: NullsPlacement) {
    for column in columns {
        add_order(select, column.expr.clone(), column, nulls);
    }
}

/// Adds `ORDER BY` over the result column names (for a compound `SELECT`).
fn order_by_result_columns(select: &mut SelectStatement, columns: &[OrderColumn]) {
    for column in columns {
        add_order(
            select,
            Expr::col(column.name),
            column,
            NullsPlacement::Explicit,
        );
    }
}

fn add_order(
    select: &mut SelectStatement,
    expr: Expr,
    column: &OrderColumn,
    nulls: NullsPlacement,
) {
    let order = match column.direction {
        SortDirection::Asc => Order::Asc,
        SortDirection::Desc => Order::Desc,
    };
    if column.nullable && nulls == NullsPlacement::Explicit {
        let placement = if column.nulls_last {
            NullOrdering::Last
        } else {
            NullOrdering::First
        };
        select.order_by_expr_with_nulls(expr, order, placement);
    } else {
        select.order_by_expr(expr, order);
    }
}

/// The keyset predicate "strictly after `values` in the order of `columns`": the lexicographic
/// expansion `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...`, with each comparison following its
/// column's direction and NULL placement. `columns` and `values` include the id tie-breaker.
///
/// When the first key is bounded on one side (every row after the cursor has `k1 >= v1`), that
/// bound is AND-ed in as well; it is implied by the expansion but, unlike an `OR`, a database
/// can use it as an index range condition, so deep pages start at the right index entry.
pub(crate) fn seek_condition(columns: &[OrderColumn], values: &[SortValue]) -> Condition {
    let mut expansion = Condition::any();
    let mut equal_prefix: Vec<Expr> = Vec::new();
    for (column, value) in columns.iter().zip(values) {
        if let Some(after) = strictly_after(column, value) {
            let mut term = Condition::all();
            for eq in &equal_prefix {
                term = term.add(eq.clone());
            }
            expansion = expansion.add(term.add(after));
        }
        equal_prefix.push(equal_to(column, value));
    }
    let mut seek = Condition::all();
    if let (Some(column), Some(value)) = (columns.first(), values.first())
        && let Some(bound) = leading_bound(column, value)
    {
        seek = seek.add(bound);
    }
    seek.add(expansion)
}

fn bind(value: &SortValue) -> Value {
    match value {
        SortValue::Null => Value::String(None),
        SortValue::Timestamp(t) => Value::from(*t),
        SortValue::Rank(r) => Value::from(*r),
        SortValue::Text(s) => Value::from(s.clone()),
        SortValue::Float(f) => Value::from(*f),
        SortValue::Id(id) => Value::from(*id),
    }
}

/// `column` comes strictly after `value`; `None` when nothing can (a NULL placed last).
fn strictly_after(column: &OrderColumn, value: &SortValue) -> Option<Expr> {
    let expr = column.expr.clone();
    if *value == SortValue::Null {
        return if column.nulls_last {
            None
        } else {
            Some(expr.is_not_null())
        };
    }
    let v = bind(value);
    let beyond = match column.direction {
        SortDirection::Asc => expr.clone().gt(v),
        SortDirection::Desc => expr.clone().lt(v),
    };
    if column.nullable && column.nulls_last {
        Some(beyond.or(expr.is_null()))
    } else {
        Some(beyond)
    }
}

/// `column` equals `value` (NULL-safe for the nullable key).
fn equal_to(column: &OrderColumn, value: &SortValue) -> Expr {
    match value {
        SortValue::Null => column.expr.clone().is_null(),
        v => column.expr.clone().eq(bind(v)),
    }
}

/// `k1 >= v1` (or `<=`) when every row at or after the cursor satisfies it.
fn leading_bound(column: &OrderColumn, value: &SortValue) -> Option<Expr> {
    if !column.indexed {
        return None;
    }
    match value {
        // NULLs last: only NULLs remain. NULLs first: anything may follow.
        SortValue::Null => column.nulls_last.then(|| column.expr.clone().is_null()),
        // NULLs after a non-null value can follow it, so there is no one-sided bound.
        _ if column.nullable && column.nulls_last => None,
        v => Some(non_null_bound(column, v)),
    }
}

/// `k >= v` (ascending) or `k <= v` (descending): the range of the non-NULL rows at or after
/// a non-NULL cursor value.
fn non_null_bound(column: &OrderColumn, value: &SortValue) -> Expr {
    match column.direction {
        SortDirection::Asc => column.expr.clone().gte(bind(value)),
        SortDirection::Desc => column.expr.clone().lte(bind(value)),
    }
}

#[cfg(test)]
mod tests;
