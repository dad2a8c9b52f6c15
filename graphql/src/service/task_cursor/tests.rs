//! Unit tests for `task_cursor`: pure functions only, no database.

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
    let value = SortValue::Timestamp(Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid"));
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
        !sql.contains("UNION") && sql.ends_with(r#"ORDER BY "due_at" DESC, "id" DESC LIMIT 21"#),
        "{sql}"
    );
    // SQLite's index order is ASC NULLS FIRST, the mirror image.
    assert!(page(DbBackend::Sqlite, asc, true, None).contains("UNION ALL"));
    assert!(!page(DbBackend::Sqlite, desc, true, None).contains("UNION"));
}
