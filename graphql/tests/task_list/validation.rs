//! Bad paging arguments, forged cursors and bad sort, search and filter input.

use super::*;

on_both_databases!(bad_paging_arguments_are_rejected_naming_the_argument, |t| {
    for (first, last, argument) in [
        (Some(0), None, "first"),
        (Some(101), None, "first"),
        (Some(-1), None, "first"),
        (None, Some(0), "last"),
        (None, Some(500), "last"),
    ] {
        let message = bad_input(page_request(first, None, last, None));
        assert!(
            message.starts_with(&format!("{argument} must be between 1 and 100")),
            "{message}"
        );
    }
    assert!(bad_input(page_request(Some(5), None, Some(5), None)).contains("first and last"));
    assert!(bad_input(page_request(None, Some("x".into()), Some(5), None)).starts_with("after"));
    assert!(bad_input(page_request(Some(5), None, None, Some("x".into()))).starts_with("before"));
    // A hand-built PageRequest is validated too.
    let oversized = TaskListQuery {
        page: PageRequest::Forward {
            first: Some(1000),
            after: None,
        },
        ..query(OWNER)
    };
    Seed::new(&t.db, OWNER).await;
    assert!(bad_input(list_tasks(&t.db, &oversized).await).starts_with("first must"));
});

on_both_databases!(
    forged_and_foreign_cursors_are_rejected_naming_the_argument,
    |t| {
        let db = &t.db;
        seed_search_fixture(db).await;
        let with_after = |q: TaskListQuery, after: &str| TaskListQuery {
            page: PageRequest::Forward {
                first: Some(2),
                after: Some(after.to_owned()),
            },
            ..q
        };
        let expected = "after: cursor is invalid or belongs to a different sort or search";
        assert_eq!(
            bad_input(list_tasks(db, &with_after(query(OWNER), "garbage!")).await),
            expected
        );
        assert_eq!(
            bad_input(list_tasks(db, &with_after(query(OWNER), "eyJzIjoxfQ")).await),
            expected
        );

        let by_title = sorted(vec![key(SortField::Title, SortDirection::Asc)]);
        let cursor = list_tasks(db, &by_title).await.unwrap().cursors[0].clone();
        assert!(
            list_tasks(db, &with_after(by_title.clone(), &cursor))
                .await
                .is_ok()
        );
        let by_title_desc = sorted(vec![key(SortField::Title, SortDirection::Desc)]);
        assert_eq!(
            bad_input(list_tasks(db, &with_after(by_title_desc, &cursor)).await),
            expected
        );
        assert_eq!(
            bad_input(list_tasks(db, &with_after(query(OWNER), &cursor)).await),
            expected
        );
        let searched_by_title = TaskListQuery {
            search: Some("report".into()),
            ..by_title
        };
        assert_eq!(
            bad_input(list_tasks(db, &with_after(searched_by_title, &cursor)).await),
            expected
        );

        // A cursor from one search does not work for another.
        let cursor = list_tasks(db, &searching("run")).await.unwrap().cursors[0].clone();
        assert!(
            list_tasks(db, &with_after(searching("RUN!"), &cursor))
                .await
                .is_ok()
        );
        assert_eq!(
            bad_input(list_tasks(db, &with_after(searching("report"), &cursor)).await),
            expected
        );
        let before = TaskListQuery {
            page: PageRequest::Backward {
                last: Some(2),
                before: Some("nope".into()),
            },
            ..query(OWNER)
        };
        assert!(bad_input(list_tasks(db, &before).await).starts_with("before: cursor is invalid"));
    }
);

on_both_databases!(
    bad_sort_search_and_filter_input_is_rejected_naming_the_field,
    |t| {
        let db = &t.db;
        Seed::new(db, OWNER).await;
        let f = TaskFilterSpec::default;

        let relevance = sorted(vec![key(SortField::Relevance, SortDirection::Desc)]);
        assert!(bad_input(list_tasks(db, &relevance).await).starts_with("sort[0]: RELEVANCE"));
        assert!(bad_input(count_tasks(db, &relevance).await).starts_with("sort[0]"));
        let twice = sorted(vec![
            key(SortField::Title, SortDirection::Asc),
            key(SortField::Title, SortDirection::Desc),
        ]);
        assert!(bad_input(list_tasks(db, &twice).await).starts_with("sort[1]"));

        let long = searching(&format!(" {} ", "a".repeat(501)));
        assert!(
            bad_input(list_tasks(db, &long).await)
                .starts_with("search is 501 characters long; the limit is 500")
        );

        let empty_or = TaskFilterSpec {
            and: Some(vec![TaskFilterSpec {
                or: Some(vec![]),
                ..f()
            }]),
            ..f()
        };
        assert!(
            bad_input(list_tasks(db, &filtered(empty_or)).await)
                .starts_with("filter.and[0].or must not be an empty list")
        );
        let empty_tags = TaskFilterSpec {
            not: Some(Box::new(TaskFilterSpec {
                tags: Some(TagMatchSpec {
                    any: Some(vec![]),
                    ..TagMatchSpec::default()
                }),
                ..f()
            })),
            ..f()
        };
        assert!(
            bad_input(list_tasks(db, &filtered(empty_tags)).await)
                .starts_with("filter.not.tags.any must not be an empty list")
        );
        let empty_priority = TaskFilterSpec {
            priority: Some(vec![]),
            ..f()
        };
        assert!(
            bad_input(list_tasks(db, &filtered(empty_priority)).await)
                .starts_with("filter.priority must not be an empty list")
        );
        let too_many_tags = tags(&[], &["t"; entities::limits::MAX_TAG_MATCH_NAMES + 1], &[]);
        assert!(
            bad_input(list_tasks(db, &filtered(too_many_tags)).await)
                .starts_with("filter.tags.all has 51 names")
        );
        let bad_rank = TaskFilterSpec {
            priority: Some(vec![1, 7]),
            ..f()
        };
        assert!(
            bad_input(list_tasks(db, &filtered(bad_rank)).await)
                .starts_with("filter.priority[1] must be a priority rank")
        );

        let mut deep = TaskFilterSpec {
            completed: Some(true),
            ..f()
        };
        for _ in 0..9 {
            deep = TaskFilterSpec {
                and: Some(vec![deep]),
                ..f()
            };
        }
        let message = bad_input(list_tasks(db, &filtered(deep)).await);
        assert!(
            message.starts_with("filter.and[0].and[0]") && message.contains("nested too deeply"),
            "{message}"
        );
        let wide = TaskFilterSpec {
            or: Some(vec![f(); 100]),
            ..f()
        };
        assert!(
            bad_input(count_tasks(db, &filtered(wide)).await)
                .starts_with("filter has more than 100")
        );
    }
);
