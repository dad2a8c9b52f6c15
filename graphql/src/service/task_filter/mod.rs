//! Task list filters and search text: validation and translation into SQL conditions on
//! `tasks`. Pure: the caller resolves tag names to ids (one query) and passes them in.
//!
//! Every condition is two-valued (never SQL NULL), so `not` is an exact complement: a
//! comparison on the nullable `due_at` is guarded with `due_at IS NOT NULL`, which makes
//! `not: {dueBefore: X}` include tasks without a due date and `overdue: false` include them too.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entities::limits::{
    MAX_SEARCH_CHARS, MAX_TAG_MATCH_NAMES, date_in_range, no_nul, whole_microseconds,
};
use entities::{task, task_tag};
use sea_orm::DbBackend;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SelectStatement};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Tag names to match, compared case-insensitively (by `tags.name_key`).
///
/// Serialised (as a calendar feed stores its filter) with the GraphQL input's field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagMatchSpec {
    /// The task has at least one of these tags. Unknown names match nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<String>>,
    /// The task has every one of these tags. An unknown name means no task matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<String>>,
    /// The task has none of these tags. An unknown name is an error: it is most likely a typo,
    /// and ignoring it would silently return tasks the client meant to exclude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none: Option<Vec<String>>,
}

/// The `TaskFilter` input: every set field must hold (AND).
///
/// Serialised (as a calendar feed stores its filter, `calendar_feeds.filter`) as JSON with the
/// GraphQL input's field names (`minPriority`, `dueBefore`, ...), absent fields left out and
/// priorities as their stored ranks (0 for NONE to 4 for URGENT). Reading refuses unknown
/// fields, so a stored filter never loses a condition silently.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskFilterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    /// Priority ranks (0..=4); the task has any of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Vec<i16>>,
    /// The task's priority rank is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_priority: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagMatchSpec>,
    /// Inclusive lower bound on `due_at`; tasks without a due date never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_after: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `due_at`; tasks without a due date never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_before: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_due_date: Option<bool>,
    /// `true`: due before `now` and not completed. `false`: the negation (so tasks without a
    /// due date are included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<bool>,
    /// Whether the task has a recurrence rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Vec<TaskFilterSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or: Option<Vec<TaskFilterSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<TaskFilterSpec>>,
}

/// Deepest filter nesting accepted (the top-level filter is level 1). Real filters are two or
/// three levels deep; the limit bounds the recursion and the size of the generated SQL.
pub const MAX_FILTER_DEPTH: usize = 8;

/// Most filter objects (the top-level one and every `and`/`or`/`not` member) in one request,
/// which bounds the number of SQL conditions one request can generate.
pub const MAX_FILTER_NODES: usize = 100;

/// Highest priority rank (`URGENT`).
const MAX_PRIORITY_RANK: i16 = 4;

/// Checks the filter's shape and limits and returns every tag name key it mentions, so that
/// the caller can resolve them all in one query. Errors name the offending field path.
pub(crate) fn validate_filter(filter: &TaskFilterSpec) -> ApiResult<BTreeSet<String>> {
    let mut walk = Validation {
        nodes: 0,
        tag_keys: BTreeSet::new(),
    };
    walk.visit(filter, "filter", 1)?;
    Ok(walk.tag_keys)
}

struct Validation {
    nodes: usize,
    tag_keys: BTreeSet<String>,
}

impl Validation {
    fn visit(&mut self, filter: &TaskFilterSpec, path: &str, depth: usize) -> ApiResult<()> {
        if depth > MAX_FILTER_DEPTH {
            return Err(ApiError::invalid(
                path,
                format!(
                    "{path}: filters are nested too deeply; the limit is {MAX_FILTER_DEPTH} levels"
                ),
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_FILTER_NODES {
            return Err(ApiError::invalid(
                path,
                format!(
                    "filter has more than {MAX_FILTER_NODES} nested filters (at {path}); \
                 the limit is {MAX_FILTER_NODES}"
                ),
            ));
        }
        if let Some(ranks) = &filter.priority {
            if ranks.is_empty() {
                return Err(empty_list(&format!("{path}.priority")));
            }
            for (i, rank) in ranks.iter().enumerate() {
                check_rank(&format!("{path}.priority[{i}]"), *rank)?;
            }
        }
        if let Some(rank) = filter.min_priority {
            check_rank(&format!("{path}.minPriority"), rank)?;
        }
        for (name, bound) in [
            ("dueAfter", filter.due_after),
            ("dueBefore", filter.due_before),
        ] {
            if let Some(bound) = bound {
                let field = format!("{path}.{name}");
                date_in_range(&field, bound)
                    .and_then(|()| whole_microseconds(&field, bound))
                    .map_err(ApiError::at(&field))?;
            }
        }
        if let Some(tags) = &filter.tags {
            for (name, list) in tag_lists(tags) {
                let Some(names) = list else { continue };
                let list_path = format!("{path}.tags.{name}");
                if names.is_empty() {
                    return Err(empty_list(&list_path));
                }
                if names.len() > MAX_TAG_MATCH_NAMES {
                    return Err(ApiError::invalid(
                        &list_path,
                        format!(
                            "{list_path} has {} names; the limit is {MAX_TAG_MATCH_NAMES}",
                            names.len()
                        ),
                    ));
                }
                for (i, name) in names.iter().enumerate() {
                    let field = format!("{list_path}[{i}]");
                    no_nul(&field, name).map_err(ApiError::at(&field))?;
                }
                self.tag_keys
                    .extend(names.iter().map(|n| entities::tag::name_key(n)));
            }
        }
        if let Some(members) = &filter.and {
            for (i, member) in members.iter().enumerate() {
                self.visit(member, &format!("{path}.and[{i}]"), depth + 1)?;
            }
        }
        if let Some(members) = &filter.or {
            if members.is_empty() {
                return Err(ApiError::invalid(
                    format!("{path}.or"),
                    format!("{path}.or must not be an empty list: no task could match it"),
                ));
            }
            for (i, member) in members.iter().enumerate() {
                self.visit(member, &format!("{path}.or[{i}]"), depth + 1)?;
            }
        }
        if let Some(inner) = &filter.not {
            self.visit(inner, &format!("{path}.not"), depth + 1)?;
        }
        Ok(())
    }
}

fn empty_list(path: &str) -> ApiError {
    ApiError::invalid(path, format!("{path} must not be an empty list"))
}

fn check_rank(path: &str, rank: i16) -> ApiResult<()> {
    if (0..=MAX_PRIORITY_RANK).contains(&rank) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            path,
            format!("{path} must be a priority rank between 0 and {MAX_PRIORITY_RANK}, not {rank}"),
        ))
    }
}

fn tag_lists(tags: &TagMatchSpec) -> [(&'static str, &Option<Vec<String>>); 3] {
    [("any", &tags.any), ("all", &tags.all), ("none", &tags.none)]
}

/// Translates a validated filter into a condition on `tasks`. `tag_ids` maps the owner's tag
/// name keys to ids (names the owner does not have are absent); `now` decides `overdue`.
pub(crate) fn filter_condition(
    filter: &TaskFilterSpec,
    tag_ids: &HashMap<String, Uuid>,
    now: DateTime<Utc>,
) -> ApiResult<Condition> {
    Translation {
        tag_ids,
        now,
        refuse_unknown_excluded: true,
    }
    .condition(filter, "filter")
}

/// [`filter_condition`] for a filter that was checked when it was stored (a calendar feed's):
/// a tag in `tags.none` that no longer exists (it was deleted since) excludes nothing, instead
/// of being an error, since no task can carry it.
pub(crate) fn stored_filter_condition(
    filter: &TaskFilterSpec,
    tag_ids: &HashMap<String, Uuid>,
    now: DateTime<Utc>,
) -> ApiResult<Condition> {
    Translation {
        tag_ids,
        now,
        refuse_unknown_excluded: false,
    }
    .condition(filter, "filter")
}

struct Translation<'a> {
    tag_ids: &'a HashMap<String, Uuid>,
    now: DateTime<Utc>,
    /// Whether an unknown name in `tags.none` is an error (a request's filter) or excludes
    /// nothing (a stored filter whose tag was deleted since).
    refuse_unknown_excluded: bool,
}

fn col(column: task::Column) -> Expr {
    Expr::col((task::Entity, column))
}

impl Translation<'_> {
    fn condition(&self, filter: &TaskFilterSpec, path: &str) -> ApiResult<Condition> {
        let due = || col(task::Column::DueAt);
        let mut all = Condition::all();
        if let Some(completed) = filter.completed {
            all = all.add(col(task::Column::Completed).eq(completed));
        }
        if let Some(ranks) = &filter.priority {
            let ranks: BTreeSet<i16> = ranks.iter().copied().collect();
            all = all.add(col(task::Column::Priority).is_in(ranks));
        }
        if let Some(rank) = filter.min_priority {
            all = all.add(col(task::Column::Priority).gte(rank));
        }
        if let Some(tags) = &filter.tags {
            all = all.add(self.tags(tags, &format!("{path}.tags"))?);
        }
        if let Some(after) = filter.due_after {
            all = all.add(
                due()
                    .is_not_null()
                    .and(due().gte(entities::to_db_precision(after))),
            );
        }
        if let Some(before) = filter.due_before {
            all = all.add(
                due()
                    .is_not_null()
                    .and(due().lt(entities::to_db_precision(before))),
            );
        }
        if let Some(has_due) = filter.has_due_date {
            all = all.add(if has_due {
                due().is_not_null()
            } else {
                due().is_null()
            });
        }
        if let Some(overdue) = filter.overdue {
            let is_overdue = Condition::all()
                .add(due().is_not_null())
                .add(due().lt(entities::to_db_precision(self.now)))
                .add(col(task::Column::Completed).eq(false));
            all = all.add(if overdue {
                is_overdue
            } else {
                is_overdue.not()
            });
        }
        if let Some(recurring) = filter.recurring {
            let rule = col(task::Column::RecurrenceRule);
            all = all.add(if recurring {
                rule.is_not_null()
            } else {
                rule.is_null()
            });
        }
        if let Some(members) = &filter.and {
            for (i, member) in members.iter().enumerate() {
                all = all.add(self.condition(member, &format!("{path}.and[{i}]"))?);
            }
        }
        if let Some(members) = &filter.or {
            let mut any = Condition::any();
            for (i, member) in members.iter().enumerate() {
                any = any.add(self.condition(member, &format!("{path}.or[{i}]"))?);
            }
            all = all.add(any);
        }
        if let Some(inner) = &filter.not {
            all = all.add(self.condition(inner, &format!("{path}.not"))?.not());
        }
        Ok(all)
    }

    fn tags(&self, tags: &TagMatchSpec, path: &str) -> ApiResult<Condition> {
        let mut all = Condition::all();
        if let Some(names) = &tags.any {
            let ids: BTreeSet<Uuid> = names.iter().filter_map(|n| self.tag_id(n)).collect();
            // No known name: an empty `any` condition renders as FALSE.
            all = all.add(if ids.is_empty() {
                Condition::any()
            } else {
                has_tag_in(ids).into()
            });
        }
        if let Some(names) = &tags.all {
            let keys: BTreeSet<String> = names.iter().map(|n| entities::tag::name_key(n)).collect();
            for key in keys {
                all = all.add(match self.tag_ids.get(&key) {
                    Some(id) => has_tag_in([*id]).into(),
                    None => Condition::any(),
                });
            }
        }
        if let Some(names) = &tags.none {
            let mut ids = BTreeSet::new();
            for name in names {
                match self.tag_id(name) {
                    Some(id) => {
                        ids.insert(id);
                    }
                    None if self.refuse_unknown_excluded => {
                        return Err(ApiError::invalid(
                            format!("{path}.none"),
                            format!("{path}.none: unknown tag \"{}\"", name.trim()),
                        ));
                    }
                    None => {}
                }
            }
            if !ids.is_empty() {
                all = all.add(has_tag_in(ids).not());
            }
        }
        Ok(all)
    }

    fn tag_id(&self, name: &str) -> Option<Uuid> {
        self.tag_ids.get(&entities::tag::name_key(name)).copied()
    }
}

/// `EXISTS (SELECT 1 FROM task_tags WHERE task_id = tasks.id AND tag_id IN (...))`, answered
/// from the `(task_id, tag_id)` primary key.
fn has_tag_in(ids: impl IntoIterator<Item = Uuid>) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(task_tag::Entity)
            .and_where(
                Expr::col((task_tag::Entity, task_tag::Column::TaskId))
                    .equals((task::Entity, task::Column::Id)),
            )
            .and_where(Expr::col((task_tag::Entity, task_tag::Column::TagId)).is_in(ids))
            .take(),
    )
}

/// A search request reduced to words by [`entities::search::words`], the function that also
/// produced the stored words of every task, so a word matches exactly when it is stored, on
/// either database. Words are letters, digits and combining marks only, so no full-text query
/// syntax from the user ever reaches the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SearchWords {
    pub words: Vec<String>,
}

impl SearchWords {
    /// The words joined by single spaces: the identity of the search in a cursor's signature.
    pub fn joined(&self) -> String {
        self.words.join(" ")
    }

    /// Whether no task can match: the search has no words, or a word too long to be stored
    /// ([`entities::search::is_indexed`]).
    pub fn matches_nothing(&self) -> bool {
        self.words.is_empty() || !self.words.iter().all(|w| entities::search::is_indexed(w))
    }

    /// A PostgreSQL `tsquery` literal matching documents that contain every word: each word a
    /// quoted lexeme, which `tsquery`'s input function takes verbatim (no parser, no
    /// dictionary), joined by `&`.
    pub fn tsquery(&self) -> String {
        let quoted: Vec<String> = self
            .words
            .iter()
            .map(|w| format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''")))
            .collect();
        quoted.join(" & ")
    }

    /// An FTS5 query matching documents that contain every word: each a quoted string, so FTS5
    /// operators and column filters are never interpreted, and the `ascii` tokenizer leaves a
    /// word as it is.
    pub fn fts5_query(&self) -> String {
        let quoted: Vec<String> = self
            .words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect();
        quoted.join(" ")
    }
}

/// Normalises the `search` argument: `None` for absent or blank; an error naming `search` when
/// it is too long or contains a NUL character. A search with no words (e.g. `"!!!"`) is `Some`
/// with no words: it matches nothing.
pub(crate) fn search_words(search: Option<&str>) -> ApiResult<Option<SearchWords>> {
    if let Some(text) = search {
        no_nul("search", text).map_err(ApiError::at("search"))?;
    }
    let Some(text) = search.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > MAX_SEARCH_CHARS {
        return Err(ApiError::invalid(
            "search",
            format!("search is {chars} characters long; the limit is {MAX_SEARCH_CHARS}"),
        ));
    }
    Ok(Some(SearchWords {
        words: entities::search::words(text),
    }))
}

/// Restricts `select` (over `tasks`) to tasks whose stored title or description words contain
/// every search word: PostgreSQL's `tasks.search_terms` tsvector (GIN-indexed), or SQLite's
/// FTS5 table `task_terms`, joined through `task_search_ids`.
pub(crate) fn add_search(select: &mut SelectStatement, backend: DbBackend, search: &SearchWords) {
    if backend == DbBackend::Postgres {
        select.cond_where(Expr::cust_with_values(
            "tasks.search_terms @@ CAST($1 AS tsquery)",
            [search.tsquery()],
        ));
    } else {
        select
            .inner_join(
                "task_search_ids",
                Expr::col(("task_search_ids", "task_id")).equals((task::Entity, task::Column::Id)),
            )
            .inner_join(
                "task_terms",
                Expr::col(("task_terms", "rowid")).equals(("task_search_ids", "rowid")),
            )
            .cond_where(Expr::cust_with_values(
                "task_terms MATCH ?",
                [search.fts5_query()],
            ));
    }
}

/// How well a task matches the search, higher is better, as an exact `f64` (float8) on both
/// databases. Only valid in a statement built with [`add_search`].
pub(crate) fn relevance(backend: DbBackend, search: &SearchWords) -> Expr {
    if backend == DbBackend::Postgres {
        Expr::cust_with_values(
            "ts_rank(tasks.search_terms, CAST($1 AS tsquery))::float8",
            [search.tsquery()],
        )
    } else {
        // bm25 is lower-is-better; negated so that higher is more relevant on both databases.
        // Title matches weigh 2.5 times description matches, the ratio of PostgreSQL's default
        // weights for the 'A' (title) and 'B' (description) labels.
        Expr::cust("(-bm25(task_terms, 2.5, 1.0))")
    }
}

#[cfg(test)]
mod tests;
