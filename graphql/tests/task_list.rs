//! The task list service (`graphql::service::task_list`): filters, tags, full-text search, sort,
//! keyset paging, counting and input validation, each on SQLite and PostgreSQL.
//!
//! Fixtures are inserted directly with entity ActiveModels (a `users` row first, for the
//! foreign key), with explicit, distinct timestamps that keep microsecond digits so that
//! cursors are exercised at full stored precision.
#![allow(clippy::unwrap_used)]

mod support;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use entities::{tag, task, task_tag, user};
use graphql::error::ApiError;
use graphql::service::task_list::{
    PageRequest, SortDirection, SortField, SortKey, TagMatchSpec, TaskFilterSpec, TaskListQuery,
    TaskPage, count_tasks, list_tasks, page_request,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use uuid::Uuid;

const OWNER: &str = "user-a";
const OTHER_OWNER: &str = "user-b";

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// The clock every query runs at: ten days after `base`.
fn now() -> DateTime<Utc> {
    base() + Duration::days(10)
}

fn days(n: i64) -> Option<DateTime<Utc>> {
    Some(base() + Duration::days(n) + Duration::microseconds(123_457))
}

/// A task to insert; `Default` is an open, priority-NONE task without due date or tags.
#[derive(Clone, Default)]
struct NewTask {
    title: String,
    description: String,
    priority: i16,
    completed: bool,
    due_at: Option<DateTime<Utc>>,
    recurring: bool,
    tags: Vec<&'static str>,
}

fn titled(title: &str) -> NewTask {
    NewTask {
        title: title.to_owned(),
        ..NewTask::default()
    }
}

/// Inserts users, tags and tasks; the n-th task gets `created_at = base + n * 61.000001 s` and
/// an `updated_at` that runs the other way, so the two sorts differ.
struct Seed<'a> {
    db: &'a DatabaseConnection,
    owner: String,
    inserted: i64,
    tags: HashMap<String, Uuid>,
}

impl<'a> Seed<'a> {
    async fn new(db: &'a DatabaseConnection, owner: &str) -> Seed<'a> {
        user::ActiveModel {
            id: Set(owner.to_owned()),
            timezone: Set("UTC".to_owned()),
            webhook_url: Set(None),
            webhook_secret: Set(None),
            created_at: Set(base()),
            updated_at: Set(base()),
        }
        .insert(db)
        .await
        .unwrap();
        Seed {
            db,
            owner: owner.to_owned(),
            inserted: 0,
            tags: HashMap::new(),
        }
    }

    async fn tag(&mut self, name: &str) -> Uuid {
        if let Some(id) = self.tags.get(name) {
            return *id;
        }
        let id = Uuid::new_v4();
        tag::ActiveModel {
            id: Set(id),
            owner_id: Set(self.owner.clone()),
            name: Set(name.to_owned()),
            name_key: Set(tag::name_key(name)),
            color: Set(None),
            created_at: Set(base()),
        }
        .insert(self.db)
        .await
        .unwrap();
        self.tags.insert(name.to_owned(), id);
        id
    }

    async fn task(&mut self, new: NewTask) -> Uuid {
        let n = self.inserted;
        self.inserted += 1;
        let id = Uuid::new_v4();
        let created = base() + Duration::microseconds(n * 61_000_001);
        let updated = base() + Duration::days(100) - Duration::microseconds(n * 59_000_003);
        task::ActiveModel {
            id: Set(id),
            owner_id: Set(self.owner.clone()),
            title: Set(new.title),
            description: Set(new.description),
            priority: Set(new.priority),
            completed: Set(new.completed),
            completed_at: Set(new.completed.then_some(created)),
            due_at: Set(new.due_at),
            recurrence_rule: Set(new.recurring.then(|| "FREQ=WEEKLY".to_owned())),
            recurrence_timezone: Set(new.recurring.then(|| "UTC".to_owned())),
            recurrence_anchor: Set(new.recurring.then(|| "SCHEDULE".to_owned())),
            series_id: Set(new.recurring.then_some(id)),
            occurrence_index: Set(new.recurring.then_some(0)),
            generated_from_task_id: Set(None),
            version: Set(1),
            created_at: Set(created),
            updated_at: Set(updated),
        }
        .insert(self.db)
        .await
        .unwrap();
        for name in new.tags {
            let tag_id = self.tag(name).await;
            task_tag::ActiveModel {
                task_id: Set(id),
                tag_id: Set(tag_id),
            }
            .insert(self.db)
            .await
            .unwrap();
        }
        id
    }
}

fn query(owner: &str) -> TaskListQuery {
    TaskListQuery {
        owner_id: owner.to_owned(),
        filter: None,
        search: None,
        sort: Vec::new(),
        page: PageRequest::Forward {
            first: Some(100),
            after: None,
        },
        now: now(),
    }
}

fn filtered(filter: TaskFilterSpec) -> TaskListQuery {
    TaskListQuery {
        filter: Some(filter),
        ..query(OWNER)
    }
}

fn searching(text: &str) -> TaskListQuery {
    TaskListQuery {
        search: Some(text.to_owned()),
        ..query(OWNER)
    }
}

fn key(field: SortField, direction: SortDirection) -> SortKey {
    SortKey { field, direction }
}

fn sorted(sort: Vec<SortKey>) -> TaskListQuery {
    TaskListQuery {
        sort,
        ..query(OWNER)
    }
}

fn tags(any: &[&str], all: &[&str], none: &[&str]) -> TaskFilterSpec {
    let list =
        |names: &[&str]| (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect());
    TaskFilterSpec {
        tags: Some(TagMatchSpec {
            any: list(any),
            all: list(all),
            none: list(none),
        }),
        ..TaskFilterSpec::default()
    }
}

/// The titles of the first page, in list order.
async fn titles(db: &DatabaseConnection, q: TaskListQuery) -> Vec<String> {
    let page = list_tasks(db, &q).await.unwrap();
    page.tasks.into_iter().map(|t| t.title).collect()
}

/// The titles of the first page as a sorted set, and checks that `count_tasks` agrees.
async fn matching(db: &DatabaseConnection, q: TaskListQuery) -> Vec<String> {
    let found = titles(db, q.clone()).await;
    assert_eq!(
        count_tasks(db, &q).await.unwrap(),
        found.len() as u64,
        "count for {q:?}"
    );
    let set: BTreeSet<String> = found.into_iter().collect();
    set.into_iter().collect()
}

fn names(list: &[&str]) -> Vec<String> {
    let set: BTreeSet<String> = list.iter().map(|s| s.to_string()).collect();
    set.into_iter().collect()
}

/// The message of a `BAD_USER_INPUT` error.
fn bad_input<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
    match result {
        Err(ApiError::BadUserInput(message)) => message,
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}

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

on_both_databases!(
    tag_matches_are_case_insensitive_and_unknown_names_behave_per_list,
    |t| {
        let db = &t.db;
        let mut seed = Seed::new(db, OWNER).await;
        seed.task(NewTask {
            tags: vec!["Work"],
            ..titled("a")
        })
        .await;
        seed.task(NewTask {
            tags: vec!["Work", "home"],
            ..titled("b")
        })
        .await;
        seed.task(NewTask {
            tags: vec!["home"],
            ..titled("c")
        })
        .await;
        seed.task(titled("d")).await;
        seed.task(NewTask {
            tags: vec!["URGENT", "Work"],
            ..titled("e")
        })
        .await;

        assert_eq!(
            matching(db, filtered(tags(&["WORK"], &[], &[]))).await,
            names(&["a", "b", "e"])
        );
        // Unknown names in `any` match nothing for that name.
        assert_eq!(
            matching(db, filtered(tags(&[" Home ", "nope"], &[], &[]))).await,
            names(&["b", "c"])
        );
        assert!(
            matching(db, filtered(tags(&["nope"], &[], &[])))
                .await
                .is_empty()
        );

        assert_eq!(
            matching(db, filtered(tags(&[], &["work", "HOME"], &[]))).await,
            names(&["b"])
        );
        // An unknown name in `all` means no task can have every tag.
        assert!(
            matching(db, filtered(tags(&[], &["work", "nope"], &[])))
                .await
                .is_empty()
        );

        assert_eq!(
            matching(db, filtered(tags(&[], &[], &["wOrK"]))).await,
            names(&["c", "d"])
        );
        assert_eq!(
            matching(db, filtered(tags(&[], &[], &["urgent", "HOME"]))).await,
            names(&["a", "d"])
        );
        assert_eq!(
            matching(db, filtered(tags(&["work"], &[], &["home"]))).await,
            names(&["a", "e"])
        );

        let nested = TaskFilterSpec {
            or: Some(vec![
                tags(&["urgent"], &[], &[]),
                tags(&[], &["home", "work"], &[]),
            ]),
            ..TaskFilterSpec::default()
        };
        assert_eq!(matching(db, filtered(nested)).await, names(&["b", "e"]));

        // An unknown name in `none` is most likely a typo: rejected, naming the path.
        let typo = TaskFilterSpec {
            or: Some(vec![tags(&[], &[], &["urgnt"])]),
            ..TaskFilterSpec::default()
        };
        let message = bad_input(list_tasks(db, &filtered(typo.clone())).await);
        assert_eq!(message, "filter.or[0].tags.none: unknown tag \"urgnt\"");
        assert!(
            bad_input(count_tasks(db, &filtered(typo)).await).starts_with("filter.or[0].tags.none")
        );
        let top = bad_input(list_tasks(db, &filtered(tags(&[], &[], &["nope"]))).await);
        assert!(top.starts_with("filter.tags.none: unknown tag"), "{top}");
    }
);

/// Tasks for the search tests: stems, case, description-only matches.
async fn seed_search_fixture(db: &DatabaseConnection) {
    let mut seed = Seed::new(db, OWNER).await;
    seed.task(NewTask {
        description: "quarterly numbers".into(),
        ..titled("Run the report")
    })
    .await;
    seed.task(NewTask {
        description: "then he RUNS it twice".into(),
        ..titled("Weekly summary")
    })
    .await;
    seed.task(NewTask {
        description: "buy new ones".into(),
        completed: true,
        ..titled("Running shoes")
    })
    .await;
    seed.task(NewTask {
        description: "around the block".into(),
        ..titled("Walk the dog")
    })
    .await;
    seed.task(NewTask {
        description: "mention the report in passing".into(),
        ..titled("Email Bob")
    })
    .await;
    seed.task(NewTask {
        description: String::new(),
        ..titled("Quarterly report")
    })
    .await;
}

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

/// Five tasks with distinct titles, priorities and due dates (two without).
async fn seed_sort_fixture(db: &DatabaseConnection) -> HashMap<String, Uuid> {
    let mut seed = Seed::new(db, OWNER).await;
    let mut ids = HashMap::new();
    for new in [
        NewTask {
            priority: 2,
            due_at: days(3),
            ..titled("charlie")
        },
        NewTask {
            priority: 4,
            ..titled("Alpha")
        },
        NewTask {
            priority: 0,
            due_at: days(1),
            ..titled("bravo")
        },
        NewTask {
            priority: 2,
            due_at: days(2),
            ..titled("Delta")
        },
        NewTask {
            priority: 1,
            ..titled("echo")
        },
    ] {
        let title = new.title.clone();
        ids.insert(title, seed.task(new).await);
    }
    ids
}

/// `a` and `b` in id order (ascending or descending).
fn by_id<'s>(
    ids: &HashMap<String, Uuid>,
    a: &'s str,
    b: &'s str,
    direction: SortDirection,
) -> [&'s str; 2] {
    let ascending = if ids[a] < ids[b] { [a, b] } else { [b, a] };
    match direction {
        SortDirection::Asc => ascending,
        SortDirection::Desc => [ascending[1], ascending[0]],
    }
}

on_both_databases!(
    every_sort_field_orders_both_ways_with_due_less_tasks_last,
    |t| {
        use SortDirection::{Asc, Desc};
        let db = &t.db;
        let ids = seed_sort_fixture(db).await;
        let order = |field, direction| sorted(vec![key(field, direction)]);

        let created = ["charlie", "Alpha", "bravo", "Delta", "echo"];
        assert_eq!(titles(db, order(SortField::CreatedAt, Asc)).await, created);
        let newest_first: Vec<&str> = created.iter().rev().copied().collect();
        assert_eq!(
            titles(db, order(SortField::CreatedAt, Desc)).await,
            newest_first
        );
        assert_eq!(
            titles(db, query(OWNER)).await,
            newest_first,
            "default sort is CREATED_AT DESC"
        );
        assert_eq!(
            titles(db, order(SortField::UpdatedAt, Asc)).await,
            newest_first
        );
        assert_eq!(titles(db, order(SortField::UpdatedAt, Desc)).await, created);

        assert_eq!(
            titles(db, order(SortField::Title, Asc)).await,
            ["Alpha", "bravo", "charlie", "Delta", "echo"]
        );
        assert_eq!(
            titles(db, order(SortField::Title, Desc)).await,
            ["echo", "Delta", "charlie", "bravo", "Alpha"]
        );

        let [p1, p2] = by_id(&ids, "charlie", "Delta", Asc);
        assert_eq!(
            titles(db, order(SortField::Priority, Asc)).await,
            ["bravo", "echo", p1, p2, "Alpha"]
        );
        let [p1, p2] = by_id(&ids, "charlie", "Delta", Desc);
        assert_eq!(
            titles(db, order(SortField::Priority, Desc)).await,
            ["Alpha", p1, p2, "echo", "bravo"]
        );

        let [n1, n2] = by_id(&ids, "Alpha", "echo", Asc);
        assert_eq!(
            titles(db, order(SortField::DueAt, Asc)).await,
            ["bravo", "Delta", "charlie", n1, n2]
        );
        let [n1, n2] = by_id(&ids, "Alpha", "echo", Desc);
        assert_eq!(
            titles(db, order(SortField::DueAt, Desc)).await,
            ["charlie", "Delta", "bravo", n1, n2]
        );

        // Earlier keys win; later keys break their ties.
        let multi = sorted(vec![
            key(SortField::Priority, Desc),
            key(SortField::DueAt, Asc),
        ]);
        assert_eq!(
            titles(db, multi).await,
            ["Alpha", "Delta", "charlie", "echo", "bravo"]
        );
        let multi = sorted(vec![
            key(SortField::Priority, Asc),
            key(SortField::Title, Desc),
        ]);
        assert_eq!(
            titles(db, multi).await,
            ["bravo", "echo", "Delta", "charlie", "Alpha"]
        );
    }
);

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
/// compared lower-cased, then `id` in the direction of the last key.
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
                    a.title.to_lowercase().cmp(&b.title.to_lowercase()),
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
        let matching: Vec<task::Model> =
            tasks.iter().filter(|t| t.priority >= 1).cloned().collect();
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
