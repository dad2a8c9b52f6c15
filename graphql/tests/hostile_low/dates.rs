//! Dates are bounded to 1000-01-01T00:00:00Z ..= 9000-12-31 (UTC): due dates, filter bounds,
//! absolute reminder times and `previewRecurrence`'s due date outside it are refused naming the
//! field, and a recurring series ends at the range's last day instead of creating a successor
//! the server could not page through.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use stream::topics::TASK_EVENTS;
use subscribers::Clock;
use subscribers::recurrence::{CONSUMER, RecurrenceHandler};
use support::{RunningConsumer, wait_until};
use uuid::Uuid;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn successors_of(db: &DatabaseConnection, id: Uuid) -> Vec<entities::task::Model> {
    entities::task::Entity::find()
        .filter(entities::task::Column::GeneratedFromTaskId.eq(id))
        .all(db)
        .await
        .unwrap()
}

async fn complete(app: &TestApp, id: &Value) {
    app.ok(
        ALICE,
        "mutation($id: ID!) { completeTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
}

on_both_databases!(
    due_dates_outside_the_accepted_range_are_refused_naming_the_field,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        let task = app.create_task(ALICE, json!({ "title": "Edge" })).await;
        let before = row_counts(&app).await;
        let update = "mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }";
        let cases = [
            (
                CREATE_TASK,
                json!({ "input": { "title": "t", "dueAt": "9999-12-31T00:00:00Z" } }),
                "input.dueAt",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "t", "dueAt": "9001-01-01T00:00:00Z" } }),
                "input.dueAt",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "t", "dueAt": "0999-12-31T23:59:59Z" } }),
                "input.dueAt",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "t", "dueAt": "9999-12-30T09:00:00Z",
                    "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC" } } }),
                "input.dueAt",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "t", "reminders": [{ "at": "9999-12-31T00:00:00Z" }] } }),
                "input.reminders[0].at",
            ),
            (
                update,
                json!({ "id": task["id"], "input": { "dueAt": "9999-12-31T23:59:59Z" } }),
                "input.dueAt",
            ),
            (
                update,
                json!({ "id": task["id"], "input": { "reminders": [{ "minutesBeforeDue": 5 }, { "at": "0500-01-01T00:00:00Z" }] } }),
                "input.reminders[1].at",
            ),
        ];

        for (query, variables, field) in cases {
            // Act
            let error = app.err(ALICE, query, variables).await;

            // Assert
            assert_bad_input(
                error,
                &format!("{field} must be between 1000-01-01T00:00:00Z and 9000-12-31T23:59:59Z"),
            );
        }
        assert_eq!(row_counts(&app).await, before, "nothing may be written");
    }
);

on_both_databases!(the_last_instant_of_the_range_is_accepted, |t| {
    // Arrange
    let app = TestApp::on(t);

    // Act
    let task = app
        .create_task(
            ALICE,
            json!({ "title": "Last", "dueAt": "9000-12-31T23:59:59.999999Z",
                "reminders": [{ "at": "1000-01-01T00:00:00Z" }] }),
        )
        .await;

    // Assert
    assert_eq!(task["dueAt"], "9000-12-31T23:59:59.999999+00:00");
});

on_both_databases!(
    filter_bounds_and_preview_dates_outside_the_range_are_refused_naming_the_field,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        let list = "query($f: TaskFilter) { tasks(filter: $f) { nodes { id } } }";
        let preview = "query($d: DateTime!) { previewRecurrence(recurrence: { rule: \"FREQ=DAILY\", timezone: \"UTC\" }, dueAt: $d) }";

        // Act and Assert
        for (filter, field) in [
            (
                json!({ "dueBefore": "9999-12-31T00:00:00Z" }),
                "filter.dueBefore",
            ),
            (
                json!({ "dueAfter": "0001-01-01T00:00:00Z" }),
                "filter.dueAfter",
            ),
            (
                json!({ "or": [{ "completed": true }, { "not": { "dueAfter": "9500-01-01T00:00:00Z" } }] }),
                "filter.or[1].not.dueAfter",
            ),
        ] {
            let error = app.err(ALICE, list, json!({ "f": filter })).await;
            assert_bad_input(error, &format!("{field} must be between"));
        }
        let error = app
            .err(ALICE, preview, json!({ "d": "9999-12-30T09:00:00Z" }))
            .await;
        assert_bad_input(error, "dueAt must be between");
        let edge = app
            .ok(ALICE, preview, json!({ "d": "9000-12-29T09:00:00Z" }))
            .await;
        assert_eq!(
            edge["previewRecurrence"],
            json!(["9000-12-30T09:00:00+00:00", "9000-12-31T09:00:00+00:00"]),
            "the series ends with the range"
        );
        assert_eq!(app.count("users").await, 0);
    }
);

on_both_databases!(
    a_daily_task_due_on_the_last_allowed_day_completes_without_a_successor,
    |t| {
        // Arrange: a daily series one day before the end of the range.
        let app = TestApp::on(t);
        let running = RunningConsumer::start(
            &t.db,
            RecurrenceHandler::new(Clock::Fixed(at("2030-01-07T10:00:00Z"))),
            TASK_EVENTS,
        );
        let first = app
            .create_task(
                ALICE,
                json!({ "title": "Daily", "dueAt": "9000-12-30T09:00:00Z",
                    "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC" } }),
            )
            .await;
        let first_id = Uuid::parse_str(first["id"].as_str().unwrap()).unwrap();
        complete(&app, &first["id"]).await;
        wait_until("the successor on the last allowed day exists", || async {
            !successors_of(&t.db, first_id).await.is_empty()
        })
        .await;
        let last = successors_of(&t.db, first_id).await.remove(0);
        assert_eq!(last.due_at, Some(at("9000-12-31T09:00:00Z")));

        // Act
        complete(&app, &json!(last.id)).await;
        support::wait_caught_up(&t.db, CONSUMER, TASK_EVENTS).await;

        // Assert
        assert!(successors_of(&t.db, last.id).await.is_empty());
        assert_eq!(
            entities::task::Entity::find().count(&t.db).await.unwrap(),
            2
        );
        let task = app
            .ok(
                ALICE,
                &format!("query($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} nextOccurrence {{ id }} recurrence {{ upcoming(count: 3) }} }} }}"),
                json!({ "id": last.id }),
            )
            .await;
        assert_eq!(task["task"]["nextOccurrence"], Value::Null);
        assert_eq!(task["task"]["recurrence"]["upcoming"], json!([]));
        let page = app
            .ok(
                ALICE,
                "{ tasks(sort: [{field: DUE_AT, direction: DESC}], first: 1) { nodes { dueAt } pageInfo { endCursor } } }",
                json!({}),
            )
            .await;
        let cursor = page["tasks"]["pageInfo"]["endCursor"].clone();
        assert_eq!(
            page["tasks"]["nodes"][0]["dueAt"],
            "9000-12-31T09:00:00+00:00"
        );
        app.ok(
            ALICE,
            "query($a: String) { tasks(sort: [{field: DUE_AT, direction: DESC}], first: 1, after: $a) { nodes { dueAt } } }",
            json!({ "a": cursor }),
        )
        .await;
        running.stop().await;
    }
);
