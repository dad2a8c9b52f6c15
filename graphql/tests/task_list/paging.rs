//! Keyset paging forward and backward over every sort and search, and counting.

use super::*;

/// 45 tasks with many ties: five titles (in mixed case), three priorities, due dates on seven
/// days with every fourth task undated, all mentioning "milestone" in descriptions of equal
/// length (every third twice, and only those mention "review").
async fn seed_paging_fixture(db: &DatabaseConnection) -> Vec<task::Model> {
    let mut seed = Seed::new(db, OWNER).await;
    let words = ["alpha", "Bravo", "CHARLIE", "delta", "Echo"];
    for i in 0..45_i64 {
        let description = if i % 3 == 0 {
            "milestone milestone review"
        } else {
            "milestone plan notes"
        };
        seed.task(NewTask {
            title: words[(i % 5) as usize].to_owned(),
            description: description.to_owned(),
            priority: (i % 3) as i16,
            due_at: if i % 4 == 0 { None } else { days(i % 7) },
            ..NewTask::default()
        })
        .await;
    }
    task::Entity::find()
        .filter(task::Column::OwnerId.eq(OWNER))
        .all(db)
        .await
        .unwrap()
}

/// The list order that `sort` defines, computed independently in Rust: nulls last, titles
/// compared by their folded sort key, then `id` in the direction of the last key.
fn expected_order(tasks: &[task::Model], sort: &[SortKey]) -> Vec<Uuid> {
    let directed = |ordering: Ordering, direction: SortDirection| match direction {
        SortDirection::Asc => ordering,
        SortDirection::Desc => ordering.reverse(),
    };
    let mut tasks = tasks.to_vec();
    tasks.sort_by(|a, b| {
        for k in sort {
            let ordering = match k.field {
                SortField::DueAt => match (a.due_at, b.due_at) {
                    (Some(x), Some(y)) => directed(x.cmp(&y), k.direction),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                },
                SortField::Priority => directed(a.priority.cmp(&b.priority), k.direction),
                SortField::CreatedAt => directed(a.created_at.cmp(&b.created_at), k.direction),
                SortField::UpdatedAt => directed(a.updated_at.cmp(&b.updated_at), k.direction),
                SortField::Title => directed(
                    entities::search::title_key(&a.title)
                        .cmp(&entities::search::title_key(&b.title)),
                    k.direction,
                ),
                SortField::Relevance => unreachable!("relevance is not computed in Rust"),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        directed(
            a.id.cmp(&b.id),
            sort.last().map_or(SortDirection::Asc, |k| k.direction),
        )
    });
    tasks.into_iter().map(|t| t.id).collect()
}

fn ids(page: &TaskPage) -> Vec<Uuid> {
    page.tasks.iter().map(|t| t.id).collect()
}

/// Pages forward with first=20 from the start to the end; checks page sizes and flags.
async fn page_forward(db: &DatabaseConnection, q: &TaskListQuery, sizes: &[usize]) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut after = None;
    for (i, size) in sizes.iter().enumerate() {
        let page_query = TaskListQuery {
            page: page_request(Some(20), after.clone(), None, None).unwrap(),
            ..q.clone()
        };
        let page = list_tasks(db, &page_query).await.unwrap();
        assert_eq!(page.tasks.len(), *size, "page {i} of {:?}", q.sort);
        assert_eq!(page.cursors.len(), *size);
        assert_eq!(
            page.has_next_page,
            i + 1 < sizes.len(),
            "hasNextPage of page {i} of {:?}",
            q.sort
        );
        assert_eq!(page.has_previous_page, i > 0, "hasPreviousPage of page {i}");
        seen.extend(ids(&page));
        after = page.cursors.last().cloned();
    }
    let unique: HashSet<&Uuid> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no task appears twice for {:?}",
        q.sort
    );
    seen
}

on_both_databases!(
    paging_forward_visits_every_task_once_in_order_for_every_sort,
    |t| {
        use SortDirection::{Asc, Desc};
        let db = &t.db;
        let tasks = seed_paging_fixture(db).await;
        let sorts = [
            vec![],
            vec![key(SortField::CreatedAt, Asc)],
            vec![key(SortField::UpdatedAt, Desc)],
            vec![key(SortField::DueAt, Asc)],
            vec![key(SortField::DueAt, Desc)],
            vec![key(SortField::Title, Asc)],
            vec![key(SortField::Title, Desc)],
            vec![key(SortField::Priority, Desc), key(SortField::DueAt, Asc)],
            vec![
                key(SortField::DueAt, Desc),
                key(SortField::Title, Asc),
                key(SortField::Priority, Desc),
            ],
            vec![key(SortField::Title, Asc), key(SortField::CreatedAt, Desc)],
        ];
        for sort in sorts {
            let effective = if sort.is_empty() {
                vec![key(SortField::CreatedAt, Desc)]
            } else {
                sort.clone()
            };
            let seen = page_forward(db, &sorted(sort), &[20, 20, 5]).await;
            assert_eq!(
                seen,
                expected_order(&tasks, &effective),
                "order for {effective:?}"
            );
        }
        // A filtered list pages the same way: 30 open-dated-or-not tasks with priority >= 1.
        let filter = TaskFilterSpec {
            min_priority: Some(1),
            ..TaskFilterSpec::default()
        };
        let q = TaskListQuery {
            filter: Some(filter),
            sort: vec![key(SortField::DueAt, Asc)],
            ..query(OWNER)
        };
        let matching: Vec<task::Model> = tasks
            .iter()
            .filter(|t| t.priority.rank() >= 1)
            .cloned()
            .collect();
        let seen = page_forward(db, &q, &[20, 10]).await;
        assert_eq!(seen, expected_order(&matching, &q.sort));
    }
);

on_both_databases!(
    paging_through_search_results_by_relevance_is_stable_with_tied_scores,
    |t| {
        let db = &t.db;
        let tasks = seed_paging_fixture(db).await;
        let q = searching("milestones");
        let seen = page_forward(db, &q, &[20, 20, 5]).await;
        let all: HashSet<Uuid> = tasks.iter().map(|t| t.id).collect();
        assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), all);
        assert_eq!(
            ids(&list_tasks(db, &q).await.unwrap()),
            seen,
            "pages follow the one-page order"
        );
        assert_eq!(count_tasks(db, &q).await.unwrap(), 45);
        // Tasks mentioning the word twice (every third) come first.
        let twice: HashSet<Uuid> = tasks
            .iter()
            .filter(|t| t.description.starts_with("milestone milestone"))
            .map(|t| t.id)
            .collect();
        assert!(
            seen[..15].iter().all(|id| twice.contains(id)),
            "higher term frequency ranks first"
        );

        // Searching with a due-date sort (NULLs last in both directions), relevance second.
        let by_due = |direction| TaskListQuery {
            sort: vec![key(SortField::DueAt, direction)],
            ..searching("milestone")
        };
        for direction in [SortDirection::Asc, SortDirection::Desc] {
            let seen = page_forward(db, &by_due(direction), &[20, 20, 5]).await;
            assert_eq!(seen, expected_order(&tasks, &by_due(direction).sort));
        }
        let due_then_relevance = TaskListQuery {
            sort: vec![
                key(SortField::DueAt, SortDirection::Desc),
                key(SortField::Relevance, SortDirection::Desc),
            ],
            ..searching("milestone")
        };
        let seen = page_forward(db, &due_then_relevance, &[20, 20, 5]).await;
        assert_eq!(
            ids(&list_tasks(db, &due_then_relevance).await.unwrap()),
            seen
        );
        let by_id: HashMap<Uuid, &task::Model> = tasks.iter().map(|t| (t.id, t)).collect();
        for pair in seen.windows(2) {
            let (a, b) = (by_id[&pair[0]], by_id[&pair[1]]);
            if a.due_at == b.due_at {
                assert!(
                    twice.contains(&a.id) || !twice.contains(&b.id),
                    "within a due date, the more relevant task comes first"
                );
            }
        }
    }
);

on_both_databases!(
    paging_backward_with_last_and_before_mirrors_forward_paging,
    |t| {
        use SortDirection::{Asc, Desc};
        let db = &t.db;
        let tasks = seed_paging_fixture(db).await;
        for sort in [
            vec![],
            vec![key(SortField::DueAt, Asc)],
            vec![key(SortField::DueAt, Desc), key(SortField::Title, Asc)],
        ] {
            let effective = if sort.is_empty() {
                vec![key(SortField::CreatedAt, Desc)]
            } else {
                sort.clone()
            };
            let expected = expected_order(&tasks, &effective);
            let q = sorted(sort);
            let mut pages: Vec<Vec<Uuid>> = Vec::new();
            let mut before = None;
            for (i, size) in [20, 20, 5].iter().enumerate() {
                let page_query = TaskListQuery {
                    page: page_request(None, None, Some(20), before.clone()).unwrap(),
                    ..q.clone()
                };
                let page = list_tasks(db, &page_query).await.unwrap();
                assert_eq!(
                    page.tasks.len(),
                    *size,
                    "backward page {i} of {effective:?}"
                );
                assert_eq!(
                    page.has_previous_page,
                    i < 2,
                    "hasPreviousPage of backward page {i}"
                );
                assert_eq!(
                    page.has_next_page,
                    i > 0,
                    "hasNextPage of backward page {i}"
                );
                before = page.cursors.first().cloned();
                pages.push(ids(&page));
            }
            let seen: Vec<Uuid> = pages.into_iter().rev().flatten().collect();
            assert_eq!(seen, expected, "backward pages for {effective:?}");

            // A forward cursor works as `before`: the page before page 2 is page 1.
            let first_page = list_tasks(
                db,
                &TaskListQuery {
                    page: page_request(Some(20), None, None, None).unwrap(),
                    ..q.clone()
                },
            )
            .await
            .unwrap();
            let second_page = TaskListQuery {
                page: page_request(Some(20), first_page.cursors.last().cloned(), None, None)
                    .unwrap(),
                ..q.clone()
            };
            let second_page = list_tasks(db, &second_page).await.unwrap();
            let back = TaskListQuery {
                page: page_request(None, None, Some(20), second_page.cursors.first().cloned())
                    .unwrap(),
                ..q.clone()
            };
            let back = list_tasks(db, &back).await.unwrap();
            assert_eq!(ids(&back), ids(&first_page));
            assert_eq!(back.cursors, first_page.cursors);
            assert!(!back.has_previous_page && back.has_next_page);
        }
    }
);

on_both_databases!(count_ignores_paging_and_matches_filter_and_search, |t| {
    let db = &t.db;
    seed_paging_fixture(db).await;
    let first_two = TaskListQuery {
        page: page_request(Some(2), None, None, None).unwrap(),
        ..query(OWNER)
    };
    assert_eq!(count_tasks(db, &first_two).await.unwrap(), 45);
    let undated = filtered(TaskFilterSpec {
        has_due_date: Some(false),
        ..TaskFilterSpec::default()
    });
    assert_eq!(count_tasks(db, &undated).await.unwrap(), 12);
    let reviews = TaskListQuery {
        filter: Some(TaskFilterSpec {
            priority: Some(vec![0]),
            ..TaskFilterSpec::default()
        }),
        ..searching("review")
    };
    // "review" is on i % 3 == 0, which is exactly priority 0.
    assert_eq!(count_tasks(db, &reviews).await.unwrap(), 15);
    assert_eq!(
        count_tasks(db, &searching("nothing-like-this"))
            .await
            .unwrap(),
        0
    );
});
