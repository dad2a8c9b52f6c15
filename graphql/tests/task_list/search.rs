//! Full-text search: word stems, case, relevance order, and input without words.

use super::*;

on_both_databases!(
    search_matches_word_stems_case_insensitively_and_combines_with_filters,
    |t| {
        let db = &t.db;
        seed_search_fixture(db).await;
        let runs = names(&["Run the report", "Weekly summary", "Running shoes"]);
        assert_eq!(matching(db, searching("running")).await, runs);
        assert_eq!(matching(db, searching("RUNS")).await, runs);
        assert_eq!(matching(db, searching("  run  ")).await, runs);
        // Every word must match.
        assert_eq!(
            matching(db, searching("run report")).await,
            names(&["Run the report"])
        );
        assert!(matching(db, searching("run dog")).await.is_empty());
        // Full-text syntax in the input is only ever words: no error, no injection.
        assert_eq!(
            matching(db, searching("run\" OR title:*")).await,
            Vec::<String>::new()
        );
        assert_eq!(matching(db, searching("\"run")).await, runs);
        // Search AND filter.
        let open_runs = TaskListQuery {
            filter: Some(TaskFilterSpec {
                completed: Some(false),
                ..TaskFilterSpec::default()
            }),
            ..searching("running")
        };
        assert_eq!(
            matching(db, open_runs).await,
            names(&["Run the report", "Weekly summary"])
        );
        // Blank search is no search.
        assert_eq!(matching(db, searching("   ")).await.len(), 6);
    }
);

on_both_databases!(search_orders_by_relevance_with_title_matches_first, |t| {
    let db = &t.db;
    seed_search_fixture(db).await;
    let by_default = titles(db, searching("report")).await;
    assert_eq!(by_default.len(), 3);
    assert_eq!(
        by_default.last().unwrap(),
        "Email Bob",
        "description-only match ranks last: {by_default:?}"
    );
    let explicit = TaskListQuery {
        sort: vec![key(SortField::Relevance, SortDirection::Desc)],
        ..searching("report")
    };
    assert_eq!(titles(db, explicit).await, by_default);
    let ascending = TaskListQuery {
        sort: vec![key(SortField::Relevance, SortDirection::Asc)],
        ..searching("report")
    };
    assert_eq!(titles(db, ascending).await.first().unwrap(), "Email Bob");
    // Searching with another sort still restricts to matches.
    let by_title = TaskListQuery {
        sort: vec![key(SortField::Title, SortDirection::Asc)],
        ..searching("report")
    };
    assert_eq!(
        titles(db, by_title).await,
        ["Email Bob", "Quarterly report", "Run the report"]
    );
});

on_both_databases!(a_search_without_words_returns_an_empty_page, |t| {
    let db = &t.db;
    seed_search_fixture(db).await;
    let page = list_tasks(db, &searching("!!! ...")).await.unwrap();
    assert!(page.tasks.is_empty() && page.cursors.is_empty());
    assert!(!page.has_next_page && !page.has_previous_page);
    assert_eq!(count_tasks(db, &searching("!!!")).await.unwrap(), 0);
});
