//! `taskChanged(filter)`: the caller's task changes, live, from the [`LiveHub`].
//!
//! Decisions:
//! - Only the caller's tasks: a change is delivered when its owner is the authenticated user.
//! - The filter is evaluated in memory on the change's snapshot ([`matches`](fn@matches)),
//!   with the same meaning as in `tasks(filter)`. For `DELETED` the snapshot is the state
//!   just before deletion, so a deletion is delivered when the last state matched. Tag names
//!   the caller does not have simply match no task (the `tasks` query rejects an unknown name
//!   in `tags.none`; a live filter cannot look names up per change).
//! - `task` is built from the snapshot; its relations (`tags`, `reminders`, occurrences) are
//!   read through the connection's loaders when selected, so they show the current rows.
//! - A subscriber that falls more than the hub's capacity behind gets one error
//!   (`RATE_LIMITED`) and its stream ends: it must resubscribe and refetch.
//! - A socket holds at most [`SocketSubscriptions`]' cap of live subscriptions; one more is
//!   refused with `RATE_LIMITED`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use entities::task;
use futures_util::Stream;
use stream::task_events::{TaskChangeKind as EventKind, TaskSnapshot};
use tokio::sync::broadcast::error::RecvError;

use super::task::Task;
use super::task_list::TaskFilter;
use super::{Clock, viewer};
use crate::error::ApiError;
use crate::live::{LiveChange, LiveHub};
use crate::service::task_list::{TaskFilterSpec, validate_filter};

/// What happened to a task.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskChangeKind {
    Created,
    Updated,
    Completed,
    Reopened,
    Deleted,
}

impl From<EventKind> for TaskChangeKind {
    fn from(kind: EventKind) -> TaskChangeKind {
        match kind {
            EventKind::Created => TaskChangeKind::Created,
            EventKind::Updated => TaskChangeKind::Updated,
            EventKind::Completed => TaskChangeKind::Completed,
            EventKind::Reopened => TaskChangeKind::Reopened,
            EventKind::Deleted => TaskChangeKind::Deleted,
        }
    }
}

/// One change of one of the caller's tasks.
pub struct TaskChange {
    kind: TaskChangeKind,
    task_id: uuid::Uuid,
    /// The post-change state; `None` after `DELETED`.
    task: Option<task::Model>,
}

#[Object]
impl TaskChange {
    async fn kind(&self) -> TaskChangeKind {
        self.kind
    }

    async fn task_id(&self) -> ID {
        ID(self.task_id.to_string())
    }

    /// The task after the change; null after DELETED.
    async fn task(&self) -> Option<Task> {
        self.task.clone().map(Task::from)
    }
}

/// The live subscriptions of one WebSocket, bounded by `cap`. The transport puts one in each
/// connection's data; without one (tests, other transports) there is no cap.
#[derive(Clone, Debug)]
pub struct SocketSubscriptions {
    active: Arc<AtomicUsize>,
    cap: usize,
    /// The user's count across all their sockets, and its cap (see [`crate::sockets`]).
    user: Option<(Arc<AtomicUsize>, usize)>,
}

impl SocketSubscriptions {
    pub fn new(cap: usize) -> SocketSubscriptions {
        SocketSubscriptions {
            active: Arc::default(),
            cap,
            user: None,
        }
    }

    /// Also counts every subscription against the user's `counter`, refused past `cap`.
    pub fn with_user_limit(mut self, counter: Arc<AtomicUsize>, cap: usize) -> SocketSubscriptions {
        self.user = Some((counter, cap));
        self
    }

    /// Takes a slot, released when the returned guard (held by the stream) is dropped.
    pub(crate) fn acquire(&self) -> Result<SubscriptionSlot, ApiError> {
        let socket = take(&self.active, self.cap).ok_or_else(|| {
            ApiError::RateLimited(format!(
                "this connection already has {} live subscriptions, the limit \
                 (WS_MAX_SUBSCRIPTIONS); complete one first",
                self.cap
            ))
        })?;
        let user = match &self.user {
            None => None,
            Some((counter, cap)) => Some(take(counter, *cap).ok_or_else(|| {
                ApiError::RateLimited(format!(
                    "this user already has {cap} live subscriptions, the limit \
                     (WS_MAX_SUBSCRIPTIONS_PER_USER); complete one first"
                ))
            })?),
        };
        Ok(SubscriptionSlot {
            _socket: socket,
            _user: user,
        })
    }
}

/// One unit of `counter` if it is below `cap`.
fn take(counter: &Arc<AtomicUsize>, cap: usize) -> Option<Taken> {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .ok()
        .map(|_| Taken(Arc::clone(counter)))
}

/// One unit of a counter; dropping it gives the unit back.
struct Taken(Arc<AtomicUsize>);

impl Drop for Taken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A taken subscription slot (on the socket and, when bounded, for the user); dropping it
/// frees both.
pub(crate) struct SubscriptionSlot {
    _socket: Taken,
    _user: Option<Taken>,
}

#[derive(Default)]
pub struct TaskSubscription;

#[Subscription]
impl TaskSubscription {
    /// Changes to the caller's tasks from now on, optionally only those whose task matches
    /// `filter` (a deletion matches when the last state did). A subscriber that falls too far
    /// behind gets a RATE_LIMITED error and the stream ends: subscribe again and refetch.
    async fn task_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
    ) -> Result<impl Stream<Item = Result<TaskChange>> + use<>> {
        let owner_id = viewer(ctx)?.id.clone();
        let filter: Option<TaskFilterSpec> = filter.map(Into::into);
        if let Some(spec) = &filter {
            validate_filter(spec)?;
        }
        let hub = ctx
            .data::<LiveHub>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("BUG: the schema has no LiveHub")))?;
        let slot = ctx
            .data_opt::<SocketSubscriptions>()
            .map(SocketSubscriptions::acquire)
            .transpose()?;
        let live = Live {
            rx: hub.subscribe(),
            owner_id,
            filter,
            clock: ctx.data_opt::<Clock>().cloned().unwrap_or_default(),
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(Some(live), next_change))
    }
}

/// One subscription's state: its receiver and what it selects.
struct Live {
    rx: tokio::sync::broadcast::Receiver<LiveChange>,
    owner_id: String,
    filter: Option<TaskFilterSpec>,
    clock: Clock,
    _slot: Option<SubscriptionSlot>,
}

/// The next change for this subscriber; after a lag error the state is `None` and it ends.
async fn next_change(state: Option<Live>) -> Option<(Result<TaskChange>, Option<Live>)> {
    let mut live = state?;
    loop {
        match live.rx.recv().await {
            Ok(change) => {
                if change.owner_id != live.owner_id {
                    continue;
                }
                let now = live.clock.now();
                if live
                    .filter
                    .as_ref()
                    .is_some_and(|f| !matches(f, &change.task, now))
                {
                    continue;
                }
                return Some((Ok(to_task_change(&change)), Some(live)));
            }
            Err(RecvError::Lagged(missed)) => {
                let err = ApiError::RateLimited(format!(
                    "this subscription fell {missed} changes behind and was ended; \
                     subscribe again and refetch with the tasks query"
                ));
                return Some((Err(err.into()), None));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

fn to_task_change(change: &LiveChange) -> TaskChange {
    TaskChange {
        kind: change.kind.into(),
        task_id: change.task_id,
        task: (change.kind != EventKind::Deleted).then(|| change.task.to_model()),
    }
}

/// Whether `task` matches `filter`, with the meaning `tasks(filter)` gives it in SQL: every set
/// field must hold; a bound on the due date never matches a task without one; `overdue` is
/// "due before `now` and not completed"; tag names compare case-insensitively.
pub fn matches(filter: &TaskFilterSpec, task: &TaskSnapshot, now: DateTime<Utc>) -> bool {
    let rank = task.priority.rank();
    let due = task.due_at;
    let overdue = due.is_some_and(|d| d < now) && !task.completed;
    let tag_keys: BTreeSet<String> = task
        .tags
        .iter()
        .map(|n| entities::tag::name_key(n))
        .collect();
    let has = |name: &String| tag_keys.contains(&entities::tag::name_key(name));
    filter.completed.is_none_or(|c| task.completed == c)
        && filter.priority.as_ref().is_none_or(|ps| ps.contains(&rank))
        && filter.min_priority.is_none_or(|min| rank >= min)
        && filter.tags.as_ref().is_none_or(|t| {
            t.any.as_ref().is_none_or(|names| names.iter().any(has))
                && t.all.as_ref().is_none_or(|names| names.iter().all(has))
                && t.none.as_ref().is_none_or(|names| !names.iter().any(has))
        })
        && filter
            .due_after
            .is_none_or(|after| due.is_some_and(|d| d >= after))
        && filter
            .due_before
            .is_none_or(|before| due.is_some_and(|d| d < before))
        && filter.has_due_date.is_none_or(|h| due.is_some() == h)
        && filter.overdue.is_none_or(|o| overdue == o)
        && filter
            .recurring
            .is_none_or(|r| task.recurrence.is_some() == r)
        && filter
            .and
            .as_ref()
            .is_none_or(|fs| fs.iter().all(|f| matches(f, task, now)))
        && filter
            .or
            .as_ref()
            .is_none_or(|fs| fs.iter().any(|f| matches(f, task, now)))
        && filter.not.as_ref().is_none_or(|f| !matches(f, task, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::task_list::TagMatchSpec;
    use chrono::TimeZone;
    use stream::task_events::RecurrenceSnapshot;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0)
            .single()
            .expect("BUG: valid date")
    }

    fn snapshot() -> TaskSnapshot {
        TaskSnapshot {
            id: uuid::Uuid::nil(),
            owner_id: "alice".into(),
            title: "Write report".into(),
            description: String::new(),
            priority: entities::priority::Priority::High,
            completed: false,
            completed_at: None,
            due_at: Some(at(12)),
            tags: vec!["Work".into(), "urgent-ish".into()],
            recurrence: None,
            reminders: Vec::new(),
            series_id: None,
            occurrence_index: None,
            occurrence_local: None,
            series_start_local: None,
            generated_from_task_id: None,
            version: 1,
            created_at: at(8),
            updated_at: at(8),
        }
    }

    fn tags(any: Option<&[&str]>, all: Option<&[&str]>, none: Option<&[&str]>) -> TaskFilterSpec {
        let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| (*s).to_owned()).collect());
        TaskFilterSpec {
            tags: Some(TagMatchSpec {
                any: list(any),
                all: list(all),
                none: list(none),
            }),
            ..TaskFilterSpec::default()
        }
    }

    #[test]
    fn an_empty_filter_matches_every_task() {
        assert!(matches(&TaskFilterSpec::default(), &snapshot(), at(9)));
    }

    #[test]
    fn tag_names_match_case_insensitively_in_any_all_and_none() {
        let task = snapshot();
        assert!(matches(
            &tags(Some(&["WORK", "home"]), None, None),
            &task,
            at(9)
        ));
        assert!(!matches(&tags(Some(&["home"]), None, None), &task, at(9)));
        assert!(matches(
            &tags(None, Some(&["work", "Urgent-Ish"]), None),
            &task,
            at(9)
        ));
        assert!(!matches(
            &tags(None, Some(&["work", "home"]), None),
            &task,
            at(9)
        ));
        assert!(matches(&tags(None, None, Some(&["home"])), &task, at(9)));
        assert!(!matches(&tags(None, None, Some(&[" work "])), &task, at(9)));
    }

    #[test]
    fn priority_fields_compare_ranks() {
        let task = snapshot();
        let min = |rank| TaskFilterSpec {
            min_priority: Some(rank),
            ..TaskFilterSpec::default()
        };
        assert!(matches(&min(3), &task, at(9)));
        assert!(!matches(&min(4), &task, at(9)));
        let any_of = TaskFilterSpec {
            priority: Some(vec![0, 1]),
            ..TaskFilterSpec::default()
        };
        assert!(!matches(&any_of, &task, at(9)));
    }

    #[test]
    fn due_bounds_never_match_a_task_without_a_due_date_but_their_negation_does() {
        let undated = TaskSnapshot {
            due_at: None,
            ..snapshot()
        };
        let before = TaskFilterSpec {
            due_before: Some(at(13)),
            ..TaskFilterSpec::default()
        };
        assert!(matches(&before, &snapshot(), at(9)));
        assert!(!matches(&before, &undated, at(9)));
        let not_before = TaskFilterSpec {
            not: Some(Box::new(before)),
            ..TaskFilterSpec::default()
        };
        assert!(matches(&not_before, &undated, at(9)));
        let after = TaskFilterSpec {
            due_after: Some(at(12)),
            ..TaskFilterSpec::default()
        };
        assert!(
            matches(&after, &snapshot(), at(9)),
            "due_after is inclusive"
        );
    }

    #[test]
    fn overdue_means_due_before_now_and_not_completed() {
        let overdue = TaskFilterSpec {
            overdue: Some(true),
            ..TaskFilterSpec::default()
        };
        assert!(!matches(&overdue, &snapshot(), at(11)));
        assert!(matches(&overdue, &snapshot(), at(13)));
        let done = TaskSnapshot {
            completed: true,
            ..snapshot()
        };
        assert!(!matches(&overdue, &done, at(13)));
    }

    #[test]
    fn and_or_not_and_recurring_combine() {
        let recurring = TaskSnapshot {
            recurrence: Some(RecurrenceSnapshot {
                rule: "FREQ=DAILY".into(),
                timezone: "UTC".into(),
                anchor: entities::recurrence::RecurrenceAnchor::Schedule,
            }),
            ..snapshot()
        };
        let is_recurring = TaskFilterSpec {
            recurring: Some(true),
            ..TaskFilterSpec::default()
        };
        assert!(matches(&is_recurring, &recurring, at(9)));
        assert!(!matches(&is_recurring, &snapshot(), at(9)));
        let either = TaskFilterSpec {
            or: Some(vec![
                is_recurring.clone(),
                tags(Some(&["work"]), None, None),
            ]),
            ..TaskFilterSpec::default()
        };
        assert!(matches(&either, &snapshot(), at(9)));
        let both = TaskFilterSpec {
            and: Some(vec![is_recurring, tags(Some(&["work"]), None, None)]),
            ..TaskFilterSpec::default()
        };
        assert!(!matches(&both, &snapshot(), at(9)));
        assert!(matches(&both, &recurring, at(9)));
    }

    #[test]
    fn a_snapshot_becomes_the_row_it_was_taken_from() {
        let model = snapshot().to_model();
        assert_eq!(model.priority.rank(), 3);
        assert_eq!(model.owner_id, "alice");
        assert_eq!(model.recurrence_rule, None);
    }
}
