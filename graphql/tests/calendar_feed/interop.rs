//! A served feed against independent iCalendar code (`scripts/interop/ical_check.py`).

use crate::on_both_databases;
use serde_json::{Value, json};

use super::support::{TempDir, wait_until};
use super::{ALICE, BOB, FeedServer, uids};

/// How many dates of `Recurrence.upcoming` the check compares.
const UPCOMING: usize = 6;

/// Awkward text: every character TEXT escapes, a line break, and more than 75 octets of
/// two-byte characters, so that folding falls inside them.
const TITLE: &str = "Pay rent; call Bob, then relax \\o/ — Zoë's ünïcödé täsk, \
                     long enough to fold twice: ééééééééééééééééééééééééééééééééé";

on_both_databases!(a_served_feed_agrees_with_icalendar_and_dateutil, |t| {
    // Arrange: one-off and repeating tasks in zones with daylight saving (whole, half-hour
    // and 45-minute offsets), without it, and around their changes; reminders; tags.
    let server = FeedServer::start(t).await;
    server
        .create_task(
            ALICE,
            json!({
                "title": TITLE,
                "description": "Line one\nline two, with a comma; and a semicolon\\",
                "priority": "URGENT",
                "dueAt": "2030-02-03T04:05:06Z",
                "tags": ["home", "a,b", "c;d"],
                "reminders": [{ "minutesBeforeDue": 30 }, { "at": "2030-02-01T08:00:00Z" }]
            }),
        )
        .await;
    server
        .create_task(
            ALICE,
            json!({ "title": "Low", "priority": "LOW", "dueAt": "2030-02-04T00:00:00Z",
                    "reminders": [{ "minutesBeforeDue": 0 }] }),
        )
        .await;
    for (title, priority, due, rule, zone) in [
        (
            "Water",
            "HIGH",
            "2030-03-04T08:00:00Z",
            "FREQ=WEEKLY;BYDAY=MO,TH",
            "Europe/Berlin",
        ),
        (
            "Stand-up",
            "MEDIUM",
            "2030-11-01T13:30:00Z",
            "FREQ=DAILY;COUNT=4",
            "America/New_York",
        ),
        (
            "Rent",
            "NONE",
            "2030-08-31T22:30:00Z",
            "FREQ=MONTHLY;BYMONTHDAY=1",
            "Australia/Lord_Howe",
        ),
        (
            "Chatham",
            "LOW",
            "2030-09-20T20:00:00Z",
            "FREQ=WEEKLY;UNTIL=20301020T000000Z",
            "Pacific/Chatham",
        ),
        (
            "Kolkata",
            "NONE",
            "2030-01-10T03:30:00Z",
            "FREQ=DAILY;INTERVAL=2",
            "Asia/Kolkata",
        ),
        (
            "Hourly",
            "NONE",
            "2030-10-27T00:15:00Z",
            "FREQ=HOURLY;INTERVAL=1;BYHOUR=1,2,3",
            "Europe/Berlin",
        ),
    ] {
        server
            .create_task(
                ALICE,
                json!({
                    "title": title, "priority": priority, "dueAt": due,
                    "recurrence": { "rule": rule, "timezone": zone },
                    "reminders": [{ "minutesBeforeDue": 15 }]
                }),
            )
            .await;
    }
    // A later occurrence whose wall-clock time (02:30) falls in the gap of 31 March 2030 in
    // Berlin: its DUE is 02:30 local, which RFC 5545 reads as 01:30 UTC, and its COUNT is
    // what is left of the series. Made by completing the first; the recurrence subscriber
    // creates it.
    let first = server
        .create_task(
            ALICE,
            json!({
                "title": "Gap", "dueAt": "2030-03-30T01:30:00Z",
                "recurrence": { "rule": "FREQ=DAILY;COUNT=5", "timezone": "Europe/Berlin" }
            }),
        )
        .await;
    server
        .gql(
            ALICE,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": first["id"] }),
        )
        .await;
    let next = "query($id: ID!) { task(id: $id) { nextOccurrence { id dueAt } } }";
    wait_until(
        "the recurrence subscriber creates the successor",
        || async {
            let data = server.gql(ALICE, next, json!({ "id": first["id"] })).await;
            !data["task"]["nextOccurrence"].is_null()
        },
    )
    .await;
    let successor = server.gql(ALICE, next, json!({ "id": first["id"] })).await;
    assert_eq!(
        seconds(&successor["task"]["nextOccurrence"]["dueAt"]),
        "2030-03-31T01:30:00Z"
    );
    // Left out: undated, and another user's.
    server
        .create_task(ALICE, json!({ "title": "Someday" }))
        .await;
    server
        .create_task(
            BOB,
            json!({ "title": "Bob's", "dueAt": "2030-01-01T00:00:00Z" }),
        )
        .await;
    let name = "Home & work, all; of it \\ here";
    let (_, path) = server.create_feed(ALICE, name, json!(null)).await;

    // Act: the feed, and what the API says of the same tasks.
    let feed = server.feed_text(&path).await;
    let expected = expectations(&server, name).await;
    assert_eq!(
        uids(&feed).len(),
        expected["todos"].as_array().unwrap().len()
    );

    // Assert
    let outcome = run_check(&feed, &expected).await;
    println!("{outcome}");
    server.stop().await;
});

/// What the API says of Alice's open tasks with a due date, in the feed's order, in the form
/// `ical_check.py` reads.
async fn expectations(server: &FeedServer, name: &str) -> Value {
    let query = format!(
        "{{ tasks(filter: {{ completed: false, hasDueDate: true }}, \
           sort: [{{ field: DUE_AT }}], first: 100) {{ nodes {{ \
           id title description priority dueAt version updatedAt tags {{ name }} \
           reminders {{ minutesBeforeDue at status }} \
           recurrence {{ timezone upcoming(count: {UPCOMING}) }} }} }} }}"
    );
    let data = server.gql(ALICE, &query, json!({})).await;
    let todos: Vec<Value> = data["tasks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| {
            let priority = match task["priority"].as_str().unwrap() {
                "URGENT" => json!(1),
                "HIGH" => json!(3),
                "MEDIUM" => json!(5),
                "LOW" => json!(9),
                _ => Value::Null,
            };
            let alarms: Vec<Value> = task["reminders"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["status"] == "PENDING")
                .map(|r| match r["minutesBeforeDue"].as_i64() {
                    Some(minutes) => json!({ "minutesBeforeDue": minutes }),
                    None => json!({ "at": seconds(&r["at"]) }),
                })
                .collect();
            let recurrence = &task["recurrence"];
            json!({
                "uid": format!("{}@taskstream", task["id"].as_str().unwrap()),
                "summary": task["title"],
                "description": task["description"],
                "priority": priority,
                "categories": task["tags"].as_array().unwrap().iter()
                    .map(|t| t["name"].clone()).collect::<Vec<_>>(),
                "sequence": task["version"].as_i64().unwrap() - 1,
                "lastModified": seconds(&task["updatedAt"]),
                "dueAt": seconds(&task["dueAt"]),
                "zone": recurrence["timezone"],
                "upcoming": recurrence["upcoming"].as_array().map(|dates| {
                    dates.iter().map(seconds).collect::<Vec<_>>()
                }),
                "upcomingCount": UPCOMING,
                "alarms": alarms,
            })
        })
        .collect();
    json!({ "name": name, "todos": todos })
}

/// An RFC 3339 date-time from the API, in whole seconds (`2030-01-02T03:04:05Z`).
fn seconds(value: &Value) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap();
    t.with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Runs `scripts/interop/ical_check.py` on the feed and the expectations; panics with its
/// findings unless it agrees. Python reads zones from the tzdata package only.
async fn run_check(feed: &str, expected: &Value) -> String {
    let dir = TempDir::new();
    let feed_path = dir.0.join("feed.ics");
    let expected_path = dir.0.join("expected.json");
    std::fs::write(&feed_path, feed).unwrap();
    std::fs::write(&expected_path, serde_json::to_vec_pretty(expected).unwrap()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/interop/ical_check.py"
    );
    let output = tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new("python3")
            .arg(script)
            .arg(&feed_path)
            .arg(&expected_path)
            .env("PYTHONTZPATH", "")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output();
        drop(dir);
        output
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| {
        panic!(
            "cannot run python3 ({e}): the feed check needs python3 with icalendar 6.3.2, \
             python-dateutil 2.9.0.post0 and tzdata 2025.2; run scripts/test, which installs them"
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} disagrees with the API ({}):\n{stdout}\n{}\nthe feed:\n{feed}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
