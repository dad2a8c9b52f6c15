//! Enumerated values (priority, recurrence anchor, reminder, webhook and dead-letter statuses,
//! notification kind) are typed end to end, on SQLite and PostgreSQL:
//!
//! - the database refuses any other value written directly in SQL, naming the constraint
//!   (`ck_<table>_<column>`: a CHECK on PostgreSQL, triggers on SQLite), and accepts every
//!   value the application's enums name;
//! - a row that holds another value anyway (the check bypassed) fails to load through the API:
//!   `INTERNAL`, with the value in the logged cause, never a default;
//! - an event carrying another value is parked as a dead letter by each subscriber that
//!   decodes it, with an error naming the field and the value;
//! - stored record headers that are not a JSON object of strings are an error (an outbox row
//!   does not become a record, a dead letter is not replayed), never an empty set.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::Utc;
use entities::dead_letter::DeadLetterStatus;
use entities::notification::NotificationKind;
use entities::priority::Priority;
use entities::recurrence::RecurrenceAnchor;
use entities::reminder_offset::ReminderStatus;
use entities::webhook_delivery::DeliveryStatus;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde_json::json;
use stream::CloudEvent;
use stream::topics::{NOTIFICATIONS, TASK_EVENTS};
use subscribers::Clock;
use support::{Backend, RunningConsumer, TestApp, TestDb};
use uuid::Uuid;

const ALICE: &str = "alice";

fn uuid(n: u8) -> String {
    format!("01900000-0000-7000-8000-0000000000{n:02x}")
}

/// Creates a task titled `title` for alice: weekly from a due date, with one reminder.
async fn create(app: &TestApp, title: &str) -> Uuid {
    let task = app
        .create_task(
            ALICE,
            json!({
                "title": title,
                "priority": "HIGH",
                "dueAt": "2030-01-07T09:00:00Z",
                "recurrence": { "rule": "FREQ=WEEKLY", "timezone": "UTC", "anchor": "COMPLETION" },
                "reminders": [{ "minutesBeforeDue": 30 }]
            }),
        )
        .await;
    Uuid::parse_str(task["id"].as_str().unwrap()).unwrap()
}

async fn exec(db: &DatabaseConnection, sql: &str) -> Result<u64, String> {
    db.execute_unprepared(sql)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
}

/// A notification, a webhook delivery and a dead letter with valid values, for alice.
async fn insert_rows(db: &DatabaseConnection) {
    for sql in [
        format!(
            "INSERT INTO notifications (id, owner_id, kind, title, body, event_id, created_at) \
             VALUES ('{}', 'alice', 'REMINDER_DUE', 't', 'b', '{}', CURRENT_TIMESTAMP)",
            uuid(1),
            uuid(2)
        ),
        format!(
            "INSERT INTO webhook_deliveries (id, event_id, owner_id, url, body, source_topic, \
             source_partition, source_offset, source_headers, status, attempts, \
             next_attempt_at, created_at, updated_at) VALUES ('{}', '{}', 'alice', \
             'https://example.com/hook', '{{}}', 'notifications', 0, 0, '{{}}', 'PENDING', 0, \
             CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            uuid(3),
            uuid(4)
        ),
        "INSERT INTO dead_letters (consumer, topic, partition, \"offset\", payload, headers, \
         error, attempts, status, created_at, updated_at) VALUES ('c', 't', 0, 0, '{}', '{}', \
         'e', 1, 'PARKED', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            .to_owned(),
    ] {
        exec(db, &sql).await.unwrap();
    }
}

/// One enumerated column: its constraint, every value the application writes, an insert of a
/// new row with `{value}` in the column, and the statement that updates the existing rows.
struct Column {
    constraint: &'static str,
    values: Vec<String>,
    insert: String,
    update: &'static str,
}

fn columns() -> Vec<Column> {
    fn names<T: Copy + Into<&'static str>>(all: &[T]) -> Vec<String> {
        all.iter().map(|v| (*v).into().to_owned()).collect()
    }
    vec![
        Column {
            constraint: "ck_tasks_priority",
            values: Priority::ALL.iter().map(|p| p.rank().to_string()).collect(),
            insert: format!(
                "INSERT INTO tasks (id, owner_id, title, priority, created_at, updated_at) \
                 VALUES ('{}', 'alice', 'new', {{value}}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                uuid(10)
            ),
            update: "UPDATE tasks SET priority = {value}",
        },
        Column {
            constraint: "ck_tasks_recurrence_anchor",
            values: names(RecurrenceAnchor::ALL),
            insert: format!(
                "INSERT INTO tasks (id, owner_id, title, recurrence_anchor, created_at, \
                 updated_at) VALUES ('{}', 'alice', 'new', '{{value}}', CURRENT_TIMESTAMP, \
                 CURRENT_TIMESTAMP)",
                uuid(11)
            ),
            update: "UPDATE tasks SET recurrence_anchor = '{value}'",
        },
        Column {
            constraint: "ck_reminders_status",
            values: names(ReminderStatus::ALL),
            insert: format!(
                "INSERT INTO reminders (id, task_id, owner_id, minutes_before_due, status, \
                 created_at) VALUES ('{}', (SELECT id FROM tasks WHERE title = 'A'), 'alice', 5, '{{value}}', \
                 CURRENT_TIMESTAMP)",
                uuid(12)
            ),
            update: "UPDATE reminders SET status = '{value}'",
        },
        Column {
            constraint: "ck_notifications_kind",
            values: names(NotificationKind::ALL),
            insert: format!(
                "INSERT INTO notifications (id, owner_id, kind, title, body, event_id, \
                 created_at) VALUES ('{}', 'alice', '{{value}}', 't', 'b', '{}', \
                 CURRENT_TIMESTAMP)",
                uuid(13),
                uuid(14)
            ),
            update: "UPDATE notifications SET kind = '{value}'",
        },
        Column {
            constraint: "ck_webhook_deliveries_status",
            values: names(DeliveryStatus::ALL),
            insert: format!(
                "INSERT INTO webhook_deliveries (id, event_id, owner_id, url, body, \
                 source_topic, source_partition, source_offset, source_headers, status, \
                 attempts, next_attempt_at, created_at, updated_at) VALUES ('{}', '{}', \
                 'alice', 'https://example.com/hook', '{{}}', 'notifications', 0, 1, '{{}}', \
                 '{{value}}', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                uuid(15),
                uuid(16)
            ),
            update: "UPDATE webhook_deliveries SET status = '{value}'",
        },
        Column {
            constraint: "ck_dead_letters_status",
            values: names(DeadLetterStatus::ALL),
            insert: "INSERT INTO dead_letters (consumer, topic, partition, \"offset\", payload, \
                     headers, error, attempts, status, created_at, updated_at) VALUES ('c', 't', \
                     0, 1, '{}', '{}', 'e', 1, '{value}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                .to_owned(),
            update: "UPDATE dead_letters SET status = '{value}'",
        },
    ]
}

on_both_databases!(the_database_refuses_unknown_values_naming_the_check, |t| {
    let app = TestApp::on(t);
    create(&app, "A").await;
    insert_rows(&t.db).await;
    for column in columns() {
        let name = column.constraint;
        // Every value the application writes is accepted, by an update of the existing rows.
        for value in &column.values {
            let sql = column.update.replace("{value}", value);
            let updated = exec(&t.db, &sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert!(updated > 0, "{sql} updated nothing");
        }
        // Anything else (names are case-sensitive) is refused, on insert and on update, and
        // the error names the check.
        let unknowns = if name == "ck_tasks_priority" {
            vec!["7".to_owned(), "-1".to_owned()]
        } else {
            vec!["BOGUS".to_owned(), column.values[0].to_lowercase()]
        };
        for value in &unknowns {
            for template in [column.insert.as_str(), column.update] {
                let sql = template.replace("{value}", value);
                match exec(&t.db, &sql).await {
                    Ok(_) => panic!("{sql} was accepted"),
                    Err(e) => assert!(e.contains(name), "{sql}: {e}"),
                }
            }
        }
    }
});

/// Writes `sql` with the check `constraint` out of the way (and leaves it out of the way):
/// PostgreSQL drops the constraint; SQLite drops the update trigger, or, for a CHECK of the
/// table's own definition, ignores CHECKs on the one connection of a transaction.
async fn bypassing(t: &TestDb, constraint: &str, table: &str, sql: &str) {
    let written = match t.backend {
        Backend::Postgres => {
            let drop = format!("ALTER TABLE {table} DROP CONSTRAINT {constraint}");
            exec(&t.db, &drop).await.unwrap();
            exec(&t.db, sql).await.unwrap()
        }
        Backend::Sqlite if constraint == "ck_tasks_priority" => {
            let txn = t.db.begin().await.unwrap();
            txn.execute_unprepared("PRAGMA ignore_check_constraints = ON")
                .await
                .unwrap();
            let written = txn.execute_unprepared(sql).await.unwrap().rows_affected();
            txn.execute_unprepared("PRAGMA ignore_check_constraints = OFF")
                .await
                .unwrap();
            txn.commit().await.unwrap();
            written
        }
        Backend::Sqlite => {
            let drop = format!("DROP TRIGGER {constraint}_update");
            exec(&t.db, &drop).await.unwrap();
            exec(&t.db, sql).await.unwrap()
        }
    };
    assert!(written > 0, "{sql} wrote nothing");
}

on_both_databases!(a_row_with_an_unknown_value_is_an_internal_error, |t| {
    let logs = support::CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::ERROR)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let app = TestApp::on(t);
    let fine = create(&app, "Fine").await;
    let by_priority = create(&app, "P").await;
    let by_anchor = create(&app, "A").await;
    let by_reminder = create(&app, "R").await;
    let now = entities::to_db_precision(Utc::now());
    entities::notification::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(ALICE.to_owned()),
        task_id: Set(None),
        kind: Set(NotificationKind::ReminderDue),
        title: Set("t".to_owned()),
        body: Set("b".to_owned()),
        event_id: Set(Uuid::now_v7()),
        created_at: Set(now),
        read_at: Set(None),
        due_at: Set(None),
        remind_at: Set(None),
    }
    .insert(&t.db)
    .await
    .unwrap();
    let task = |id: Uuid, fields: &str| format!("{{ task(id: \"{id}\") {{ {fields} }} }}");
    let cases = [
        (
            "ck_tasks_priority",
            "tasks",
            "UPDATE tasks SET priority = 9 WHERE title = 'P'".to_owned(),
            task(by_priority, "title priority"),
            "Priority enum: 9",
        ),
        (
            "ck_tasks_recurrence_anchor",
            "tasks",
            "UPDATE tasks SET recurrence_anchor = 'SOMETIMES' WHERE title = 'A'".to_owned(),
            task(by_anchor, "recurrence { anchor }"),
            "RecurrenceAnchor enum: SOMETIMES",
        ),
        (
            "ck_reminders_status",
            "reminders",
            "UPDATE reminders SET status = 'SNOOZED' \
             WHERE task_id = (SELECT id FROM tasks WHERE title = 'R')"
                .to_owned(),
            task(by_reminder, "reminders { status }"),
            "ReminderStatus enum: SNOOZED",
        ),
        (
            "ck_notifications_kind",
            "notifications",
            "UPDATE notifications SET kind = 'REMINDER_SOON'".to_owned(),
            "{ notifications { nodes { kind } } }".to_owned(),
            "NotificationKind enum: REMINDER_SOON",
        ),
    ];
    for (constraint, table, corrupt, query, logged) in cases {
        // Readable before.
        app.ok(ALICE, &query, json!({})).await;
        bypassing(t, constraint, table, &corrupt).await;
        let response = app.exec(ALICE, &query, json!({})).await;
        let error = response
            .errors
            .first()
            .unwrap_or_else(|| panic!("{query} read a default: {:?}", response.data));
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        assert_eq!(
            code.map(|c| c.clone().into_json().unwrap()),
            Some(json!("INTERNAL")),
            "{query}: {error:?}"
        );
        assert_eq!(error.message, "internal error");
        let text = logs.text();
        assert!(
            text.contains("internal error while resolving a request") && text.contains(logged),
            "{query}: no internal error naming {logged:?} was logged:\n{text}"
        );
    }
    // The other rows still read as they are.
    let data = app
        .ok(
            ALICE,
            &task(fine, "priority recurrence { anchor } reminders { status }"),
            json!({}),
        )
        .await;
    assert_eq!(
        data["task"],
        json!({
            "priority": "HIGH",
            "recurrence": { "anchor": "COMPLETION" },
            "reminders": [{ "status": "PENDING" }]
        })
    );
});

/// Dead letters of `consumer`, oldest first.
async fn dead_letters_of(
    db: &DatabaseConnection,
    consumer: &str,
) -> Vec<entities::dead_letter::Model> {
    entities::dead_letter::Entity::find()
        .filter(entities::dead_letter::Column::Consumer.eq(consumer))
        .order_by_asc(entities::dead_letter::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// `event` with a fresh id and `value` at `pointer` in its data.
fn poisoned(event: &CloudEvent, pointer: &str, value: &str) -> CloudEvent {
    let mut poisoned = event.clone();
    poisoned.id = Uuid::now_v7();
    *poisoned
        .data
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is not in {}", event.data)) = json!(value);
    poisoned
}

on_both_databases!(
    events_with_unknown_values_are_parked_naming_the_value,
    |t| {
        let app = TestApp::on(t);
        let id = create(&app, "Water the plants").await;
        app.ok(
            ALICE,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        let completion = app
            .outbox()
            .await
            .into_iter()
            .filter(|row| row.topic == TASK_EVENTS)
            .map(|row| serde_json::from_str::<CloudEvent>(&row.payload).unwrap())
            .rfind(|event| event.event_type == "taskstream.task.completed")
            .unwrap();
        let now = Utc::now();
        let cases = [
            (
                "/task/priority",
                "WHENEVER",
                "unknown priority \"WHENEVER\"",
            ),
            (
                "/task/recurrence/anchor",
                "SOMETIMES",
                "unknown recurrence anchor \"SOMETIMES\"",
            ),
            (
                "/task/reminders/0/status",
                "SNOOZED",
                "unknown reminder status \"SNOOZED\"",
            ),
        ];
        let mut expected = Vec::new();
        for (pointer, value, message) in cases {
            let event = poisoned(&completion, pointer, value);
            stream::outbox::append(&t.db, TASK_EVENTS, &id.to_string(), &event, now)
                .await
                .unwrap();
            expected.push((Some(event.id), message));
        }
        let notification = CloudEvent::new(
            stream::notification_events::NOTIFICATION_CREATED_TYPE,
            uuid(20),
            now,
            json!({
                "id": uuid(20), "ownerId": ALICE, "taskId": id, "kind": "REMINDER_SOON",
                "title": "t", "body": "b", "eventId": uuid(21), "createdAt": now, "readAt": null
            }),
        );
        stream::outbox::append(&t.db, NOTIFICATIONS, ALICE, &notification, now)
            .await
            .unwrap();
        stream::outbox::notify_committed();

        let consumers = [
            RunningConsumer::start(
                &t.db,
                subscribers::recurrence::RecurrenceHandler::new(Clock::Fixed(now)),
                TASK_EVENTS,
            ),
            RunningConsumer::start(
                &t.db,
                subscribers::reminder::ReminderHandler::new(),
                TASK_EVENTS,
            ),
            RunningConsumer::start(
                &t.db,
                subscribers::webhook::WebhookHandler::new(),
                NOTIFICATIONS,
            ),
        ];
        for (consumer, topic) in [
            (subscribers::recurrence::CONSUMER, TASK_EVENTS),
            (subscribers::reminder::CONSUMER, TASK_EVENTS),
            (subscribers::webhook::CONSUMER, NOTIFICATIONS),
        ] {
            support::wait_caught_up(&t.db, consumer, topic).await;
        }
        for running in consumers {
            running.stop().await;
        }

        // Both subscribers of task events park each poisoned event, naming the field and value.
        for consumer in [
            subscribers::recurrence::CONSUMER,
            subscribers::reminder::CONSUMER,
        ] {
            let parked = dead_letters_of(&t.db, consumer).await;
            assert_eq!(parked.len(), expected.len(), "{consumer}: {parked:#?}");
            for (dead, (event_id, message)) in parked.iter().zip(&expected) {
                assert_eq!(dead.event_id, *event_id, "{consumer}");
                assert_eq!(dead.status, DeadLetterStatus::Parked);
                assert!(dead.error.contains(message), "{consumer}: {}", dead.error);
            }
        }
        let parked = dead_letters_of(&t.db, subscribers::webhook::CONSUMER).await;
        assert_eq!(parked.len(), 1, "{parked:#?}");
        assert!(
            parked[0]
                .error
                .contains("unknown notification kind \"REMINDER_SOON\""),
            "{}",
            parked[0].error
        );
        // The genuine completion was applied: one successor, with the completed task's priority.
        let successors = entities::task::Entity::find()
            .filter(entities::task::Column::GeneratedFromTaskId.eq(id))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(successors.len(), 1);
        assert_eq!(successors[0].priority, Priority::High);
        assert_eq!(
            successors[0].recurrence_anchor,
            Some(RecurrenceAnchor::Completion)
        );
    }
);

on_both_databases!(corrupt_stored_headers_are_an_error_not_empty_headers, |t| {
    let now = entities::to_db_precision(Utc::now());
    // An outbox row: the relay (and the embedded log) cannot turn it into a record.
    let mut row = stream::outbox::row(
        Uuid::now_v7(),
        TASK_EVENTS,
        "k",
        "{}".to_owned(),
        &Default::default(),
        now,
    )
    .unwrap();
    row.headers = Set("not json".to_owned());
    let row = row.insert(&t.db).await.unwrap();
    let error = stream::outbox::to_record(&row.into())
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a JSON object of strings"), "{error}");

    // A dead letter: its replay is refused, and it stays parked.
    let dead = entities::dead_letter::ActiveModel {
        consumer: Set(subscribers::reminder::CONSUMER.to_owned()),
        topic: Set(TASK_EVENTS.to_owned()),
        partition: Set(0),
        offset: Set(0),
        event_id: Set(Some(Uuid::now_v7())),
        key: Set(Some("k".to_owned())),
        payload: Set("{}".to_owned()),
        headers: Set(r#"{"ce_id": 1}"#.to_owned()),
        error: Set("e".to_owned()),
        attempts: Set(1),
        status: Set(DeadLetterStatus::Parked),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&t.db)
    .await
    .unwrap();
    let handler = subscribers::reminder::ReminderHandler::new();
    let error = stream::dead_letters::replay(&t.db, dead.id, &handler)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            stream::dead_letters::DeadLetterError::CorruptHeaders { .. }
        ),
        "{error}"
    );
    let still = stream::dead_letters::show(&t.db, dead.id).await.unwrap();
    assert_eq!(still.status, DeadLetterStatus::Parked);
    assert_eq!(TestApp::on(t).count("processed_events").await, 0);
});
