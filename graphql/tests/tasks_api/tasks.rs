//! Creating, changing, completing and reopening tasks, and the events each change writes.

use super::*;

on_both_databases!(
    creating_a_task_stores_every_field_and_writes_created_events,
    |t| {
        let app = TestApp::on(t);
        let task = app
        .create_task(
            ALICE,
            json!({
                "title": "  Water the plants ",
                "description": "Balcony first",
                "priority": "HIGH",
                "dueAt": "2030-03-02T09:00:00+01:00",
                "tags": ["Home", "home", "garden"],
                "recurrence": { "rule": "FREQ=WEEKLY;BYDAY=MO,WE", "timezone": "Europe/London" },
                "reminders": [{ "minutesBeforeDue": 30 }, { "at": "2030-03-01T12:00:00Z" }]
            }),
        )
        .await;
        assert_eq!(task["title"], "Water the plants");
        assert_eq!(task["priority"], "HIGH");
        assert_eq!(task["dueAt"], "2030-03-02T08:00:00+00:00");
        assert_eq!(task["version"], 1);
        assert_eq!(task["seriesId"], task["id"]);
        let tags: Vec<&str> = task["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["garden", "Home"]);
        assert_eq!(task["recurrence"]["rule"], "FREQ=WEEKLY;BYDAY=MO,WE");
        assert_eq!(task["recurrence"]["anchor"], "SCHEDULE");
        assert_eq!(task["reminders"][0]["fireAt"], "2030-03-02T07:30:00+00:00");
        assert_eq!(task["reminders"][1]["fireAt"], "2030-03-01T12:00:00+00:00");
        assert_eq!(task["reminders"][0]["status"], "PENDING");

        let rows = app.outbox().await;
        assert_eq!(rows.len(), 2);
        let id = task["id"].as_str().unwrap();
        assert_eq!(rows[0].topic, "task-events");
        assert_eq!(rows[1].topic, "task-updates");
        for row in &rows {
            assert_eq!(row.key, id);
            assert!(row.published_at.is_none());
            let ev: Value = serde_json::from_str(&row.payload).unwrap();
            assert_eq!(ev["specversion"], "1.0");
            assert_eq!(ev["subject"], id);
            assert_eq!(ev["aggregateversion"], 1);
            assert_eq!(ev["correlationid"], "test-request");
            let headers: Value = serde_json::from_str(&row.headers).unwrap();
            assert_eq!(headers["ce_id"], ev["id"]);
            assert_eq!(headers["ce_type"], ev["type"]);
        }
        let history: Value = serde_json::from_str(&rows[0].payload).unwrap();
        assert_eq!(history["type"], "taskstream.task.created");
        assert_eq!(history["data"]["kind"], "CREATED");
        assert_eq!(history["data"]["task"]["tags"], json!(["garden", "Home"]));
        assert_eq!(history["data"]["task"]["priority"], "HIGH");
        let state: Value = serde_json::from_str(&rows[1].payload).unwrap();
        assert_eq!(state["type"], "taskstream.task.state");
        assert_eq!(state["data"]["title"], "Water the plants");
    }
);

on_both_databases!(
    every_kind_of_change_writes_its_events_with_the_new_version,
    |t| {
        let app = TestApp::on(t);
        let task = app.create_task(ALICE, json!({ "title": "Report" })).await;
        let id = task["id"].as_str().unwrap().to_owned();
        app.ok(
            ALICE,
            &update_mutation(),
            json!({ "id": id, "input": { "title": "Quarterly report" } }),
        )
        .await;
        app.ok(
            ALICE,
            "mutation($id: ID!) { completeTask(id: $id) { completed completedAt version } }",
            json!({ "id": id }),
        )
        .await;
        app.ok(
            ALICE,
            "mutation($id: ID!) { reopenTask(id: $id) { completed completedAt version } }",
            json!({ "id": id }),
        )
        .await;
        app.ok(
            ALICE,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;

        let rows = app.outbox().await;
        let history: Vec<Value> = rows
            .iter()
            .filter(|r| r.topic == "task-events")
            .map(|r| serde_json::from_str(&r.payload).unwrap())
            .collect();
        let kinds: Vec<&str> = history
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "taskstream.task.created",
                "taskstream.task.updated",
                "taskstream.task.completed",
                "taskstream.task.reopened",
                "taskstream.task.deleted"
            ]
        );
        let versions: Vec<i64> = history
            .iter()
            .map(|e| e["aggregateversion"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, [1, 2, 3, 4, 5]);
        let updates: Vec<Value> = rows
            .iter()
            .filter(|r| r.topic == "task-updates")
            .map(|r| serde_json::from_str(&r.payload).unwrap())
            .collect();
        assert_eq!(updates.len(), 5);
        assert_eq!(
            updates[4]["data"],
            Value::Null,
            "a deletion is a tombstone on task-updates"
        );
        assert!(rows.iter().all(|r| r.key == id));
    }
);

on_both_databases!(
    completing_is_idempotent_and_reopening_clears_completed_at,
    |t| {
        let app = TestApp::on(t);
        let id = app.create_task(ALICE, json!({ "title": "Once" })).await["id"].clone();
        let q = "mutation($id: ID!) { completeTask(id: $id) { completed completedAt version } }";
        let first = app.ok(ALICE, q, json!({ "id": id })).await;
        let second = app.ok(ALICE, q, json!({ "id": id })).await;
        assert_eq!(first, second, "completing a completed task changes nothing");
        assert_eq!(first["completeTask"]["version"], 2);
        assert!(first["completeTask"]["completedAt"].is_string());
        let reopened = app
            .ok(
                ALICE,
                "mutation($id: ID!) { reopenTask(id: $id) { completed completedAt version } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            reopened["reopenTask"],
            json!({ "completed": false, "completedAt": null, "version": 3 })
        );
        assert_eq!(app.count("outbox").await, 6);
    }
);

on_both_databases!(update_distinguishes_absent_from_null, |t| {
    let app = TestApp::on(t);
    let task = app
        .create_task(ALICE, json!({
            "title": "Pay rent", "description": "by transfer", "priority": "URGENT",
            "dueAt": "2030-01-31T09:00:00Z", "tags": ["money"], "reminders": [{ "minutesBeforeDue": 60 }]
        }))
        .await;
    let id = task["id"].clone();
    let updated = app
        .ok(
            ALICE,
            &update_mutation(),
            json!({ "id": id, "input": { "description": null, "priority": null } }),
        )
        .await["updateTask"]
        .clone();
    assert_eq!(updated["title"], "Pay rent", "absent title unchanged");
    assert_eq!(updated["description"], "", "null description cleared");
    assert_eq!(updated["priority"], "NONE", "null priority cleared");
    assert_eq!(updated["dueAt"], "2030-01-31T09:00:00+00:00");
    assert_eq!(updated["tags"], json!([{ "name": "money", "color": null }]));
    assert_eq!(updated["version"], 2);

    let moved = app
        .ok(
            ALICE,
            &update_mutation(),
            json!({ "id": id, "input": { "dueAt": "2030-02-28T09:00:00Z" } }),
        )
        .await["updateTask"]
        .clone();
    assert_eq!(
        moved["reminders"][0]["fireAt"], "2030-02-28T08:00:00+00:00",
        "relative reminder follows the due date"
    );

    let cleared = app
        .ok(
            ALICE,
            &update_mutation(),
            json!({ "id": id, "input": { "dueAt": null, "tags": null, "reminders": null } }),
        )
        .await["updateTask"]
        .clone();
    assert_eq!(cleared["dueAt"], Value::Null);
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(cleared["reminders"], json!([]));
    assert_eq!(cleared["version"], 4);
});
