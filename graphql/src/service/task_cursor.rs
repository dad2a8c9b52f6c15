//! Keyset paging for the task list: what a cursor carries and how it is encoded, the seek
//! predicate built from it, and the `ORDER BY ... LIMIT` shape that lets an index serve each
//! page (including the nulls-last `due_at` sort, see [`ordered_page`]).
//!
//! A cursor is base64url (no padding) of a small JSON object:
//! `{"s": signature, "k": [sort-key values], "id": "uuid"}`. The signature names the sort keys
//! and directions and whether (and for which words) the list is searched, so a cursor handed
//! back with another sort or another search is rejected instead of silently seeking to a
//! meaningless position. Values are typed per sort field: timestamps as RFC 3339 strings with
//! microseconds, priority ranks as integers, the lower-cased title as a string, relevance as its
//! exact decimal string, and `null` for a missing due date.
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

/// Bumped whenever the cursor layout changes, so that old cursors are rejected cleanly.
const CURSOR_VERSION: &str = "v1";

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
        .ok_or_else(|| ApiError::bad_input(format!("{argument}: {INVALID_CURSOR}")))
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
        SortField::Title => Some(SortValue::Text(raw.as_str()?.to_owned())),
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
mod tests {
    use super::*;
    use chrono::TimeZone;
    use sea_orm::sea_query::{PostgresQueryBuilder, Query};

    fn key(field: SortField, direction: SortDirection) -> SortKey {
        SortKey { field, direction }
    }

    fn sample() -> (Vec<SortKey>, Cursor) {
        let sort = vec![
            key(SortField::DueAt, SortDirection::Asc),
            key(SortField::Priority, SortDirection::Desc),
            key(SortField::Title, SortDirection::Asc),
            key(SortField::CreatedAt, SortDirection::Desc),
            key(SortField::Relevance, SortDirection::Desc),
        ];
        let created = Utc
            .timestamp_opt(1_700_000_000, 123_456_000)
            .single()
            .expect("valid");
        let cursor = Cursor {
            values: vec![
                SortValue::Null,
                SortValue::Rank(3),
                SortValue::Text("buy milk".into()),
                SortValue::Timestamp(created),
                SortValue::Float(0.1 + 0.2),
            ],
            id: Uuid::new_v4(),
        };
        (sort, cursor)
    }

    #[test]
    fn cursors_round_trip_exactly() {
        let (sort, cursor) = sample();
        let sig = signature(&sort, Some("run"));
        let text = encode(&sig, &cursor);
        assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
        assert_eq!(
            decode("after", &text, &sig, &sort).expect("decodes"),
            cursor
        );
    }

    #[test]
    fn a_cursor_from_another_sort_or_search_is_rejected() {
        let (sort, cursor) = sample();
        let text = encode(&signature(&sort, Some("run")), &cursor);
        let other_search = signature(&sort, Some("walk"));
        let err = decode("before", &text, &other_search, &sort).expect_err("rejected");
        assert_eq!(err.to_string(), format!("before: {INVALID_CURSOR}"));
        let mut flipped = sort.clone();
        flipped[0].direction = SortDirection::Desc;
        assert!(decode("after", &text, &signature(&flipped, Some("run")), &flipped).is_err());
        assert!(decode("after", &text, &signature(&sort, None), &sort).is_err());
    }

    #[test]
    fn garbage_and_mistyped_cursors_are_rejected() {
        let sort = vec![key(SortField::CreatedAt, SortDirection::Desc)];
        let sig = signature(&sort, None);
        for text in [
            "",
            "!!!",
            "bm90IGpzb24",
            &URL_SAFE_NO_PAD.encode("{\"s\":1}"),
        ] {
            assert!(decode("after", text, &sig, &sort).is_err(), "{text}");
        }
        let mistyped = json!({ "s": sig, "k": [42], "id": Uuid::nil().to_string() });
        let text = URL_SAFE_NO_PAD.encode(mistyped.to_string());
        assert!(decode("after", &text, &sig, &sort).is_err());
        let wrong_arity = json!({ "s": sig, "k": [], "id": Uuid::nil().to_string() });
        let text = URL_SAFE_NO_PAD.encode(wrong_arity.to_string());
        assert!(decode("after", &text, &sig, &sort).is_err());
    }

    #[test]
    fn the_seek_predicate_is_the_lexicographic_expansion_with_nulls_last() {
        let columns = vec![
            OrderColumn {
                expr: Expr::col("due_at"),
                name: "due_at",
                direction: SortDirection::Asc,
                nullable: true,
                nulls_last: true,
                indexed: true,
            },
            OrderColumn {
                expr: Expr::col("id"),
                name: "id",
                direction: SortDirection::Asc,
                nullable: false,
                nulls_last: true,
                indexed: true,
            },
        ];
        let due = Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid");
        let id = Uuid::nil();
        let sql = Query::select()
            .expr(Expr::val(1))
            .cond_where(seek_condition(
                &columns,
                &[SortValue::Timestamp(due), SortValue::Id(id)],
            ))
            .to_string(PostgresQueryBuilder);
        assert!(
            sql.contains(r#""due_at" > '2023-11-14 22:13:20.000000 +00:00' OR "due_at" IS NULL"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#""due_at" = '2023-11-14 22:13:20.000000 +00:00' AND "id" >"#),
            "{sql}"
        );
        let sql = Query::select()
            .expr(Expr::val(1))
            .cond_where(seek_condition(
                &columns,
                &[SortValue::Null, SortValue::Id(id)],
            ))
            .to_string(PostgresQueryBuilder);
        assert!(
            sql.contains(r#""due_at" IS NULL"#) && !sql.contains(r#""due_at" >"#),
            "{sql}"
        );
    }

    fn due_then_id(direction: SortDirection, nulls_last: bool) -> Vec<OrderColumn> {
        ["due_at", "id"]
            .into_iter()
            .map(|name| OrderColumn {
                expr: Expr::col(name),
                name,
                direction,
                nullable: name == "due_at",
                nulls_last,
                indexed: true,
            })
            .collect()
    }

    #[test]
    fn a_nulls_last_due_date_page_is_split_only_where_an_index_cannot_serve_it() {
        use sea_orm::sea_query::SqliteQueryBuilder;
        let page = |backend, direction, nulls_last, first_value: Option<&SortValue>| {
            let select = Query::select().column(Asterisk).from("tasks").take();
            let columns = due_then_id(direction, nulls_last);
            let page = ordered_page(select, &columns, first_value, backend, 21);
            match backend {
                DbBackend::Postgres => page.to_string(PostgresQueryBuilder),
                _ => page.to_string(SqliteQueryBuilder),
            }
        };
        let (asc, desc) = (SortDirection::Asc, SortDirection::Desc);
        let value =
            SortValue::Timestamp(Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid"));
        // PostgreSQL's index order is ASC NULLS LAST: the first ascending page is one scan.
        let sql = page(DbBackend::Postgres, asc, true, None);
        assert!(
            !sql.contains("UNION")
                && sql.ends_with(r#"ORDER BY "due_at" ASC NULLS LAST, "id" ASC LIMIT 21"#),
            "{sql}"
        );
        // After a value both kinds follow: two range scans, the dated one bounded.
        let sql = page(DbBackend::Postgres, asc, true, Some(&value));
        assert!(
            sql.contains("UNION ALL") && sql.contains(r#""due_at" >= '2023-11-14"#),
            "{sql}"
        );
        // DESC NULLS LAST is not an index order on PostgreSQL, even for the first page.
        let sql = page(DbBackend::Postgres, desc, true, None);
        assert!(
            sql.contains("UNION ALL")
                && sql.ends_with(r#""due_at" DESC NULLS LAST, "id" DESC LIMIT 21"#),
            "{sql}"
        );
        // On a NULL cursor with NULLs last only NULLs follow: one scan in index order.
        let sql = page(DbBackend::Postgres, desc, true, Some(&SortValue::Null));
        assert!(
            !sql.contains("UNION")
                && sql.ends_with(r#"ORDER BY "due_at" DESC, "id" DESC LIMIT 21"#),
            "{sql}"
        );
        // SQLite's index order is ASC NULLS FIRST, the mirror image.
        assert!(page(DbBackend::Sqlite, asc, true, None).contains("UNION ALL"));
        assert!(!page(DbBackend::Sqlite, desc, true, None).contains("UNION"));
    }
}
