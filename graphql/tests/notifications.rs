//! The notification subscriber and the in-app inbox end to end, on SQLite and PostgreSQL: a
//! reminder fired by the `ReminderScheduler` (fixed clock) is turned into one notification by
//! the `NotificationHandler` running in the shared consumer runtime over the embedded log, and
//! read, paged and marked read through GraphQL.
#![allow(clippy::unwrap_used)]

mod support;

use support::RunningConsumer;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entities::notification::{self, NotificationKind};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use stream::CloudEvent;
use stream::consumer::{Handler, HandlerOutcome};
use stream::log::LogRecord;
use stream::notification_events::NOTIFICATION_CREATED_TYPE;
use stream::topics::{NOTIFICATIONS, REMINDERS};
use subscribers::Clock;
use subscribers::notification::{CONSUMER, NotificationHandler};
use subscribers::reminder_scheduler::ReminderScheduler;
use support::TestApp;
use uuid::Uuid;

const ALICE: &str = "alice";
const BOB: &str = "bob";

const FIELDS: &str = "id kind title body task { id title } createdAt readAt";

// ---------------------------------------------------------------- helpers

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The notification consumer running in the background until stopped.
fn start(db: &DatabaseConnection) -> RunningConsumer {
    RunningConsumer::start(db, NotificationHandler::new(), REMINDERS)
}

/// Waits until the consumer has handled every record on `reminders`.
async fn wait_caught_up(db: &DatabaseConnection) {
    support::wait_caught_up(db, CONSUMER, REMINDERS).await;
}

async fn create(app: &TestApp, user: &str, input: Value) -> Uuid {
    let task = app.create_task(user, input).await;
    Uuid::parse_str(task["id"].as_str().unwrap()).unwrap()
}

fn due_with_reminder(title: &str) -> Value {
    json!({
        "title": title,
        "dueAt": "2030-01-07T09:00:00Z",
        "reminders": [{ "minutesBeforeDue": 30 }]
    })
}

async fn inbox(app: &TestApp, user: &str, args: Value) -> Value {
    let data = app
        .ok(
            user,
            &format!(
                "query($unreadOnly: Boolean, $first: Int, $after: String) {{
                    notifications(unreadOnly: $unreadOnly, first: $first, after: $after) {{
                        nodes {{ {FIELDS} }}
                        pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
                        totalCount
                    }}
                }}"
            ),
            args,
        )
        .await;
    data["notifications"].clone()
}

const MARK: &str = "mutation($id: ID!) { markNotificationRead(id: $id) { id readAt } }";

async fn notifications_of(db: &DatabaseConnection, owner: &str) -> Vec<notification::Model> {
    notification::Entity::find()
        .filter(notification::Column::OwnerId.eq(owner))
        .all(db)
        .await
        .unwrap()
}

/// The outbox row of a reminder event as a log record, for calling the handler directly.
fn as_record(row: &entities::outbox::Model) -> LogRecord {
    LogRecord {
        topic: row.topic.clone(),
        partition: 0,
        offset: row.id,
        key: Some(row.key.clone()),
        value: Some(row.payload.clone().into_bytes()),
        headers: serde_json::from_str(&row.headers).unwrap(),
        timestamp: row.created_at,
    }
}

/// Fires the reminder of a task due 2030-01-07 09:00, 30 minutes before, and waits for the
/// consumer. Returns the task id.
async fn fired_reminder(app: &TestApp, db: &DatabaseConnection, title: &str) -> Uuid {
    let id = create(app, ALICE, due_with_reminder(title)).await;
    let report = ReminderScheduler::new(db.clone(), Clock::Fixed(at("2030-01-07T08:30:00Z")))
        .fire_due()
        .await
        .unwrap();
    assert_eq!(report.fired.len(), 1);
    wait_caught_up(db).await;
    id
}

// ---------------------------------------------------------------- the handler

on_both_databases!(a_fired_reminder_becomes_exactly_one_notification, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    let task_id = fired_reminder(&app, &t.db, "Call the plumber").await;

    let rows = notifications_of(&t.db, ALICE).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let n = &rows[0];
    assert_eq!(n.kind, NotificationKind::ReminderDue);
    assert_eq!(n.title, "Call the plumber");
    assert_eq!(n.body, "Due at 2030-01-07T09:00:00Z");
    assert_eq!(n.task_id, Some(task_id));
    assert_eq!(n.read_at, None);
    assert_eq!(n.due_at, Some(at("2030-01-07T09:00:00Z")));
    assert_eq!(n.remind_at, Some(at("2030-01-07T08:30:00Z")));
    let listed = app
        .ok(
            ALICE,
            "{ notifications { nodes { dueAt remindAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["notifications"]["nodes"],
        json!([{ "dueAt": "2030-01-07T09:00:00+00:00", "remindAt": "2030-01-07T08:30:00+00:00" }]),
        "clients word the times in their own zone"
    );

    let outbox = app.outbox().await;
    let source = outbox.iter().find(|r| r.topic == REMINDERS).unwrap();
    assert_eq!(n.event_id, source.event_id);
    let created: Vec<_> = outbox.iter().filter(|r| r.topic == NOTIFICATIONS).collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].key, ALICE);
    let event: CloudEvent = serde_json::from_str(&created[0].payload).unwrap();
    assert_eq!(event.event_type, NOTIFICATION_CREATED_TYPE);
    assert_eq!(event.data["id"], json!(n.id.to_string()));
    assert_eq!(event.data["ownerId"], json!(ALICE));
    assert_eq!(event.data["kind"], json!("REMINDER_DUE"));
    assert_eq!(event.data["dueAt"], json!("2030-01-07T09:00:00Z"));
    assert_eq!(event.data["remindAt"], json!("2030-01-07T08:30:00Z"));

    // The same event delivered again (past the runtime's dedupe) changes nothing.
    running.stop().await;
    for _ in 0..2 {
        let txn = stream::outbox::begin_write(&t.db).await.unwrap();
        let outcome = NotificationHandler::new()
            .handle(&txn, &as_record(source))
            .await
            .unwrap();
        txn.commit().await.unwrap();
        assert_eq!(outcome, HandlerOutcome::Ignored);
    }
    assert_eq!(notifications_of(&t.db, ALICE).await.len(), 1);
    let created = app
        .outbox()
        .await
        .into_iter()
        .filter(|r| r.topic == NOTIFICATIONS)
        .count();
    assert_eq!(created, 1);
    assert_eq!(app.count("dead_letters").await, 0);
});

on_both_databases!(a_missed_reminder_is_worded_as_missed, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    create(&app, ALICE, due_with_reminder("Renew the passport")).await;
    let report = ReminderScheduler::new(t.db.clone(), Clock::Fixed(at("2030-01-08T12:00:00Z")))
        .fire_due()
        .await
        .unwrap();
    assert_eq!(report.missed.len(), 1);
    wait_caught_up(&t.db).await;
    let rows = notifications_of(&t.db, ALICE).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, NotificationKind::ReminderMissed);
    assert_eq!(rows[0].body, "Missed: was due at 2030-01-07T09:00:00Z");
    running.stop().await;
});

on_both_databases!(an_unparseable_record_is_a_dead_letter, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    entities::outbox::ActiveModel {
        event_id: Set(Uuid::now_v7()),
        topic: Set(REMINDERS.to_owned()),
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
    assert_eq!(parked[0].topic, REMINDERS);
    assert_eq!(parked[0].payload, "this is not a CloudEvent");
    assert_eq!(app.count("notifications").await, 0);
    running.stop().await;
});

// ---------------------------------------------------------------- the API

on_both_databases!(the_inbox_lists_marks_read_and_is_private, |t| {
    let app = TestApp::on(t);
    let running = start(&t.db);
    let first_task = fired_reminder(&app, &t.db, "First").await;
    let second_task = create(
        &app,
        ALICE,
        json!({
            "title": "Second",
            "dueAt": "2030-01-08T09:00:00Z",
            "reminders": [{ "minutesBeforeDue": 30 }]
        }),
    )
    .await;
    ReminderScheduler::new(t.db.clone(), Clock::Fixed(at("2030-01-08T08:30:00Z")))
        .fire_due()
        .await
        .unwrap();
    wait_caught_up(&t.db).await;
    running.stop().await;

    let all = inbox(&app, ALICE, json!({})).await;
    assert_eq!(all["totalCount"], 2);
    let nodes = all["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    // Newest first, with the task resolved.
    assert_eq!(nodes[0]["title"], "Second");
    assert_eq!(nodes[0]["task"]["id"], json!(second_task.to_string()));
    assert_eq!(nodes[1]["title"], "First");
    assert_eq!(nodes[1]["task"]["id"], json!(first_task.to_string()));
    assert_eq!(nodes[1]["kind"], "REMINDER_DUE");
    assert_eq!(nodes[1]["readAt"], Value::Null);
    assert_eq!(all["pageInfo"]["hasNextPage"], false);

    // Marking read sets readAt once; again is a no-op.
    let id = nodes[1]["id"].as_str().unwrap().to_owned();
    let marked = app.ok(ALICE, MARK, json!({ "id": id })).await;
    let read_at = marked["markNotificationRead"]["readAt"].clone();
    assert!(read_at.is_string(), "{marked}");
    let again = app.ok(ALICE, MARK, json!({ "id": id })).await;
    assert_eq!(again["markNotificationRead"]["readAt"], read_at);

    let unread = inbox(&app, ALICE, json!({ "unreadOnly": true })).await;
    assert_eq!(unread["totalCount"], 1);
    assert_eq!(unread["nodes"][0]["title"], "Second");

    // Bob sees nothing and cannot mark Alice's.
    let bobs = inbox(&app, BOB, json!({})).await;
    assert_eq!(bobs["totalCount"], 0);
    assert_eq!(bobs["nodes"], json!([]));
    let (code, _) = app.err(BOB, MARK, json!({ "id": id })).await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .err(BOB, MARK, json!({ "id": nodes[0]["id"].clone() }))
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(
        inbox(&app, ALICE, json!({ "unreadOnly": true })).await["totalCount"],
        1
    );

    // A deleted task leaves the notification, with a null task.
    app.ok(
        ALICE,
        "mutation($id: ID!) { deleteTask(id: $id) }",
        json!({ "id": first_task }),
    )
    .await;
    let all = inbox(&app, ALICE, json!({})).await;
    assert_eq!(all["totalCount"], 2);
    assert_eq!(all["nodes"][1]["task"], Value::Null);
});

on_both_databases!(
    paging_over_25_notifications_has_no_gaps_or_duplicates,
    |t| {
        let app = TestApp::on(t);
        // Creating a task creates the user row the notifications belong to.
        create(&app, ALICE, json!({ "title": "Anything" })).await;
        let base = at("2030-01-01T00:00:00Z");
        let mut expected = Vec::new();
        for i in 0..25_i64 {
            // Three rows share each timestamp, so the id tie-breaker matters.
            let row = notification::ActiveModel {
                id: Set(Uuid::now_v7()),
                owner_id: Set(ALICE.to_owned()),
                task_id: Set(None),
                kind: Set(NotificationKind::ReminderDue),
                title: Set(format!("n{i}")),
                body: Set("Due".to_owned()),
                event_id: Set(Uuid::now_v7()),
                created_at: Set(base + chrono::Duration::seconds(i / 3)),
                read_at: Set(None),
                due_at: Set(None),
                remind_at: Set(None),
            }
            .insert(&t.db)
            .await
            .unwrap();
            expected.push(row);
        }
        expected.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        let expected: Vec<String> = expected.iter().map(|r| r.id.to_string()).collect();

        let mut seen = Vec::new();
        let mut after = Value::Null;
        let mut pages = 0;
        loop {
            let page = inbox(&app, ALICE, json!({ "first": 10, "after": after })).await;
            assert_eq!(page["totalCount"], 25);
            assert_eq!(page["pageInfo"]["hasPreviousPage"], pages > 0);
            for node in page["nodes"].as_array().unwrap() {
                seen.push(node["id"].as_str().unwrap().to_owned());
            }
            pages += 1;
            if page["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = page["pageInfo"]["endCursor"].clone();
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen.len(), 25);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);
        assert_eq!(seen, expected);

        let default_page = inbox(&app, ALICE, json!({})).await;
        assert_eq!(default_page["nodes"].as_array().unwrap().len(), 20);
    }
);

on_both_databases!(bad_paging_input_is_rejected, |t| {
    let app = TestApp::on(t);
    let query = "query($first: Int, $after: String) { notifications(first: $first, after: $after) { nodes { id } } }";
    for first in [0, 101, -1] {
        let (code, message) = app.err(ALICE, query, json!({ "first": first })).await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert!(message.contains("first"), "{message}");
    }
    for after in [
        "not a cursor",
        "eyJ2IjoibjEifQ",
        "eyJ2IjoieCIsInQiOiIyMDMwLTAxLTAxVDAwOjAwOjAwWiIsImlkIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIn0",
    ] {
        let (code, message) = app.err(ALICE, query, json!({ "after": after })).await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert!(message.contains("after"), "{message}");
    }
    let (code, _) = app
        .err(ALICE, MARK, json!({ "id": Uuid::now_v7().to_string() }))
        .await;
    assert_eq!(code, "NOT_FOUND");
});
