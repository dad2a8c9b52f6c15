//! The recurrence subscriber end to end, on SQLite and PostgreSQL: tasks are created and
//! completed through GraphQL, the `RecurrenceHandler` runs in the shared consumer runtime over
//! the embedded log (the outbox table) with a fixed clock, and the tests wait on conditions with
//! deadlines.
#![allow(clippy::unwrap_used)]

mod support;

use support::{RunningConsumer, wait_until};

use chrono::{DateTime, Utc};
use entities::recurrence::RecurrenceAnchor;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use stream::CloudEvent;
use stream::topics::{TASK_EVENTS, TASK_UPDATES};
use subscribers::Clock;
use subscribers::recurrence::{CONSUMER, RecurrenceHandler, successor_id};
use support::{TASK_FIELDS, TestApp};
use uuid::Uuid;

const USER: &str = "rita";

// ---------------------------------------------------------------- helpers

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The recurrence consumer (with a fixed clock) running in the background until stopped.
fn start(db: &DatabaseConnection, now: DateTime<Utc>) -> RunningConsumer {
    RunningConsumer::start(db, RecurrenceHandler::new(Clock::Fixed(now)), TASK_EVENTS)
}

/// Waits until the consumer has handled every record on `task-events` (including the events it
/// wrote itself).
async fn wait_caught_up(db: &DatabaseConnection) {
    support::wait_caught_up(db, CONSUMER, TASK_EVENTS).await;
}

async fn successors_of(db: &DatabaseConnection, id: Uuid) -> Vec<entities::task::Model> {
    entities::task::Entity::find()
        .filter(entities::task::Column::GeneratedFromTaskId.eq(id))
        .all(db)
        .await
        .unwrap()
}

/// Waits for the successor of `id` and returns it.
async fn wait_successor(db: &DatabaseConnection, id: Uuid) -> entities::task::Model {
    wait_until("the next occurrence exists", || async {
        !successors_of(db, id).await.is_empty()
    })
    .await;
    successors_of(db, id).await.remove(0)
}

async fn task_count(db: &DatabaseConnection) -> u64 {
    entities::task::Entity::find().count(db).await.unwrap()
}

fn uuid_of(task: &Value) -> Uuid {
    Uuid::parse_str(task["id"].as_str().unwrap()).unwrap()
}

async fn create(app: &TestApp, input: Value) -> Uuid {
    uuid_of(&app.create_task(USER, input).await)
}

async fn complete(app: &TestApp, id: Uuid) -> Value {
    app.ok(
        USER,
        &format!("mutation($id: ID!) {{ completeTask(id: $id) {{ {TASK_FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await["completeTask"]
        .clone()
}

async fn reopen(app: &TestApp, id: Uuid) {
    app.ok(
        USER,
        "mutation($id: ID!) { reopenTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
}

async fn get_task(app: &TestApp, id: Uuid) -> Value {
    app.ok(
        USER,
        &format!(
            "query($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} \
             previousOccurrence {{ id dueAt }} nextOccurrence {{ id dueAt }} }} }}"
        ),
        json!({ "id": id }),
    )
    .await["task"]
        .clone()
}

/// The events on `topic` about task `subject`, in log order.
async fn events_about(app: &TestApp, topic: &str, subject: Uuid) -> Vec<CloudEvent> {
    app.outbox()
        .await
        .into_iter()
        .filter(|row| row.topic == topic && row.key == subject.to_string())
        .map(|row| serde_json::from_str::<CloudEvent>(&row.payload).unwrap())
        .collect()
}

/// The (last) COMPLETED event of `id` on `task-events`.
async fn completion_event(app: &TestApp, id: Uuid) -> (CloudEvent, entities::outbox::Model) {
    app.outbox()
        .await
        .into_iter()
        .filter(|row| row.topic == TASK_EVENTS && row.key == id.to_string())
        .map(|row| {
            (
                serde_json::from_str::<CloudEvent>(&row.payload).unwrap(),
                row,
            )
        })
        .rfind(|(ev, _)| ev.event_type == "taskstream.task.completed")
        .unwrap()
}

/// Inserts a raw `task-events` row (a redelivered copy or a malformed record).
async fn insert_raw(db: &DatabaseConnection, key: &str, headers: &str, payload: &str) {
    support::insert_raw(db, TASK_EVENTS, key, headers, payload).await;
}

fn weekly(anchor: &str, rule: &str, due: &str) -> Value {
    json!({
        "title": "Water the plants",
        "description": "the ones on the balcony",
        "priority": "HIGH",
        "dueAt": due,
        "tags": ["home", "Garden"],
        "recurrence": { "rule": rule, "timezone": "Europe/London", "anchor": anchor },
        "reminders": [
            { "minutesBeforeDue": 30 },
            { "at": "2030-01-06T18:00:00Z" }
        ]
    })
}

// ---------------------------------------------------------------- tests

on_both_databases!(
    completing_a_weekly_task_creates_exactly_one_successor,
    |t| {
        let app = TestApp::on(t);
        let now = at("2030-01-07T10:00:00Z");
        let running = start(&t.db, now);
        // Monday 7 January 2030, 09:00 in London (UTC in winter).
        let first = create(
            &app,
            weekly("SCHEDULE", "FREQ=WEEKLY", "2030-01-07T09:00:00Z"),
        )
        .await;
        complete(&app, first).await;
        let next = wait_successor(&t.db, first).await;
        wait_caught_up(&t.db).await;

        assert_eq!(next.id, successor_id(first));
        assert_eq!(next.due_at, Some(at("2030-01-14T09:00:00Z")));
        assert_eq!(next.series_id, Some(first));
        assert_eq!(next.occurrence_index, Some(2));
        assert_eq!(next.version, 1);
        assert_eq!(next.created_at, now);
        assert_eq!(task_count(&t.db).await, 2);

        let successor = get_task(&app, next.id).await;
        assert_eq!(successor["title"], "Water the plants");
        // Its history starts with a version the recurrence rule caused.
        let history = app
            .ok(
                USER,
                "query($id: ID!) { task(id: $id) { history { nodes { version kind causedBy } } } }",
                json!({ "id": next.id }),
            )
            .await;
        assert_eq!(
            history["task"]["history"]["nodes"],
            json!([{ "version": 1, "kind": "CREATED",
                     "causedBy": format!("created by the recurrence rule from task {first}") }])
        );
        assert_eq!(successor["description"], "the ones on the balcony");
        assert_eq!(successor["priority"], "HIGH");
        assert_eq!(successor["completed"], false);
        assert_eq!(successor["completedAt"], Value::Null);
        assert_eq!(
            successor["recurrence"],
            json!({ "rule": "FREQ=WEEKLY", "timezone": "Europe/London", "anchor": "SCHEDULE" })
        );
        let tags: Vec<&str> = successor["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["Garden", "home"]);
        let reminders = successor["reminders"].as_array().unwrap();
        assert_eq!(reminders.len(), 2);
        let relative = reminders
            .iter()
            .find(|r| r["minutesBeforeDue"] == 30)
            .unwrap();
        assert_eq!(
            at(relative["fireAt"].as_str().unwrap()),
            at("2030-01-14T08:30:00Z")
        );
        assert_eq!(relative["status"], "PENDING");
        let absolute = reminders
            .iter()
            .find(|r| r["minutesBeforeDue"].is_null())
            .unwrap();
        assert_eq!(
            at(absolute["at"].as_str().unwrap()),
            at("2030-01-13T18:00:00Z")
        );
        assert_eq!(
            at(absolute["fireAt"].as_str().unwrap()),
            at("2030-01-13T18:00:00Z")
        );
        assert_eq!(successor["seriesId"], json!(first.to_string()));
        assert_eq!(
            successor["previousOccurrence"]["id"],
            json!(first.to_string())
        );

        let done = get_task(&app, first).await;
        assert_eq!(done["completed"], true);
        assert_eq!(done["nextOccurrence"]["id"], json!(next.id.to_string()));
        assert_eq!(
            at(done["nextOccurrence"]["dueAt"].as_str().unwrap()),
            at("2030-01-14T09:00:00Z")
        );

        let (completed, _) = completion_event(&app, first).await;
        let created = events_about(&app, TASK_EVENTS, next.id).await;
        assert_eq!(created.len(), 1, "{created:?}");
        assert_eq!(created[0].event_type, "taskstream.task.created");
        assert_eq!(created[0].causationid, Some(completed.id.to_string()));
        assert_eq!(created[0].correlationid, completed.correlationid);
        assert_eq!(created[0].aggregateversion, Some(1));
        assert_eq!(created[0].data["task"]["occurrenceIndex"], 2);
        let state = events_about(&app, TASK_UPDATES, next.id).await;
        assert_eq!(state.len(), 1);
        assert_eq!(state[0].causationid, Some(created[0].id.to_string()));
        assert_eq!(state[0].data["id"], json!(next.id.to_string()));
        running.stop().await;
    }
);

on_both_databases!(complete_reopen_complete_yields_one_successor, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db, at("2030-01-07T10:00:00Z"));
    let first = create(
        &app,
        weekly("SCHEDULE", "FREQ=WEEKLY", "2030-01-07T09:00:00Z"),
    )
    .await;
    complete(&app, first).await;
    let next = wait_successor(&t.db, first).await;
    reopen(&app, first).await;
    complete(&app, first).await;
    wait_caught_up(&t.db).await;

    assert_eq!(
        successors_of(&t.db, first).await,
        std::slice::from_ref(&next)
    );
    assert_eq!(task_count(&t.db).await, 2);
    assert_eq!(events_about(&app, TASK_EVENTS, next.id).await.len(), 1);
    running.stop().await;
});

on_both_databases!(a_completion_delivered_twice_yields_one_successor, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db, at("2030-01-07T10:00:00Z"));
    let first = create(
        &app,
        weekly("SCHEDULE", "FREQ=WEEKLY", "2030-01-07T09:00:00Z"),
    )
    .await;
    complete(&app, first).await;
    let next = wait_successor(&t.db, first).await;
    wait_caught_up(&t.db).await;

    // The same record again (same CloudEvent id: the runtime dedupes it)...
    let (completed, row) = completion_event(&app, first).await;
    insert_raw(&t.db, &row.key, &row.headers, &row.payload).await;
    // ... and a distinct completion event for the same task version (the handler must cope).
    let mut again = completed.clone();
    again.id = Uuid::now_v7();
    let txn = stream::outbox::begin_write(&t.db).await.unwrap();
    stream::outbox::append(&txn, TASK_EVENTS, &row.key, &again, Utc::now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    stream::outbox::notify_committed();
    wait_caught_up(&t.db).await;

    assert_eq!(
        successors_of(&t.db, first).await,
        std::slice::from_ref(&next)
    );
    assert_eq!(task_count(&t.db).await, 2);
    assert_eq!(events_about(&app, TASK_EVENTS, next.id).await.len(), 1);
    assert_eq!(app.count("dead_letters").await, 0);
    running.stop().await;
});

on_both_databases!(a_schedule_task_completed_late_skips_past_dates, |t| {
    let app = TestApp::on(t);
    // Completed on Friday 1 February, more than three weeks after it was due.
    let running = start(&t.db, at("2030-02-01T12:00:00Z"));
    let first = create(
        &app,
        weekly("SCHEDULE", "FREQ=WEEKLY", "2030-01-07T09:00:00Z"),
    )
    .await;
    complete(&app, first).await;
    let next = wait_successor(&t.db, first).await;
    assert_eq!(next.due_at, Some(at("2030-02-04T09:00:00Z")));
    wait_caught_up(&t.db).await;
    assert_eq!(task_count(&t.db).await, 2);
    running.stop().await;
});

on_both_databases!(
    a_completion_anchored_task_restarts_from_the_completion_time,
    |t| {
        let app = TestApp::on(t);
        let running = start(&t.db, Utc::now());
        let first = create(
        &app,
        json!({
            "title": "Change the filter",
            "dueAt": "2020-01-06T09:00:00Z",
            "recurrence": { "rule": "FREQ=DAILY;INTERVAL=3", "timezone": "UTC", "anchor": "COMPLETION" }
        }),
    )
    .await;
        let done = complete(&app, first).await;
        let completed_at = at(done["completedAt"].as_str().unwrap());
        let next = wait_successor(&t.db, first).await;
        // The rule restarts on the completion day at the due time of day: three days later, 09:00.
        let restart = completed_at
            .date_naive()
            .and_hms_opt(9, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(next.due_at, Some(restart + chrono::Duration::days(3)));
        assert!(next.due_at.unwrap() > completed_at);
        assert_eq!(
            next.recurrence_anchor,
            Some(RecurrenceAnchor::Completion),
            "the anchor is copied"
        );
        running.stop().await;
    }
);

on_both_databases!(count_ends_the_series, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db, at("2030-01-07T10:00:00Z"));
    let first = create(
        &app,
        json!({
            "title": "Two sessions",
            "dueAt": "2030-01-07T09:00:00Z",
            "recurrence": { "rule": "FREQ=WEEKLY;COUNT=2", "timezone": "UTC" }
        }),
    )
    .await;
    complete(&app, first).await;
    let second = wait_successor(&t.db, first).await;
    assert_eq!(second.occurrence_index, Some(2));
    complete(&app, second.id).await;
    wait_caught_up(&t.db).await;
    assert!(successors_of(&t.db, second.id).await.is_empty());
    assert_eq!(task_count(&t.db).await, 2);
    assert_eq!(
        get_task(&app, second.id).await["nextOccurrence"],
        Value::Null
    );
    running.stop().await;
});

on_both_databases!(non_recurring_tasks_have_no_successor, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db, at("2030-01-07T10:00:00Z"));
    let once = create(
        &app,
        json!({ "title": "Once", "dueAt": "2030-01-07T09:00:00Z" }),
    )
    .await;
    complete(&app, once).await;
    wait_caught_up(&t.db).await;
    assert_eq!(task_count(&t.db).await, 1);
    assert_eq!(app.count("dead_letters").await, 0);
    running.stop().await;
});

// ------------------------------------------------- daylight saving and COUNT (RFC 5545)

/// The dates `recurrence.upcoming(count)` of task `id` shows.
async fn upcoming_of(app: &TestApp, id: Uuid, count: i32) -> Vec<String> {
    let data = app
        .ok(
            USER,
            "query($id: ID!, $n: Int) { task(id: $id) { recurrence { upcoming(count: $n) } } }",
            json!({ "id": id, "n": count }),
        )
        .await;
    data["task"]["recurrence"]["upcoming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

on_both_databases!(a_series_keeps_its_wall_clock_time_after_a_dst_gap, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db, at("2027-03-01T00:00:00Z"));
    // Daily at 02:30 in Berlin. On 28 March 2027 clocks skip from 02:00 to 03:00, so that day's
    // 02:30 is read with the offset before the gap: 01:30 UTC (03:30 CEST).
    let first = create(
        &app,
        json!({
            "title": "Night backup check",
            "dueAt": "2027-03-27T01:30:00Z",
            "recurrence": { "rule": "FREQ=DAILY", "timezone": "Europe/Berlin" }
        }),
    )
    .await;
    complete(&app, first).await;
    let gap_day = wait_successor(&t.db, first).await;
    assert_eq!(gap_day.due_at, Some(at("2027-03-28T01:30:00Z")));
    let wall = chrono::NaiveDate::from_ymd_opt(2027, 3, 28)
        .unwrap()
        .and_hms_opt(2, 30, 0)
        .unwrap();
    assert_eq!(gap_day.occurrence_local, Some(wall));
    // The day after, the series is back at 02:30 local (00:30 UTC in summer time), not 03:30.
    assert_eq!(
        upcoming_of(&app, gap_day.id, 2).await,
        ["2027-03-29T00:30:00+00:00", "2027-03-30T00:30:00+00:00"]
    );
    complete(&app, gap_day.id).await;
    let after = wait_successor(&t.db, gap_day.id).await;
    assert_eq!(after.due_at, Some(at("2027-03-29T00:30:00Z")));
    assert_eq!(after.occurrence_local, None);
    assert_eq!(after.occurrence_index, Some(3));
    running.stop().await;
});

on_both_databases!(count_counts_the_dates_a_late_completion_skips, |t| {
    let app = TestApp::on(t);
    // Completed a day late: the second date has passed and is skipped, but it was a date of
    // the series, so the successor is the third and last occurrence of COUNT=3.
    let running = start(&t.db, at("2030-01-08T12:00:00Z"));
    let first = create(
        &app,
        json!({
            "title": "Three doses",
            "dueAt": "2030-01-07T09:00:00Z",
            "recurrence": { "rule": "FREQ=DAILY;COUNT=3", "timezone": "UTC" }
        }),
    )
    .await;
    assert_eq!(
        upcoming_of(&app, first, 5).await,
        ["2030-01-08T09:00:00+00:00", "2030-01-09T09:00:00+00:00"]
    );
    complete(&app, first).await;
    let last = wait_successor(&t.db, first).await;
    assert_eq!(last.due_at, Some(at("2030-01-09T09:00:00Z")));
    assert_eq!(last.occurrence_index, Some(3));
    assert!(upcoming_of(&app, last.id, 5).await.is_empty());
    complete(&app, last.id).await;
    wait_caught_up(&t.db).await;
    assert!(successors_of(&t.db, last.id).await.is_empty());
    running.stop().await;
});

on_both_databases!(
    create_update_and_preview_refuse_a_rule_that_never_meets_its_due_date_alike,
    |t| {
        let app = TestApp::on(t);
        // Every 24 hours from 09:00 is always 09:00: BYHOUR=5 is never met.
        let rule = json!({ "rule": "FREQ=HOURLY;INTERVAL=24;BYHOUR=5", "timezone": "UTC" });
        let (code, message) = app
            .err(
                USER,
                "query($r: RecurrenceInput!, $d: DateTime!) { \
                 previewRecurrence(recurrence: $r, dueAt: $d, count: 1) }",
                json!({ "r": rule, "d": "2030-01-07T09:00:00Z" }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert!(message.starts_with("recurrence.rule: "), "{message}");
        let create_task = "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }";
        let (code, message) = app
            .err(
                USER,
                create_task,
                json!({ "i": { "title": "x", "dueAt": "2030-01-07T09:00:00Z", "recurrence": rule } }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert!(message.starts_with("input.recurrence.rule: "), "{message}");
        assert_eq!(task_count(&t.db).await, 0, "nothing is written");

        // Due at 05:00 the rule is met every day; moving the due date to 09:00 is refused.
        let id = create(
            &app,
            json!({ "title": "x", "dueAt": "2030-01-07T05:00:00Z", "recurrence": rule }),
        )
        .await;
        let (code, message) = app
            .err(
                USER,
                "mutation($id: ID!) { updateTask(id: $id, input: { dueAt: \"2030-01-07T09:00:00Z\" }) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert!(message.starts_with("input.dueAt: "), "{message}");
        assert_eq!(
            get_task(&app, id).await["dueAt"],
            "2030-01-07T05:00:00+00:00",
            "nothing is written"
        );
    }
);
