//! Recurrence against an independent RFC 5545 implementation, on SQLite and PostgreSQL:
//! python-dateutil's `rrule` with `zoneinfo` (scripts/interop/rrule_oracle.py, over the tzdata
//! package at IANA 2025b, the release chrono-tz embeds) computes the dates of a few hundred
//! seeded random cases around daylight-saving transitions, plus the cases of the bug report, and
//! this test asks the API for them:
//!
//! - `previewRecurrence(recurrence, dueAt, count)`;
//! - `createTask` with that recurrence and due date, then its `recurrence { upcoming(count) }`;
//! - for 40 of the cases, the chain of successors: each task is completed (anchor SCHEDULE, the
//!   recurrence subscriber's clock fixed before every due date, so nothing is skipped), and the
//!   successor's due date and its `upcoming` must continue the same series, until the series
//!   ends (COUNT counts from the first task);
//! - the rules that must be refused (SECONDLY, MINUTELY, more than 96 dates a day, never a date
//!   after dueAt) must be refused by both `previewRecurrence` and `createTask`, with
//!   BAD_USER_INPUT naming the rule's field.
//!
//! Every mismatch is collected and the test fails at the end with all of them, grouped by
//! class with the smallest examples. The seed is printed; `TASKSTREAM_RRULE_SEED` repeats a run
//! and `TASKSTREAM_RRULE_CASES` changes how many cases a database gets (default 300).
//! python3 with python-dateutil 2.9.0.post0 and tzdata 2025.2 must be installed: scripts/test
//! installs them (scripts/lib/python.sh).
#![allow(clippy::unwrap_used)]

mod support;

#[path = "recurrence_differential/api.rs"]
mod api;
#[path = "recurrence_differential/oracle.rs"]
mod oracle;
#[path = "recurrence_differential/report.rs"]
mod report;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use stream::topics::TASK_EVENTS;
use subscribers::Clock;
use subscribers::recurrence::{CONSUMER, RecurrenceHandler};
use uuid::Uuid;

use oracle::Case;
use report::Report;
use support::{RunningConsumer, TestApp};

on_both_databases!(recurrence_agrees_with_python_dateutil, |t| {
    differential(t).await;
});

async fn differential(t: &support::TestDb) {
    let seed = oracle::seed();
    println!(
        "recurrence differential on {:?}: seed {seed} ({}={seed} repeats it)",
        t.backend,
        oracle::SEED_VAR
    );
    let cases = oracle::cases(seed, oracle::case_count()).await;
    let app = TestApp::on(t);
    // Before every due date, so that completing a task never skips a date as past.
    let now = cases.iter().map(|c| c.due_at).min().unwrap() - Duration::days(1);
    let consumer = RunningConsumer::start(
        &t.db,
        RecurrenceHandler::new(Clock::Fixed(now)),
        TASK_EVENTS,
    );
    let mut report = Report::default();
    let mut walks = Vec::new();
    for case in &cases {
        if let Some(task) = check_case(&app, case, &mut report).await
            && case.chain > 0
        {
            walks.push(Walk {
                case,
                task,
                position: 1,
                due: case.due_at,
            });
        }
    }
    report.chains = walks.len();
    walk_chains(&app, &t.db, walks, &mut report).await;
    consumer.stop().await;
    report.finish(&format!("{:?}", t.backend), seed, &cases);
}

/// Previews the case and creates its task; returns the task when the rule was accepted.
async fn check_case(app: &TestApp, case: &Case, report: &mut Report) -> Option<Uuid> {
    let preview = api::preview(app, case).await;
    let created = api::create(app, case).await;
    report.previews += 1;
    report.creates += 1;
    if preview.is_ok() != created.is_ok() {
        let describe = |accepted: bool| if accepted { "accepts" } else { "refuses" };
        let refusal = preview
            .as_ref()
            .err()
            .or(created.as_ref().err())
            .map(ToString::to_string)
            .unwrap_or_default();
        report.mismatch(
            case,
            "previewRecurrence and createTask validate differently",
            "previewRecurrence and createTask",
            "both accept or both refuse".to_owned(),
            format!(
                "previewRecurrence {}, createTask {}: {refusal}",
                describe(preview.is_ok()),
                describe(created.is_ok())
            ),
        );
    }
    if case.series().is_none() {
        report.refused(case, "previewRecurrence", "recurrence.rule", &preview);
        report.refused(case, "createTask", "input.recurrence.rule", &created);
        return None;
    }
    let expected = case.upcoming_at(1);
    let after = case.due_at;
    report.dates(
        case,
        "previewRecurrence",
        "previewRecurrence",
        &expected,
        after,
        &preview,
    );
    let task = match created {
        Ok(task) => task,
        Err(refusal) => {
            let expected = "the task, with the dates above".to_owned();
            report.unexpected_refusal(case, "createTask", "createTask", expected, &refusal);
            return None;
        }
    };
    let upcoming = api::upcoming(app, task, case.count).await;
    report.upcomings += 1;
    report.dates(
        case,
        "upcoming",
        "upcoming of the new task",
        &expected,
        after,
        &upcoming,
    );
    Some(task)
}

/// A task of a case's series, at 1-based `position`, due at `due`.
struct Walk<'a> {
    case: &'a Case,
    task: Uuid,
    position: usize,
    due: DateTime<Utc>,
}

/// Completes the tasks of every walk, round by round (one wait for the subscriber per round),
/// and checks each successor, until every walk has reached its chain length or its series' end.
async fn walk_chains(
    app: &TestApp,
    db: &DatabaseConnection,
    mut walks: Vec<Walk<'_>>,
    report: &mut Report,
) {
    while !walks.is_empty() {
        let mut completed = Vec::new();
        for walk in walks {
            match api::complete(app, walk.task).await {
                Ok(()) => completed.push(walk),
                Err(refusal) => report.mismatch(
                    walk.case,
                    "chain: completeTask fails",
                    &format!("completeTask of the task at position {}", walk.position),
                    "completed".to_owned(),
                    refusal.to_string(),
                ),
            }
        }
        support::wait_caught_up(db, CONSUMER, TASK_EVENTS).await;
        walks = Vec::new();
        for walk in completed {
            if let Some(next) = step(app, db, walk, report).await {
                walks.push(next);
            }
        }
    }
}

/// Checks the successor of a completed task; returns it when the walk goes on.
async fn step<'a>(
    app: &TestApp,
    db: &DatabaseConnection,
    walk: Walk<'a>,
    report: &mut Report,
) -> Option<Walk<'a>> {
    let case = walk.case;
    let what = format!("successor of the task at position {}", walk.position);
    let got = match api::next_occurrence(app, walk.task).await {
        Ok(got) => got,
        Err(refusal) => {
            let class = "chain: nextOccurrence fails";
            report.mismatch(case, class, &what, String::new(), refusal.to_string());
            return None;
        }
    };
    match (case.successor_of(walk.position), got) {
        (None, None) => {
            report.chain_ends += 1;
            None
        }
        (None, Some((_, due))) => {
            let class = "chain: a successor after the series ended";
            let expected = "none: the series ends with this task".to_owned();
            report.mismatch(case, class, &what, expected, report::text(&due));
            None
        }
        (Some(expected), None) => {
            let class = "chain: no successor, though the series goes on";
            let got = format!("none{}", dead_letter(db, walk.task).await);
            report.mismatch(case, class, &what, report::text(&expected), got);
            None
        }
        (Some(expected), Some((task, due))) => {
            report.successors += 1;
            if !report.successor(case, walk.position, walk.due, expected, due) {
                return None;
            }
            let position = walk.position + 1;
            let upcoming = api::upcoming(app, task, case.count).await;
            report.upcomings += 1;
            let what = format!("upcoming of the successor at position {position}");
            let expected = case.upcoming_at(position);
            report.dates(
                case,
                "upcoming of a successor",
                &what,
                &expected,
                due,
                &upcoming,
            );
            // Past the chain's length only to see that the series ends where it should.
            let goes_on = position < case.chain || case.successor_of(position).is_none();
            goes_on.then_some(Walk {
                case,
                task,
                position,
                due,
            })
        }
    }
}

/// Why the subscriber gave up on the completion of `task`, if it parked it.
async fn dead_letter(db: &DatabaseConnection, task: Uuid) -> String {
    entities::dead_letter::Entity::find()
        .filter(entities::dead_letter::Column::Consumer.eq(CONSUMER))
        .filter(entities::dead_letter::Column::Key.eq(task.to_string()))
        .one(db)
        .await
        .unwrap()
        .map(|parked| format!(" (the subscriber parked the completion: {})", parked.error))
        .unwrap_or_default()
}
