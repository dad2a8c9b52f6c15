//! Unit tests for `task_filter`: pure functions only, no database.

use super::*;
use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};

fn nest(depth: usize) -> TaskFilterSpec {
    let mut filter = TaskFilterSpec {
        completed: Some(true),
        ..Default::default()
    };
    for _ in 1..depth {
        filter = TaskFilterSpec {
            not: Some(Box::new(filter)),
            ..Default::default()
        };
    }
    filter
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test date")
        .with_timezone(&Utc)
}

fn message(result: ApiResult<impl std::fmt::Debug>) -> String {
    result.expect_err("should be rejected").to_string()
}

#[test]
fn nesting_is_limited_and_the_error_names_the_path() {
    assert!(validate_filter(&nest(MAX_FILTER_DEPTH)).is_ok());
    let err = message(validate_filter(&nest(MAX_FILTER_DEPTH + 1)));
    assert!(
        err.starts_with("filter.not.not.not.not.not.not.not.not:"),
        "{err}"
    );
}

#[test]
fn the_number_of_filters_is_limited() {
    let wide = TaskFilterSpec {
        and: Some(vec![TaskFilterSpec::default(); MAX_FILTER_NODES]),
        ..Default::default()
    };
    assert!(message(validate_filter(&wide)).contains("filter has more than 100"));
}

#[test]
fn empty_lists_and_bad_ranks_are_rejected_by_path() {
    let empty_or = TaskFilterSpec {
        or: Some(vec![]),
        ..Default::default()
    };
    assert!(message(validate_filter(&empty_or)).starts_with("filter.or must not be an empty list"));
    let empty_priority = TaskFilterSpec {
        and: Some(vec![TaskFilterSpec {
            priority: Some(vec![]),
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert!(message(validate_filter(&empty_priority)).starts_with("filter.and[0].priority must"));
    let bad_rank = TaskFilterSpec {
        min_priority: Some(5),
        ..Default::default()
    };
    assert!(message(validate_filter(&bad_rank)).starts_with("filter.minPriority must"));
    let empty_tags = TaskFilterSpec {
        tags: Some(TagMatchSpec {
            all: Some(vec![]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(message(validate_filter(&empty_tags)).starts_with("filter.tags.all must"));
}

#[test]
fn tag_names_are_collected_case_insensitively() {
    let filter = TaskFilterSpec {
        tags: Some(TagMatchSpec {
            any: Some(vec![" Work ".into()]),
            ..Default::default()
        }),
        or: Some(vec![TaskFilterSpec {
            tags: Some(TagMatchSpec {
                none: Some(vec!["WORK".into(), "Home".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let keys: Vec<String> = validate_filter(&filter)
        .expect("valid")
        .into_iter()
        .collect();
    assert_eq!(keys, ["home", "work"]);
    let err = message(filter_condition(
        &filter,
        &HashMap::from([("work".into(), Uuid::nil())]),
        Utc::now(),
    ));
    assert_eq!(err, "filter.or[0].tags.none: unknown tag \"Home\"");
}

#[test]
fn negated_conditions_render_as_two_valued_sql() {
    let filter = TaskFilterSpec {
        not: Some(Box::new(TaskFilterSpec {
            due_before: Some(Utc::now()),
            ..Default::default()
        })),
        overdue: Some(false),
        ..Default::default()
    };
    let cond = filter_condition(&filter, &HashMap::new(), Utc::now()).expect("valid");
    let sql = Query::select()
        .expr(Expr::val(1))
        .cond_where(cond)
        .to_string(PostgresQueryBuilder);
    assert!(
        sql.contains(r#"NOT ("tasks"."due_at" IS NOT NULL AND "tasks"."due_at" <"#),
        "{sql}"
    );
    let any_unknown = TaskFilterSpec {
        tags: Some(TagMatchSpec {
            any: Some(vec!["nope".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let cond = filter_condition(&any_unknown, &HashMap::new(), Utc::now()).expect("valid");
    let sql = Query::select()
        .expr(Expr::val(1))
        .cond_where(cond)
        .to_string(SqliteQueryBuilder);
    assert!(sql.contains("FALSE"), "{sql}");
}

#[test]
fn search_text_is_reduced_to_words() {
    assert_eq!(search_words(None).expect("ok"), None);
    assert_eq!(search_words(Some("   ")).expect("ok"), None);
    let words = search_words(Some(" Running, \"late\" OR title:x* "))
        .expect("ok")
        .expect("some");
    // Folded and stemmed by the function that also wrote the stored words.
    assert_eq!(words.words, ["run", "late", "or", "titl", "x"]);
    assert_eq!(words.fts5_query(), r#""run" "late" "or" "titl" "x""#);
    assert_eq!(words.tsquery(), "'run' & 'late' & 'or' & 'titl' & 'x'");
    assert!(!words.matches_nothing());
    assert_eq!(
        search_words(Some("!!!"))
            .expect("ok")
            .expect("some")
            .words
            .len(),
        0
    );
    assert!(
        search_words(Some("!!!"))
            .expect("ok")
            .expect("some")
            .matches_nothing()
    );
    // A word too long to be stored can match nothing.
    let unindexed = search_words(Some(&format!("plant {}", "w".repeat(101))))
        .expect("ok")
        .expect("some");
    assert!(unindexed.matches_nothing());
    let long = "a".repeat(MAX_SEARCH_CHARS + 1);
    assert!(message(search_words(Some(&long))).starts_with("search is 501 characters"));
}

#[test]
fn filter_dates_outside_the_accepted_range_are_rejected_by_path() {
    let late = TaskFilterSpec {
        due_before: Some(at("9999-12-31T00:00:00Z")),
        ..Default::default()
    };
    assert!(message(validate_filter(&late)).starts_with("filter.dueBefore must be between"));
    let early = TaskFilterSpec {
        not: Some(Box::new(TaskFilterSpec {
            due_after: Some(at("0001-01-01T00:00:00Z")),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert!(message(validate_filter(&early)).starts_with("filter.not.dueAfter must be between"));
    let edges = TaskFilterSpec {
        due_after: Some(at("1000-01-01T00:00:00Z")),
        due_before: Some(at("9000-12-31T23:59:59Z")),
        ..Default::default()
    };
    assert!(validate_filter(&edges).is_ok());
}

#[test]
fn query_literals_quote_every_word_whatever_it_holds() {
    // Stored and searched words are only letters, digits and marks; the quoting is total anyway.
    let words = SearchWords {
        words: vec!["it's".into(), "a\\b".into(), "say \"hi\"".into()],
    };
    assert_eq!(words.tsquery(), r#"'it''s' & 'a\\b' & 'say "hi"'"#);
    assert_eq!(words.fts5_query(), r#""it's" "a\b" "say ""hi""""#);
}

#[test]
fn filter_dates_finer_than_a_microsecond_are_rejected_by_path() {
    let fine = TaskFilterSpec {
        or: Some(vec![
            TaskFilterSpec::default(),
            TaskFilterSpec {
                due_before: Some(at("2030-01-01T00:00:00.5000001Z")),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    assert!(
        message(validate_filter(&fine))
            .starts_with("filter.or[1].dueBefore has digits below the microsecond"),
    );
    let micros = TaskFilterSpec {
        due_after: Some(at("2030-01-01T00:00:00.500001Z")),
        due_before: Some(at("2030-01-01T00:00:00.999999000Z")),
        ..Default::default()
    };
    assert!(validate_filter(&micros).is_ok());
}

#[test]
fn nul_characters_in_tag_names_and_search_are_rejected_by_path() {
    let filter = TaskFilterSpec {
        tags: Some(TagMatchSpec {
            any: Some(vec!["ok".into(), "bad\0".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        message(validate_filter(&filter)),
        "filter.tags.any[1] must not contain a NUL character"
    );
    assert_eq!(
        message(search_words(Some("milk\0eggs"))),
        "search must not contain a NUL character"
    );
}
