//! `tasks(filter, search, sort, first, after, last, before)`: its inputs and `TaskConnection`.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entities::tag;
use uuid::Uuid;

use super::task::{Priority, Task};
use super::{db, now, viewer};
use crate::service::task_list as service;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SortDirection {
    Asc,
    Desc,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskSortField {
    DueAt,
    Priority,
    CreatedAt,
    UpdatedAt,
    /// Case- and accent-insensitive: titles compare by their folded form (lower case, accents
    /// removed, ß as ss, compatibility forms such as ligatures as plain letters) code point by
    /// code point, on the first 250 characters, the same on every database; ties by id.
    Title,
    /// Only with `search`.
    Relevance,
}

/// One sort key. Tasks without a due date sort last in both directions.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct TaskSort {
    pub field: TaskSortField,
    #[graphql(default_with = "Some(SortDirection::Asc)")]
    pub direction: Option<SortDirection>,
}

/// Tag names (case-insensitive). An unknown name in `none` is an error.
#[derive(InputObject, Clone, Debug, Default)]
pub struct TagMatch {
    pub any: Option<Vec<String>>,
    pub all: Option<Vec<String>>,
    pub none: Option<Vec<String>>,
}

/// Every set field must hold (AND); `and`, `or` and `not` combine nested filters.
#[derive(InputObject, Clone, Debug, Default)]
pub struct TaskFilter {
    pub completed: Option<bool>,
    /// Any of these.
    pub priority: Option<Vec<Priority>>,
    /// At least this.
    pub min_priority: Option<Priority>,
    pub tags: Option<TagMatch>,
    /// Inclusive. At most microsecond precision: more fractional digits are an error.
    pub due_after: Option<DateTime<Utc>>,
    /// Exclusive. At most microsecond precision: more fractional digits are an error.
    pub due_before: Option<DateTime<Utc>>,
    pub has_due_date: Option<bool>,
    /// Due before now and not completed.
    pub overdue: Option<bool>,
    pub recurring: Option<bool>,
    pub and: Option<Vec<TaskFilter>>,
    pub or: Option<Vec<TaskFilter>>,
    pub not: Option<Box<TaskFilter>>,
}

fn rank(p: Priority) -> i16 {
    entities::priority::Priority::from(p).rank()
}

impl From<TaskFilter> for service::TaskFilterSpec {
    fn from(f: TaskFilter) -> Self {
        service::TaskFilterSpec {
            completed: f.completed,
            priority: f.priority.map(|ps| ps.into_iter().map(rank).collect()),
            min_priority: f.min_priority.map(rank),
            tags: f.tags.map(|t| service::TagMatchSpec {
                any: t.any,
                all: t.all,
                none: t.none,
            }),
            due_after: f.due_after,
            due_before: f.due_before,
            has_due_date: f.has_due_date,
            overdue: f.overdue,
            recurring: f.recurring,
            and: f.and.map(|v| v.into_iter().map(Into::into).collect()),
            or: f.or.map(|v| v.into_iter().map(Into::into).collect()),
            not: f.not.map(|n| Box::new((*n).into())),
        }
    }
}

impl From<TaskSort> for service::SortKey {
    fn from(s: TaskSort) -> Self {
        service::SortKey {
            field: match s.field {
                TaskSortField::DueAt => service::SortField::DueAt,
                TaskSortField::Priority => service::SortField::Priority,
                TaskSortField::CreatedAt => service::SortField::CreatedAt,
                TaskSortField::UpdatedAt => service::SortField::UpdatedAt,
                TaskSortField::Title => service::SortField::Title,
                TaskSortField::Relevance => service::SortField::Relevance,
            },
            direction: match s.direction.unwrap_or(SortDirection::Asc) {
                SortDirection::Asc => service::SortDirection::Asc,
                SortDirection::Desc => service::SortDirection::Desc,
            },
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TaskEdge {
    pub cursor: String,
    #[graphql(skip)]
    pub task: entities::task::Model,
    #[graphql(skip)]
    pub tags: Option<Vec<tag::Model>>,
}

#[ComplexObject]
impl TaskEdge {
    async fn node(&self) -> Task {
        Task(self.task.clone(), None, self.tags.clone())
    }
}

/// A page of tasks. `totalCount` runs a COUNT only when selected.
pub struct TaskConnection {
    query: service::TaskListQuery,
    page: service::TaskPage,
    /// The page's tags, by task, when the selection asks for them (loaded with the page, so
    /// `tags` does not wait for the batch loader).
    tags: Option<HashMap<Uuid, Vec<tag::Model>>>,
}

impl TaskConnection {
    fn tags_of(&self, task: &entities::task::Model) -> Option<Vec<tag::Model>> {
        self.tags
            .as_ref()
            .map(|tags| tags.get(&task.id).cloned().unwrap_or_default())
    }
}

#[Object]
impl TaskConnection {
    async fn edges(&self) -> Vec<TaskEdge> {
        self.page
            .tasks
            .iter()
            .zip(&self.page.cursors)
            .map(|(t, c)| TaskEdge {
                cursor: c.clone(),
                task: t.clone(),
                tags: self.tags_of(t),
            })
            .collect()
    }

    async fn nodes(&self) -> Vec<Task> {
        self.page
            .tasks
            .iter()
            .map(|t| Task(t.clone(), None, self.tags_of(t)))
            .collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.page.has_next_page,
            has_previous_page: self.page.has_previous_page,
            start_cursor: self.page.cursors.first().cloned(),
            end_cursor: self.page.cursors.last().cloned(),
        }
    }

    /// All tasks matching the filter and search, ignoring paging. Exact: one COUNT over the
    /// matching tasks, so it costs more the more tasks match; only run when selected.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = service::count_tasks(db(ctx), &self.query).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

#[derive(Default)]
pub struct TaskListQuery;

#[Object]
impl TaskListQuery {
    /// The caller's tasks. `search` is full text over title and description, combined with
    /// `filter`: every word must occur, each in the title or the description, in any order. Case
    /// and accents are ignored (`cafe` finds "Café", `strasse` finds "Straße"); anything that is
    /// not a letter or digit separates words (hyphens and apostrophes too); English words match
    /// their other forms by stem (`watering` finds "Water"); stop words such as `the` count like
    /// any word; whole words only, no prefixes; each Chinese or Japanese character is a word; a
    /// search without any word matches nothing. The same on every database. With `search` and no
    /// `sort`, results are in relevance order, otherwise the default is CREATED_AT DESC.
    /// `first`/`last` default to 20, at most 100.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "first.or(last).map_or(20, |n| n.clamp(1, 100) as usize) * child_complexity"
    )]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        search: Option<String>,
        sort: Option<Vec<TaskSort>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<TaskConnection> {
        let user = viewer(ctx)?;
        let page = service::page_request(first, after, last, before)?;
        let query = service::TaskListQuery {
            owner_id: user.id.clone(),
            filter: filter.map(Into::into),
            search,
            sort: sort
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            page,
            now: now(ctx),
        };
        let look = ctx.look_ahead();
        // A selection of only `totalCount` needs no page: its arguments are checked as for a
        // page, and only the COUNT is read.
        let wants_page = look.field("edges").exists()
            || look.field("nodes").exists()
            || look.field("pageInfo").exists();
        let page = if wants_page {
            service::list_tasks(db(ctx), &query).await?
        } else {
            service::check_paging(&query)?;
            service::TaskPage {
                tasks: Vec::new(),
                cursors: Vec::new(),
                has_next_page: false,
                has_previous_page: false,
            }
        };
        // The page's tags in the same resolver when the selection asks for them: one statement
        // right after the page instead of the batch loader's wait for every `tags` field.
        let wants_tags = look.field("edges").field("node").field("tags").exists()
            || look.field("nodes").field("tags").exists();
        let tags = if wants_tags && !page.tasks.is_empty() {
            let ids: Vec<Uuid> = page.tasks.iter().map(|t| t.id).collect();
            Some(crate::service::tag::tags_of_tasks(db(ctx), &ids).await?)
        } else {
            None
        };
        Ok(TaskConnection { query, page, tags })
    }
}
