//! The task list service (`graphql::service::task_list`): filters, tags, full-text search, sort,
//! keyset paging, counting and input validation, each on SQLite and PostgreSQL.
//!
//! Fixtures are inserted directly with entity ActiveModels (a `users` row first, for the
//! foreign key), with explicit, distinct timestamps that keep microsecond digits so that
//! cursors are exercised at full stored precision.
//!
//! The seeding and query helpers live here; the tests are grouped by what they cover:
//! `filters`, `tags`, `search`, `sorting`, `paging` and `validation`; `api` checks search,
//! title sort and date precision end to end through the GraphQL API, with explicit answers.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod api;
mod filters;
mod paging;
mod search;
mod sorting;
mod tags;
mod validation;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use entities::priority::Priority;
use entities::recurrence::RecurrenceAnchor;
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
            priority: Set(Priority::from_rank(new.priority).expect("a priority rank")),
            completed: Set(new.completed),
            completed_at: Set(new.completed.then_some(created)),
            due_at: Set(new.due_at),
            recurrence_rule: Set(new.recurring.then(|| "FREQ=WEEKLY".to_owned())),
            recurrence_timezone: Set(new.recurring.then(|| "UTC".to_owned())),
            recurrence_anchor: Set(new.recurring.then_some(RecurrenceAnchor::Schedule)),
            series_id: Set(new.recurring.then_some(id)),
            occurrence_index: Set(new.recurring.then_some(0)),
            generated_from_task_id: Set(None),
            version: Set(1),
            created_at: Set(created),
            updated_at: Set(updated),
            // The search columns are derived by `before_save`.
            ..Default::default()
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
        Err(ApiError::BadUserInput { message, .. }) => message,
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}

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
