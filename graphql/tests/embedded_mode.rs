//! Embedded mode end to end: the gateway's in-process subscribers pick completions up from the
//! outbox table, so a completed recurring task gets its next occurrence (and its reminder is
//! cancelled) with nothing else running.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::TestApp;

on_both_databases!(
    completing_a_recurring_task_in_embedded_mode_creates_its_next_occurrence,
    |t| {
        let app = TestApp::on(t);
        let shutdown = stream::lifecycle::CancellationToken::new();
        let subscribers = tokio::spawn(graphql::events::run_embedded_subscribers(
            t.db.clone(),
            subscribers::webhook::WebhookSettings::default(),
            shutdown.clone(),
        ));
        let due = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let task = app
        .create_task("alice", json!({ "title": "Water the plants", "dueAt": due, "tags": ["home"], "reminders": [{ "minutesBeforeDue": 30 }],
                                      "recurrence": { "rule": "FREQ=DAILY", "timezone": "Europe/Berlin" } }))
        .await;
        let id = task["id"].clone();
        app.ok(
            "alice",
            "mutation($id: ID!) { completeTask(id: $id) { completed } }",
            json!({ "id": id }),
        )
        .await;

        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let next = loop {
            let data = app
            .ok("alice", "query($id: ID!) { task(id: $id) { nextOccurrence { title completed seriesId tags { name } previousOccurrence { id } } } }", json!({ "id": id }))
            .await;
            let next = data["task"]["nextOccurrence"].clone();
            if next != Value::Null {
                break next;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no next occurrence within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(next["title"], "Water the plants");
        assert_eq!(next["completed"], false);
        assert_eq!(next["seriesId"], task["seriesId"]);
        assert_eq!(next["tags"], json!([{ "name": "home" }]));
        assert_eq!(next["previousOccurrence"]["id"], id);

        // The reminder subscriber cancels the completed occurrence's reminder.
        loop {
            let data = app
                .ok(
                    "alice",
                    "query($id: ID!) { task(id: $id) { reminders { status } } }",
                    json!({ "id": id }),
                )
                .await;
            if data["task"]["reminders"][0]["status"] == "CANCELLED" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "reminder not cancelled within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        shutdown.cancel();
        subscribers.await.unwrap().unwrap();
    }
);
