//! `previewRecurrence`, the next dates of a recurrence that is not saved yet, through
//! `schema.execute`: on SQLite, and on PostgreSQL for the basic preview.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{Backend, TestApp, TestDb};

const ALICE: &str = "alice";

const PREVIEW: &str = "query($recurrence: RecurrenceInput!, $dueAt: DateTime!, $count: Int) { \
    previewRecurrence(recurrence: $recurrence, dueAt: $dueAt, count: $count) }";

/// The same query without `count`, so the argument's default applies.
const PREVIEW_DEFAULT_COUNT: &str = "query($recurrence: RecurrenceInput!, $dueAt: DateTime!) { \
    previewRecurrence(recurrence: $recurrence, dueAt: $dueAt) }";

// ---------------------------------------------------------------- helpers

async fn sqlite() -> TestDb {
    TestDb::migrated(Backend::Sqlite).await.unwrap()
}

/// The dates `previewRecurrence` returns, as strings.
async fn preview(app: &TestApp, user: &str, recurrence: Value, due_at: &str) -> Vec<String> {
    let data = app
        .ok(
            user,
            PREVIEW_DEFAULT_COUNT,
            json!({ "recurrence": recurrence, "dueAt": due_at }),
        )
        .await;
    dates(&data["previewRecurrence"])
}

/// `count` dates of a daily rule in UTC from 2030-01-01 10:00.
async fn daily_preview(app: &TestApp, count: i32) -> Vec<String> {
    let data = app
        .ok(
            ALICE,
            PREVIEW,
            json!({
                "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC" },
                "dueAt": "2030-01-01T10:00:00Z",
                "count": count,
            }),
        )
        .await;
    dates(&data["previewRecurrence"])
}

fn dates(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// The first error of a preview: (extensions.code, message).
async fn preview_error(
    app: &TestApp,
    recurrence: Value,
    due_at: &str,
    count: Option<i32>,
) -> (String, String) {
    app.err(
        ALICE,
        PREVIEW,
        json!({ "recurrence": recurrence, "dueAt": due_at, "count": count }),
    )
    .await
}

/// Asserts that nothing was written: no task, no event, no user row.
async fn assert_nothing_written(app: &TestApp) {
    assert_eq!(app.count("tasks").await, 0, "no task rows");
    assert_eq!(app.count("outbox").await, 0, "no events");
    assert_eq!(app.count("users").await, 0, "no user rows");
}

// ---------------------------------------------------------------- previews

on_both_databases!(
    a_weekly_rule_previews_the_next_five_dates_after_the_due_date,
    |t| {
        // Arrange: Monday 4 March 2030, 09:00 in Berlin (before its DST change on 31 March).
        let app = TestApp::on(t);
        let recurrence = json!({ "rule": "FREQ=WEEKLY;BYDAY=MO,TH", "timezone": "Europe/Berlin" });

        // Act
        let dates = preview(&app, ALICE, recurrence, "2030-03-04T09:00:00+01:00").await;

        // Assert: strictly after the due date, so the Monday itself is not among them.
        assert_eq!(
            dates,
            [
                "2030-03-07T08:00:00+00:00",
                "2030-03-11T08:00:00+00:00",
                "2030-03-14T08:00:00+00:00",
                "2030-03-18T08:00:00+00:00",
                "2030-03-21T08:00:00+00:00",
            ]
        );
        assert_nothing_written(&app).await;
    }
);

#[tokio::test]
async fn count_limits_how_many_dates_the_preview_returns() {
    // Arrange
    let t = sqlite().await;
    let app = TestApp::on(&t);

    // Act
    let dates = daily_preview(&app, 3).await;

    // Assert
    assert_eq!(
        dates,
        [
            "2030-01-02T10:00:00+00:00",
            "2030-01-03T10:00:00+00:00",
            "2030-01-04T10:00:00+00:00",
        ]
    );
    t.cleanup().await;
}

#[tokio::test]
async fn the_preview_is_what_upcoming_returns_once_the_task_is_saved() {
    // Arrange: a rule whose dates depend on the zone and on the month lengths.
    let t = sqlite().await;
    let app = TestApp::on(&t);
    let recurrence =
        json!({ "rule": "FREQ=MONTHLY;BYMONTHDAY=-1", "timezone": "America/New_York" });
    let due_at = "2030-01-31T17:30:00.123456-05:00";

    // Act
    let previewed = preview(&app, ALICE, recurrence.clone(), due_at).await;
    let task = app
        .create_task(
            ALICE,
            json!({ "title": "Pay rent", "dueAt": due_at, "recurrence": recurrence }),
        )
        .await;
    let saved = app
        .ok(
            ALICE,
            "query($id: ID!) { task(id: $id) { recurrence { upcoming(count: 5) } } }",
            json!({ "id": task["id"] }),
        )
        .await;

    // Assert
    assert_eq!(previewed.len(), 5);
    assert_eq!(previewed[0], "2030-02-28T22:30:00+00:00");
    assert_eq!(previewed, dates(&saved["task"]["recurrence"]["upcoming"]));
    t.cleanup().await;
}

#[tokio::test]
async fn the_zone_defaults_to_the_callers_settings_and_keeps_the_wall_clock_across_dst() {
    // Arrange: 09:00 in London on Friday 29 March 2030; the clocks go forward on Sunday 31st.
    let t = sqlite().await;
    let app = TestApp::on(&t);
    app.ok(
        ALICE,
        "mutation { updateSettings(input: { timezone: \"Europe/London\" }) { timezone } }",
        json!({}),
    )
    .await;
    let due_at = "2030-03-29T09:00:00Z";

    // Act
    let in_settings_zone = preview(&app, ALICE, json!({ "rule": "FREQ=DAILY" }), due_at).await;
    let in_explicit_utc = preview(
        &app,
        ALICE,
        json!({ "rule": "FREQ=DAILY", "timezone": "UTC" }),
        due_at,
    )
    .await;

    // Assert: 09:00 stays 09:00 London time, which is 08:00 UTC from 31 March on.
    assert_eq!(
        in_settings_zone,
        [
            "2030-03-30T09:00:00+00:00",
            "2030-03-31T08:00:00+00:00",
            "2030-04-01T08:00:00+00:00",
            "2030-04-02T08:00:00+00:00",
            "2030-04-03T08:00:00+00:00",
        ]
    );
    assert_eq!(
        in_explicit_utc,
        [
            "2030-03-30T09:00:00+00:00",
            "2030-03-31T09:00:00+00:00",
            "2030-04-01T09:00:00+00:00",
            "2030-04-02T09:00:00+00:00",
            "2030-04-03T09:00:00+00:00",
        ]
    );
    t.cleanup().await;
}

#[tokio::test]
async fn a_user_without_settings_previews_in_utc() {
    // Arrange
    let t = sqlite().await;
    let app = TestApp::on(&t);

    // Act
    let dates = preview(
        &app,
        ALICE,
        json!({ "rule": "FREQ=DAILY" }),
        "2030-03-29T09:00:00Z",
    )
    .await;

    // Assert
    assert_eq!(dates[1], "2030-03-31T09:00:00+00:00");
    assert_nothing_written(&app).await;
    t.cleanup().await;
}

// ---------------------------------------------------------------- refusals

#[tokio::test]
async fn a_bad_rule_or_zone_is_bad_user_input_naming_its_field_and_writes_nothing() {
    // Arrange
    let t = sqlite().await;
    let app = TestApp::on(&t);
    let cases = [
        // (recurrence, the message's field prefix, a part the message must quote)
        (
            json!({ "rule": "FREQ=SOMETIMES", "timezone": "UTC" }),
            "recurrence.rule: ",
            "",
        ),
        (
            // The due date starts the series, so a rule may not carry its own start.
            json!({ "rule": "DTSTART:20300101T090000Z\nRRULE:FREQ=DAILY", "timezone": "UTC" }),
            "recurrence.rule: ",
            "DTSTART",
        ),
        (
            json!({ "rule": "FREQ=DAILY", "timezone": "Mars/Olympus" }),
            "recurrence.timezone: ",
            "Mars/Olympus",
        ),
    ];

    for (recurrence, field, quoted) in cases {
        // Act
        let (code, message) =
            preview_error(&app, recurrence.clone(), "2030-01-01T10:00:00Z", None).await;

        // Assert
        assert_eq!(code, "BAD_USER_INPUT", "{recurrence}");
        assert!(message.starts_with(field), "{recurrence}: {message}");
        assert!(message.contains(quoted), "{recurrence}: {message}");
    }
    assert_nothing_written(&app).await;
    t.cleanup().await;
}

#[tokio::test]
async fn a_count_outside_one_to_fifty_is_bad_user_input() {
    // Arrange
    let t = sqlite().await;
    let app = TestApp::on(&t);
    let recurrence = json!({ "rule": "FREQ=DAILY", "timezone": "UTC" });

    for count in [0, 51, -1] {
        // Act
        let (code, message) = preview_error(
            &app,
            recurrence.clone(),
            "2030-01-01T10:00:00Z",
            Some(count),
        )
        .await;

        // Assert
        assert_eq!(code, "BAD_USER_INPUT", "count {count}");
        assert_eq!(message, "count must be between 1 and 50", "count {count}");
    }
    t.cleanup().await;
}

#[tokio::test]
async fn fifty_dates_is_the_most_a_preview_gives() {
    // Arrange
    let t = sqlite().await;
    let app = TestApp::on(&t);

    // Act
    let dates = daily_preview(&app, 50).await;

    // Assert
    assert_eq!(dates.len(), 50);
    assert_eq!(dates[49], "2030-02-20T10:00:00+00:00");
    t.cleanup().await;
}

#[tokio::test]
async fn an_unauthenticated_preview_is_refused() {
    // Arrange: a request without the caller's data, as the HTTP layer never sends one.
    let t = sqlite().await;
    let app = TestApp::on(&t);
    let request = async_graphql::Request::new(PREVIEW_DEFAULT_COUNT).variables(
        async_graphql::Variables::from_json(json!({
            "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC" },
            "dueAt": "2030-01-01T10:00:00Z",
        })),
    );

    // Act
    let response = graphql::schema::execute(&app.schema, request).await;

    // Assert
    let err = response.errors.first().expect("an error");
    let code = err
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .map(|v| v.clone().into_json().unwrap());
    assert_eq!(code, Some(json!("UNAUTHENTICATED")));
    assert_eq!(response.data.into_json().unwrap(), Value::Null);
    t.cleanup().await;
}
