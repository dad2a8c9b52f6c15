//! Filter fields, their `and`/`or`/`not` nesting, and owner scoping.

use super::*;

/// Six tasks covering every filter field; `now` is day 10.
async fn seed_filter_fixture(db: &DatabaseConnection) {
    let mut seed = Seed::new(db, OWNER).await;
    seed.task(NewTask {
        completed: true,
        priority: 1,
        due_at: days(1),
        ..titled("done")
    })
    .await;
    seed.task(NewTask {
        priority: 3,
        due_at: days(2),
        ..titled("overdue")
    })
    .await;
    seed.task(NewTask {
        priority: 2,
        due_at: days(5),
        ..titled("edge")
    })
    .await;
    seed.task(NewTask {
        priority: 4,
        due_at: days(20),
        ..titled("future")
    })
    .await;
    seed.task(titled("no due")).await;
    seed.task(NewTask {
        priority: 2,
        due_at: days(30),
        recurring: true,
        ..titled("recurring")
    })
    .await;
}

on_both_databases!(each_filter_field_selects_the_matching_tasks, |t| {
    let db = &t.db;
    seed_filter_fixture(db).await;
    let f = TaskFilterSpec::default;

    let done = TaskFilterSpec {
        completed: Some(true),
        ..f()
    };
    assert_eq!(matching(db, filtered(done)).await, names(&["done"]));
    let open = TaskFilterSpec {
        completed: Some(false),
        ..f()
    };
    assert_eq!(matching(db, filtered(open)).await.len(), 5);

    let high = TaskFilterSpec {
        priority: Some(vec![3, 4, 4]),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(high)).await,
        names(&["overdue", "future"])
    );
    let at_least = TaskFilterSpec {
        min_priority: Some(2),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(at_least)).await,
        names(&["overdue", "edge", "future", "recurring"])
    );

    // dueAfter is inclusive and dueBefore exclusive: "edge" is due exactly at the bound.
    let after = TaskFilterSpec {
        due_after: days(5),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(after)).await,
        names(&["edge", "future", "recurring"])
    );
    let before = TaskFilterSpec {
        due_before: days(5),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(before)).await,
        names(&["done", "overdue"])
    );
    let window = TaskFilterSpec {
        due_after: days(2),
        due_before: days(20),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(window)).await,
        names(&["overdue", "edge"])
    );
    let inverted = TaskFilterSpec {
        due_after: days(20),
        due_before: days(2),
        ..f()
    };
    assert!(matching(db, filtered(inverted)).await.is_empty());

    let undated = TaskFilterSpec {
        has_due_date: Some(false),
        ..f()
    };
    assert_eq!(matching(db, filtered(undated)).await, names(&["no due"]));
    let dated = TaskFilterSpec {
        has_due_date: Some(true),
        ..f()
    };
    assert_eq!(matching(db, filtered(dated)).await.len(), 5);

    let overdue = TaskFilterSpec {
        overdue: Some(true),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(overdue)).await,
        names(&["overdue", "edge"])
    );
    // Not overdue: completed ones, future ones, and those without a due date.
    let not_overdue = TaskFilterSpec {
        overdue: Some(false),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(not_overdue)).await,
        names(&["done", "future", "no due", "recurring"])
    );

    let recurring = TaskFilterSpec {
        recurring: Some(true),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(recurring)).await,
        names(&["recurring"])
    );
    let one_off = TaskFilterSpec {
        recurring: Some(false),
        ..f()
    };
    assert_eq!(matching(db, filtered(one_off)).await.len(), 5);

    // Several fields at once are AND-ed.
    let combined = TaskFilterSpec {
        completed: Some(false),
        min_priority: Some(2),
        due_before: days(10),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(combined)).await,
        names(&["overdue", "edge"])
    );
});

on_both_databases!(and_or_not_nest_and_not_is_the_exact_complement, |t| {
    let db = &t.db;
    seed_filter_fixture(db).await;
    let f = TaskFilterSpec::default;
    let urgent_or_undated_open = TaskFilterSpec {
        or: Some(vec![
            TaskFilterSpec {
                priority: Some(vec![4]),
                ..f()
            },
            TaskFilterSpec {
                and: Some(vec![
                    TaskFilterSpec {
                        completed: Some(false),
                        ..f()
                    },
                    TaskFilterSpec {
                        has_due_date: Some(false),
                        ..f()
                    },
                ]),
                ..f()
            },
        ]),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(urgent_or_undated_open.clone())).await,
        names(&["future", "no due"])
    );
    let complement = TaskFilterSpec {
        not: Some(Box::new(urgent_or_undated_open)),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(complement)).await,
        names(&["done", "overdue", "edge", "recurring"])
    );

    // NOT of a due-date comparison includes tasks without a due date.
    let not_before = TaskFilterSpec {
        not: Some(Box::new(TaskFilterSpec {
            due_before: days(5),
            ..f()
        })),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(not_before)).await,
        names(&["edge", "future", "no due", "recurring"])
    );

    // Top-level fields AND with `or`; `and` requires every member; double negation is identity.
    let mixed = TaskFilterSpec {
        completed: Some(false),
        or: Some(vec![
            TaskFilterSpec {
                overdue: Some(true),
                ..f()
            },
            TaskFilterSpec {
                recurring: Some(true),
                ..f()
            },
        ]),
        and: Some(vec![
            TaskFilterSpec {
                min_priority: Some(2),
                ..f()
            },
            TaskFilterSpec {
                has_due_date: Some(true),
                ..f()
            },
        ]),
        not: Some(Box::new(TaskFilterSpec {
            not: Some(Box::new(TaskFilterSpec {
                due_after: days(3),
                ..f()
            })),
            ..f()
        })),
        ..f()
    };
    assert_eq!(
        matching(db, filtered(mixed)).await,
        names(&["edge", "recurring"])
    );
    // An empty filter object matches everything, also inside `or`.
    let trivial = TaskFilterSpec {
        or: Some(vec![f()]),
        ..f()
    };
    assert_eq!(matching(db, filtered(trivial)).await.len(), 6);
});

on_both_databases!(another_owners_tasks_never_appear, |t| {
    let db = &t.db;
    let mut mine = Seed::new(db, OWNER).await;
    mine.task(NewTask {
        tags: vec!["work"],
        description: "launch plan".into(),
        ..titled("mine")
    })
    .await;
    let mut theirs = Seed::new(db, OTHER_OWNER).await;
    for i in 0..3 {
        theirs
            .task(NewTask {
                tags: vec!["work", "secret"],
                description: "launch plan".into(),
                ..titled(&format!("theirs {i}"))
            })
            .await;
    }
    assert_eq!(matching(db, query(OWNER)).await, names(&["mine"]));
    assert_eq!(matching(db, searching("launch")).await, names(&["mine"]));
    assert_eq!(
        matching(db, filtered(tags(&["work"], &["WORK"], &[]))).await,
        names(&["mine"])
    );
    assert!(
        matching(db, filtered(tags(&["secret"], &[], &[])))
            .await
            .is_empty()
    );
    // Tag names resolve per owner: the other owner's tag is unknown here.
    let message = bad_input(list_tasks(db, &filtered(tags(&[], &[], &["secret"]))).await);
    assert!(
        message.starts_with("filter.tags.none: unknown tag"),
        "{message}"
    );
    assert_eq!(count_tasks(db, &query(OTHER_OWNER)).await.unwrap(), 3);
});
