//! The reminder subscriber end to end, on SQLite and PostgreSQL: tasks are created, completed,
//! reopened, moved and deleted through GraphQL; the `ReminderHandler` runs in the shared consumer
//! runtime over the embedded log (the outbox table), and the `ReminderScheduler` is driven one
//! pass at a time with fixed clocks, so no test sleeps for real minutes.
#![allow(clippy::unwrap_used)]

mod support;

use support::{RunningConsumer, wait_until};

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::reminder;
use entities::reminder_offset::ReminderStatus;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use stream::CloudEvent;
use stream::reminder_events::{REMINDER_DUE_TYPE, REMINDER_MISSED_TYPE};
use stream::topics::{REMINDERS, TASK_EVENTS};
use subscribers::Clock;
use subscribers::reminder::{CONSUMER, ReminderHandler};
use subscribers::reminder_scheduler::{ReminderScheduler, reminder_event_id};
use support::{TASK_FIELDS, TestApp};
use tokio::sync::oneshot;
use uuid::Uuid;

const USER: &str = "rita";

// ---------------------------------------------------------------- helpers

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The reminder consumer running in the background until stopped.
fn start(db: &DatabaseConnection) -> RunningConsumer {
    RunningConsumer::start(db, ReminderHandler::new(), TASK_EVENTS)
}

/// Waits until the consumer has handled every record on `task-events`.
async fn wait_caught_up(db: &DatabaseConnection) {
    support::wait_caught_up(db, CONSUMER, TASK_EVENTS).await;
}

/// The reminders of `task`, oldest first.
async fn reminders_of(db: &DatabaseConnection, task: Uuid) -> Vec<reminder::Model> {
    reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(task))
        .order_by_asc(reminder::Column::CreatedAt)
        .order_by_asc(reminder::Column::Id)
        .all(db)
        .await
        .unwrap()
}

fn statuses(rows: &[reminder::Model]) -> Vec<&str> {
    rows.iter().map(|r| r.status.as_str()).collect()
}

async fn create(app: &TestApp, input: Value) -> Uuid {
    let task = app.create_task(USER, input).await;
    Uuid::parse_str(task["id"].as_str().unwrap()).unwrap()
}

async fn mutate(app: &TestApp, mutation: &str, id: Uuid) {
    app.ok(
        USER,
        &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}"),
        json!({ "id": id }),
    )
    .await;
}

async fn move_due(app: &TestApp, id: Uuid, due: &str) {
    app.ok(
        USER,
        &format!(
            "mutation($id: ID!, $input: UpdateTaskInput!) \
             {{ updateTask(id: $id, input: $input) {{ {TASK_FIELDS} }} }}"
        ),
        json!({ "id": id, "input": { "dueAt": due } }),
    )
    .await;
}

async fn delete(app: &TestApp, id: Uuid) {
    app.ok(
        USER,
        "mutation($id: ID!) { deleteTask(id: $id) }",
        json!({ "id": id }),
    )
    .await;
}

/// The events on `reminders`, in log order.
async fn reminder_events(app: &TestApp) -> Vec<CloudEvent> {
    app.outbox()
        .await
        .into_iter()
        .filter(|row| row.topic == REMINDERS)
        .map(|row| serde_json::from_str::<CloudEvent>(&row.payload).unwrap())
        .collect()
}

fn scheduler(db: &DatabaseConnection, now: DateTime<Utc>) -> ReminderScheduler {
    ReminderScheduler::new(db.clone(), Clock::Fixed(now))
}

/// Due Monday 7 January 2030 09:00 UTC, reminded 30 minutes before and on the evening before.
fn with_two_reminders() -> Value {
    json!({
        "title": "File the report",
        "dueAt": "2030-01-07T09:00:00Z",
        "reminders": [
            { "minutesBeforeDue": 30 },
            { "at": "2030-01-06T18:00:00Z" }
        ]
    })
}

// ---------------------------------------------------------------- the handler

on_both_databases!(
    completing_cancels_pending_reminders_and_reopening_rearms_them,
    |t| {
        let app = TestApp::on(t);
        let running = start(&t.db);
        let id = create(&app, with_two_reminders()).await;
        // The evening reminder fires before the task is completed: FIRED is final.
        let report = scheduler(&t.db, at("2030-01-06T18:00:00Z"))
            .fire_due()
            .await
            .unwrap();
        assert_eq!(report.fired.len(), 1);

        mutate(&app, "completeTask", id).await;
        wait_caught_up(&t.db).await;
        assert_eq!(
            statuses(&reminders_of(&t.db, id).await),
            ["CANCELLED", "FIRED"]
        );
        // A cancelled reminder never fires, even when its time comes.
        let later = scheduler(&t.db, at("2030-01-07T08:45:00Z"));
        assert_eq!(later.fire_due().await.unwrap().claimed(), 0);

        mutate(&app, "reopenTask", id).await;
        wait_caught_up(&t.db).await;
        let rows = reminders_of(&t.db, id).await;
        assert_eq!(statuses(&rows), ["PENDING", "FIRED"]);
        assert_eq!(rows[0].fire_at, Some(at("2030-01-07T08:30:00Z")));
        assert_eq!(app.count("dead_letters").await, 0);
        running.stop().await;
    }
);

on_both_databases!(deleting_a_task_leaves_no_pending_reminder, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    let id = create(&app, with_two_reminders()).await;
    delete(&app, id).await;
    wait_caught_up(&t.db).await;

    let pending = reminder::Entity::find()
        .filter(reminder::Column::Status.eq("PENDING"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(pending, []);
    let report = scheduler(&t.db, at("2030-01-08T00:00:00Z"))
        .fire_due()
        .await
        .unwrap();
    assert_eq!(report.claimed(), 0);
    assert_eq!(app.count("dead_letters").await, 0);
    running.stop().await;
});

on_both_databases!(moving_the_due_date_moves_relative_fire_times, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    let id = create(&app, with_two_reminders()).await;
    move_due(&app, id, "2030-01-09T12:00:00Z").await;
    wait_caught_up(&t.db).await;

    let rows = reminders_of(&t.db, id).await;
    assert_eq!(rows[0].fire_at, Some(at("2030-01-09T11:30:00Z")));
    assert_eq!(rows[1].fire_at, Some(at("2030-01-06T18:00:00Z")));
    assert_eq!(statuses(&rows), ["PENDING", "PENDING"]);

    // Completed, moved, reopened: the relative reminder follows the latest due date.
    mutate(&app, "completeTask", id).await;
    move_due(&app, id, "2030-01-10T12:00:00Z").await;
    mutate(&app, "reopenTask", id).await;
    wait_caught_up(&t.db).await;
    let rows = reminders_of(&t.db, id).await;
    assert_eq!(statuses(&rows), ["PENDING", "PENDING"]);
    assert_eq!(rows[0].fire_at, Some(at("2030-01-10T11:30:00Z")));
    assert_eq!(app.count("dead_letters").await, 0);
    running.stop().await;
});

on_both_databases!(an_unparseable_record_is_a_dead_letter, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    entities::outbox::ActiveModel {
        event_id: Set(Uuid::now_v7()),
        topic: Set(TASK_EVENTS.to_owned()),
        key: Set("poison".to_owned()),
        payload: Set("this is not a CloudEvent".to_owned()),
        headers: Set(json!({ "ce_id": Uuid::now_v7().to_string() }).to_string()),
        created_at: Set(entities::to_db_precision(Utc::now())),
        published_at: Set(None),
        partition: Set(None),
        offset: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(&t.db)
    .await
    .unwrap();
    stream::outbox::notify_committed();
    wait_caught_up(&t.db).await;

    let parked = entities::dead_letter::Entity::find()
        .filter(entities::dead_letter::Column::Consumer.eq(CONSUMER))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].topic, TASK_EVENTS);
    assert_eq!(parked[0].payload, "this is not a CloudEvent");
    assert_eq!(app.count("dead_letters").await, 1);
    running.stop().await;
});

// ---------------------------------------------------------------- the scheduler

on_both_databases!(a_reminder_fires_once_at_its_time_and_never_early, |t| {
    let app = TestApp::on(t);
    let id = create(
        &app,
        json!({
            "title": "Call the plumber",
            "dueAt": "2030-01-07T09:00:00Z",
            "reminders": [{ "minutesBeforeDue": 30 }]
        }),
    )
    .await;
    let fire_at = at("2030-01-07T08:30:00Z");
    let reminder_id = reminders_of(&t.db, id).await[0].id;

    let early = scheduler(&t.db, fire_at - chrono::Duration::seconds(1))
        .fire_due()
        .await
        .unwrap();
    assert_eq!(early.claimed(), 0);
    assert_eq!(reminder_events(&app).await, []);

    let report = scheduler(&t.db, fire_at).fire_due().await.unwrap();
    assert_eq!(report.fired, [reminder_id]);
    let row = &reminders_of(&t.db, id).await[0];
    assert_eq!(row.status, ReminderStatus::Fired);
    assert_eq!(row.fired_at, Some(fire_at));
    let events = reminder_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, REMINDER_DUE_TYPE);
    assert_eq!(events[0].id, reminder_event_id(reminder_id));
    assert_eq!(events[0].subject, id.to_string());
    assert_eq!(
        events[0].data,
        json!({
            "reminderId": reminder_id,
            "taskId": id,
            "ownerId": USER,
            "taskTitle": "Call the plumber",
            "dueAt": "2030-01-07T09:00:00Z",
            "fireAt": "2030-01-07T08:30:00Z",
            "firedAt": "2030-01-07T08:30:00Z",
            "late": false
        })
    );
    let row = app
        .outbox()
        .await
        .into_iter()
        .find(|r| r.topic == REMINDERS)
        .unwrap();
    assert_eq!(row.key, id.to_string());

    let again = scheduler(&t.db, fire_at + chrono::Duration::minutes(5))
        .fire_due()
        .await
        .unwrap();
    assert_eq!(again.claimed(), 0);
    assert_eq!(reminder_events(&app).await.len(), 1);
});

on_both_databases!(
    after_downtime_late_reminders_fire_and_older_ones_are_missed,
    |t| {
        let app = TestApp::on(t);
        let id = create(
            &app,
            json!({
                "title": "Renew the passport",
                "dueAt": "2030-01-07T09:00:00Z",
                "reminders": [
                    { "minutesBeforeDue": 180 },
                    { "minutesBeforeDue": 30 }
                ]
            }),
        )
        .await;
        let rows = reminders_of(&t.db, id).await;
        let (three_hours, half_hour) = (rows[0].id, rows[1].id);

        // Back up at 09:00: 06:00 is three hours late (over the hour), 08:30 half an hour.
        let report = scheduler(&t.db, at("2030-01-07T09:00:00Z"))
            .fire_due()
            .await
            .unwrap();
        assert_eq!(report.missed, [three_hours]);
        assert_eq!(report.fired, [half_hour]);
        assert_eq!(
            statuses(&reminders_of(&t.db, id).await),
            ["MISSED", "FIRED"]
        );
        let events: HashMap<String, CloudEvent> = reminder_events(&app)
            .await
            .into_iter()
            .map(|e| (e.data["reminderId"].as_str().unwrap().to_owned(), e))
            .collect();
        let missed = &events[&three_hours.to_string()];
        assert_eq!(missed.event_type, REMINDER_MISSED_TYPE);
        assert_eq!(missed.data["late"], true);
        assert_eq!(missed.data["fireAt"], "2030-01-07T06:00:00Z");
        let late = &events[&half_hour.to_string()];
        assert_eq!(late.event_type, REMINDER_DUE_TYPE);
        assert_eq!(late.data["late"], true);
        assert_eq!(late.data["firedAt"], "2030-01-07T09:00:00Z");
    }
);

on_both_databases!(
    a_completed_task_whose_event_is_unhandled_does_not_fire,
    |t| {
        let app = TestApp::on(t);
        let id = create(&app, with_two_reminders()).await;
        mutate(&app, "completeTask", id).await;

        // No handler runs: the scheduler itself sees the task is completed.
        let report = scheduler(&t.db, at("2030-01-08T00:00:00Z"))
            .fire_due()
            .await
            .unwrap();
        assert_eq!(report.cancelled.len(), 2);
        assert_eq!(report.claimed(), 2);
        assert_eq!(reminder_events(&app).await, []);
    }
);

on_both_databases!(two_schedulers_never_fire_one_reminder_twice, |t| {
    let app = TestApp::on(t);
    let mut ids = Vec::new();
    for i in 0..6 {
        let id = create(
            &app,
            json!({
                "title": format!("Task {i}"),
                "dueAt": "2030-01-07T09:00:00Z",
                "reminders": [
                    { "minutesBeforeDue": 10 },
                    { "minutesBeforeDue": 20 },
                    { "minutesBeforeDue": 30 },
                    { "at": "2030-01-07T08:55:00Z" }
                ]
            }),
        )
        .await;
        ids.push(id);
    }
    let other_pool = graphql::db::connect(&t.url).await.unwrap();
    let now = at("2030-01-07T09:00:00Z");
    let first = ReminderScheduler {
        batch_size: 3,
        ..scheduler(&t.db, now)
    };
    let second = ReminderScheduler {
        batch_size: 3,
        ..scheduler(&other_pool, now)
    };
    let drain = |s: ReminderScheduler| async move {
        let mut fired = Vec::new();
        loop {
            let report = s.fire_due().await.unwrap();
            if report.claimed() == 0 {
                return fired;
            }
            fired.extend(report.fired);
        }
    };
    let (a, b) = tokio::join!(drain(first), drain(second));

    assert_eq!(a.len() + b.len(), 24, "{a:?} {b:?}");
    let mut per_reminder: HashMap<String, usize> = HashMap::new();
    for event in reminder_events(&app).await {
        *per_reminder
            .entry(event.data["reminderId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_reminder.len(), 24);
    assert!(per_reminder.values().all(|n| *n == 1), "{per_reminder:?}");
    for id in ids {
        assert!(
            reminders_of(&t.db, id)
                .await
                .iter()
                .all(|r| r.status == ReminderStatus::Fired)
        );
    }
    other_pool.close().await.unwrap();
});

on_both_databases!(
    a_running_scheduler_fires_a_new_due_reminder_without_waiting_for_its_poll,
    |t| {
        let app = TestApp::on(t);
        // An hour's poll: only the commit of the new task can wake the scheduler in time.
        let running = ReminderScheduler {
            poll: Duration::from_secs(3600),
            ..scheduler(&t.db, at("2030-01-07T09:00:00Z"))
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            running
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        // Let the first (empty) pass finish so the reminder arrives while the scheduler sleeps.
        tokio::task::yield_now().await;
        create(
            &app,
            json!({
                "title": "Water the plants",
                "dueAt": "2030-01-07T09:10:00Z",
                "reminders": [{ "minutesBeforeDue": 30 }]
            }),
        )
        .await;
        wait_until("the reminder fires", || async {
            reminder_events(&app).await.len() == 1
        })
        .await;

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the scheduler did not stop within 30 s")
            .unwrap();
        assert_eq!(reminder_events(&app).await[0].event_type, REMINDER_DUE_TYPE);
    }
);
