//! Task, tag and settings behaviour through `schema.execute`, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{TASK_FIELDS, TestApp};

const ALICE: &str = "alice";
const BOB: &str = "bob";

fn update_mutation() -> String {
    format!(
        "mutation($id: ID!, $input: UpdateTaskInput!) {{ updateTask(id: $id, input: $input) {{ {TASK_FIELDS} }} }}"
    )
}

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

on_both_databases!(
    a_stale_expected_version_is_a_conflict_and_writes_nothing,
    |t| {
        let app = TestApp::on(t);
        let id = app.create_task(ALICE, json!({ "title": "Draft" })).await["id"].clone();
        app.ok(
            ALICE,
            &update_mutation(),
            json!({ "id": id, "input": { "title": "Draft 2", "expectedVersion": 1 } }),
        )
        .await;
        let before = app.count("outbox").await;
        let (code, message) = app
            .err(
                ALICE,
                &update_mutation(),
                json!({ "id": id, "input": { "title": "Draft 3", "expectedVersion": 1 } }),
            )
            .await;
        assert_eq!(code, "CONFLICT");
        assert!(message.contains("version 2"), "{message}");
        assert_eq!(app.count("outbox").await, before);
        let title = app
            .ok(
                ALICE,
                "query($id: ID!) { task(id: $id) { title version } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(title["task"], json!({ "title": "Draft 2", "version": 2 }));
    }
);

on_both_databases!(another_users_task_behaves_like_a_missing_one, |t| {
    let app = TestApp::on(t);
    let id = app.create_task(ALICE, json!({ "title": "Private" })).await["id"].clone();
    let seen = app
        .ok(
            BOB,
            "query($id: ID!) { task(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(seen["task"], Value::Null);
    let missing = app
        .ok(
            BOB,
            "query($id: ID!) { task(id: $id) { id } }",
            json!({ "id": "0195f0a0-0000-7000-8000-000000000000" }),
        )
        .await;
    assert_eq!(missing["task"], Value::Null);
    for mutation in [
        "mutation($id: ID!) { completeTask(id: $id) { id } }",
        "mutation($id: ID!) { reopenTask(id: $id) { id } }",
        "mutation($id: ID!) { deleteTask(id: $id) }",
    ] {
        let (code, _) = app.err(BOB, mutation, json!({ "id": id })).await;
        assert_eq!(code, "NOT_FOUND", "{mutation}");
    }
    let (code, _) = app
        .err(
            BOB,
            &update_mutation(),
            json!({ "id": id, "input": { "title": "Mine" } }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .err(
            BOB,
            "mutation($id: ID!) { tagTask(taskId: $id, tags: [\"x\"]) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let data = app
        .ok(
            ALICE,
            "query($id: ID!) { task(id: $id) { title completed } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["task"],
        json!({ "title": "Private", "completed": false })
    );
});

on_both_databases!(an_update_of_a_deleted_task_is_not_found, |t| {
    let app = TestApp::on(t);
    let id = app
        .create_task(ALICE, json!({ "title": "Gone soon" }))
        .await["id"]
        .clone();
    app.ok(
        ALICE,
        "mutation($id: ID!) { deleteTask(id: $id) }",
        json!({ "id": id }),
    )
    .await;
    let (code, message) = app
        .err(
            ALICE,
            &update_mutation(),
            json!({ "id": id, "input": { "title": "Back" } }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert!(message.contains("task"), "{message}");
    let (code, _) = app
        .err(
            ALICE,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
});

on_both_databases!(invalid_task_input_names_the_field_and_writes_nothing, |t| {
    let app = TestApp::on(t);
    let create = format!(
        "mutation($input: CreateTaskInput!) {{ createTask(input: $input) {{ {TASK_FIELDS} }} }}"
    );
    let cases = [
        (json!({ "title": "   " }), "input.title"),
        (json!({ "title": "x".repeat(501) }), "input.title"),
        (
            json!({ "title": "ok", "description": "d".repeat(50_001) }),
            "input.description",
        ),
        (
            json!({ "title": "ok", "dueAt": "2030-01-01T00:00:00Z", "recurrence": { "rule": "FREQ=SOMETIMES" } }),
            "input.recurrence.rule",
        ),
        (
            json!({ "title": "ok", "dueAt": "2030-01-01T00:00:00Z", "recurrence": { "rule": "BANANA" } }),
            "input.recurrence.rule",
        ),
        (
            json!({ "title": "ok", "recurrence": { "rule": "FREQ=DAILY" } }),
            "input.dueAt",
        ),
        (
            json!({ "title": "ok", "dueAt": "2030-01-01T00:00:00Z", "recurrence": { "rule": "FREQ=DAILY", "timezone": "Mars/Olympus_Mons" } }),
            "input.recurrence.timezone",
        ),
        (
            json!({ "title": "ok", "reminders": [{ "minutesBeforeDue": 5, "at": "2030-01-01T00:00:00Z" }] }),
            "input.reminders[0]",
        ),
        (
            json!({ "title": "ok", "reminders": [{}] }),
            "input.reminders[0]",
        ),
        (
            json!({ "title": "ok", "reminders": [{ "minutesBeforeDue": -5 }] }),
            "input.reminders[0]",
        ),
        (
            json!({ "title": "ok", "tags": ["fine", ""] }),
            "input.tags[1]",
        ),
        (
            json!({ "title": "ok", "tags": ["t".repeat(65)] }),
            "input.tags[0]",
        ),
    ];
    for (input, field) in cases {
        let (code, message) = app.err(ALICE, &create, json!({ "input": input })).await;
        assert_eq!(code, "BAD_USER_INPUT", "{input}: {message}");
        assert!(
            message.contains(field),
            "{input}: message {message:?} should name {field}"
        );
    }
    let (code, _) = app
        .err(
            ALICE,
            &create,
            json!({ "input": { "title": "ok", "priority": "SUPREME" } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .err(
            ALICE,
            &create,
            json!({ "input": { "title": "ok", "dueAt": "next tuesday" } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    for table in ["tasks", "tags", "reminders", "outbox", "users"] {
        assert_eq!(app.count(table).await, 0, "{table} must stay empty");
    }
});

on_both_databases!(
    invalid_updates_are_rejected_before_anything_is_written,
    |t| {
        let app = TestApp::on(t);
        let id = app
        .create_task(ALICE, json!({ "title": "Standup", "dueAt": "2030-01-01T09:00:00Z", "recurrence": { "rule": "FREQ=DAILY" } }))
        .await["id"]
        .clone();
        let before = app.count("outbox").await;
        for (input, field) in [
            (json!({ "title": null }), "input.title"),
            (json!({ "title": "" }), "input.title"),
            (json!({ "dueAt": null }), "input.dueAt"),
            (
                json!({ "recurrence": { "rule": "FREQ=DAILY;INTERVAL=0" } }),
                "input.recurrence.rule",
            ),
            (json!({ "reminders": [{}] }), "input.reminders[0]"),
        ] {
            let (code, message) = app
                .err(
                    ALICE,
                    &update_mutation(),
                    json!({ "id": id, "input": input }),
                )
                .await;
            assert_eq!(code, "BAD_USER_INPUT", "{input}");
            assert!(message.contains(field), "{message:?} should name {field}");
        }
        assert_eq!(app.count("outbox").await, before);
        let (code, _) = app
            .err(
                ALICE,
                &update_mutation(),
                json!({ "id": "not-a-uuid", "input": { "title": "x" } }),
            )
            .await;
        assert_eq!(code, "NOT_FOUND");
    }
);

on_both_databases!(recurrence_previews_upcoming_dates_in_the_tasks_zone, |t| {
    let app = TestApp::on(t);
    let task = app
        .create_task(
            ALICE,
            json!({
                "title": "Gym", "dueAt": "2030-03-25T08:00:00Z",
                "recurrence": { "rule": "FREQ=WEEKLY;BYDAY=MO,WE", "timezone": "Europe/London" }
            }),
        )
        .await;
    let data = app
        .ok(
            ALICE,
            "query($id: ID!) { task(id: $id) { recurrence { upcoming(count: 3) } } }",
            json!({ "id": task["id"] }),
        )
        .await;
    // 2030-03-25 is a Monday; 08:00 UTC is 08:00 GMT there. Summer time starts on 2030-03-31.
    let upcoming = data["task"]["recurrence"]["upcoming"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(upcoming.len(), 3);
    assert_eq!(upcoming[0], "2030-03-27T08:00:00+00:00");
    assert_eq!(
        upcoming[1], "2030-04-01T07:00:00+00:00",
        "08:00 GMT wall clock becomes 07:00 UTC in summer time"
    );
    let (code, message) = app
        .err(
            ALICE,
            "query($id: ID!) { task(id: $id) { recurrence { upcoming(count: 51) } } }",
            json!({ "id": task["id"] }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("count"), "{message}");
});

on_both_databases!(recurrence_timezone_defaults_to_the_users_setting, |t| {
    let app = TestApp::on(t);
    app.ok(
        ALICE,
        "mutation { updateSettings(input: { timezone: \"America/New_York\" }) { timezone } }",
        json!({}),
    )
    .await;
    let task = app
        .create_task(ALICE, json!({ "title": "Standup", "dueAt": "2030-01-01T14:00:00Z", "recurrence": { "rule": "FREQ=DAILY", "anchor": "COMPLETION" } }))
        .await;
    assert_eq!(
        task["recurrence"],
        json!({ "rule": "FREQ=DAILY", "timezone": "America/New_York", "anchor": "COMPLETION" })
    );
});

on_both_databases!(tags_are_case_insensitive_unique_and_counted, |t| {
    let app = TestApp::on(t);
    let tag = app.ok(ALICE, "mutation { createTag(name: \"Work\", color: \"#1E90FF\") { id name color taskCount } }", json!({})).await;
    assert_eq!(tag["createTag"]["color"], "#1e90ff");
    let (code, message) = app
        .err(
            ALICE,
            "mutation { createTag(name: \"work\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("work"), "{message}");
    // Another user may use the same name.
    app.ok(
        BOB,
        "mutation { createTag(name: \"work\") { id } }",
        json!({}),
    )
    .await;

    let a = app
        .create_task(ALICE, json!({ "title": "A", "tags": ["WORK"] }))
        .await;
    app.create_task(ALICE, json!({ "title": "B", "tags": ["work", "urgent"] }))
        .await;
    assert_eq!(
        a["tags"],
        json!([{ "name": "Work", "color": "#1e90ff" }]),
        "existing tag reused, spelling kept"
    );
    let tags = app
        .ok(ALICE, "{ tags { name taskCount } }", json!({}))
        .await;
    assert_eq!(
        tags["tags"],
        json!([{ "name": "urgent", "taskCount": 1 }, { "name": "Work", "taskCount": 2 }])
    );

    let tagged = app.ok(ALICE, "mutation($id: ID!) { tagTask(taskId: $id, tags: [\"Urgent\", \"home\"]) { tags { name } version } }", json!({ "id": a["id"] })).await;
    assert_eq!(
        tagged["tagTask"]["tags"],
        json!([{ "name": "home" }, { "name": "urgent" }, { "name": "Work" }])
    );
    assert_eq!(tagged["tagTask"]["version"], 2);
    let same = app
        .ok(
            ALICE,
            "mutation($id: ID!) { tagTask(taskId: $id, tags: [\"HOME\"]) { version } }",
            json!({ "id": a["id"] }),
        )
        .await;
    assert_eq!(
        same["tagTask"]["version"], 2,
        "adding a tag the task has is no change"
    );
    let untagged = app.ok(ALICE, "mutation($id: ID!) { untagTask(taskId: $id, tags: [\"work\", \"nope\"]) { tags { name } version } }", json!({ "id": a["id"] })).await;
    assert_eq!(
        untagged["untagTask"]["tags"],
        json!([{ "name": "home" }, { "name": "urgent" }])
    );
    assert_eq!(untagged["untagTask"]["version"], 3);
});

on_both_databases!(renaming_or_deleting_a_tag_updates_its_tasks, |t| {
    let app = TestApp::on(t);
    let task = app
        .create_task(ALICE, json!({ "title": "A", "tags": ["errand"] }))
        .await;
    let tag_id = app.ok(ALICE, "{ tags { id } }", json!({})).await["tags"][0]["id"].clone();
    let renamed = app.ok(ALICE, "mutation($id: ID!) { updateTag(id: $id, name: \"Errands\", color: \"#abc\") { name color } }", json!({ "id": tag_id })).await;
    assert_eq!(
        renamed["updateTag"],
        json!({ "name": "Errands", "color": "#abc" })
    );
    let recoloured = app
        .ok(
            ALICE,
            "mutation($id: ID!) { updateTag(id: $id, color: null) { color } }",
            json!({ "id": tag_id }),
        )
        .await;
    assert_eq!(recoloured["updateTag"]["color"], Value::Null);
    let seen = app
        .ok(
            ALICE,
            "query($id: ID!) { task(id: $id) { tags { name } version } }",
            json!({ "id": task["id"] }),
        )
        .await;
    assert_eq!(
        seen["task"],
        json!({ "tags": [{ "name": "Errands" }], "version": 2 })
    );

    app.ok(
        ALICE,
        "mutation($id: ID!) { deleteTag(id: $id) }",
        json!({ "id": tag_id }),
    )
    .await;
    let seen = app
        .ok(
            ALICE,
            "query($id: ID!) { task(id: $id) { tags { name } version } }",
            json!({ "id": task["id"] }),
        )
        .await;
    assert_eq!(seen["task"], json!({ "tags": [], "version": 3 }));
    let last: Value = serde_json::from_str(&app.outbox().await.last().unwrap().payload).unwrap();
    assert_eq!(last["data"]["tags"], json!([]));
    let (code, _) = app
        .err(
            BOB,
            "mutation($id: ID!) { deleteTag(id: $id) }",
            json!({ "id": tag_id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
});

on_both_databases!(bad_tag_input_is_rejected, |t| {
    let app = TestApp::on(t);
    for (q, field) in [
        ("mutation { createTag(name: \"\") { id } }", "name"),
        (
            "mutation { createTag(name: \"ok\", color: \"blue\") { id } }",
            "color",
        ),
    ] {
        let (code, message) = app.err(ALICE, q, json!({})).await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert!(message.contains(field), "{message}");
    }
    assert_eq!(app.count("tags").await, 0);
});

on_both_databases!(
    settings_are_validated_and_the_secret_is_never_returned,
    |t| {
        let app = TestApp::on(t);
        let me = app
            .ok(ALICE, "{ me { id timezone webhookUrl } }", json!({}))
            .await;
        assert_eq!(
            me["me"],
            json!({ "id": "alice", "timezone": "UTC", "webhookUrl": null })
        );
        let updated = app
        .ok(ALICE, "mutation($i: SettingsInput!) { updateSettings(input: $i) { timezone webhookUrl } }",
            json!({ "i": { "timezone": "Pacific/Auckland", "webhookUrl": "https://hooks.example.com/t", "webhookSecret": "0123456789abcdef" } }))
        .await;
        assert_eq!(
            updated["updateSettings"],
            json!({ "timezone": "Pacific/Auckland", "webhookUrl": "https://hooks.example.com/t" })
        );
        for (input, field) in [
            (json!({ "timezone": "Atlantis/Capital" }), "input.timezone"),
            (json!({ "timezone": null }), "input.timezone"),
            (
                json!({ "webhookUrl": "ftp://example.com/x" }),
                "input.webhookUrl",
            ),
            // The SSRF guard: private, loopback and link-local targets are refused.
            (
                json!({ "webhookUrl": "http://127.0.0.1:9000/hook" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "http://169.254.169.254/latest/meta-data" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "http://localhost/hook" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "http://[fd00::1]/hook" }),
                "input.webhookUrl",
            ),
            (json!({ "webhookSecret": "short" }), "input.webhookSecret"),
        ] {
            let (code, message) = app
                .err(
                    ALICE,
                    "mutation($i: SettingsInput!) { updateSettings(input: $i) { id } }",
                    json!({ "i": input }),
                )
                .await;
            assert_eq!(code, "BAD_USER_INPUT");
            assert!(message.contains(field), "{message}");
        }
        let me = app.ok(ALICE, "{ me { timezone } }", json!({})).await;
        assert_eq!(me["me"]["timezone"], "Pacific/Auckland");
    }
);

on_both_databases!(a_page_of_tasks_loads_tags_and_reminders_in_batches, |t| {
    let app = TestApp::on(t);
    for i in 0..5 {
        app.create_task(ALICE, json!({ "title": format!("T{i}"), "tags": [format!("t{i}"), "all"], "reminders": [{ "at": "2030-01-01T00:00:00Z" }] })).await;
    }
    let data = app
        .ok(ALICE, "{ tasks(first: 10) { totalCount nodes { title tags { name taskCount } reminders { at } } } }", json!({}))
        .await;
    let nodes = data["tasks"]["nodes"].as_array().unwrap();
    assert_eq!(data["tasks"]["totalCount"], 5);
    assert_eq!(nodes.len(), 5);
    for n in nodes {
        assert_eq!(n["tags"].as_array().unwrap().len(), 2);
        assert_eq!(n["tags"][0], json!({ "name": "all", "taskCount": 5 }));
        assert_eq!(n["reminders"].as_array().unwrap().len(), 1);
    }
});

on_both_databases!(queries_over_the_limits_are_rejected, |t| {
    let app = TestApp::on(t);
    let mut deep = String::from("id");
    for _ in 0..12 {
        deep = format!("nextOccurrence {{ {deep} }}");
    }
    let (code, message) = app
        .err(
            ALICE,
            &format!("{{ tasks {{ nodes {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.to_lowercase().contains("nested") || message.to_lowercase().contains("depth"),
        "{message}"
    );
    let fields = "id title description priority completed dueAt version createdAt updatedAt tags { id name color taskCount } reminders { id at fireAt status } recurrence { rule timezone anchor }";
    let (code, message) = app.err(ALICE, &format!("{{ a: tasks(first: 100) {{ nodes {{ {fields} }} }} b: tasks(first: 100) {{ nodes {{ {fields} }} }} c: tasks(first: 100) {{ nodes {{ {fields} }} }} }}"), json!({})).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.to_lowercase().contains("complex"), "{message}");
});

#[tokio::test]
async fn a_database_failure_is_internal_and_reveals_nothing() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let app = TestApp::on(&t);
    t.db.clone().close().await.unwrap();
    let (code, message) = app
        .err(ALICE, "{ tasks { nodes { id } } }", json!({}))
        .await;
    assert_eq!(code, "INTERNAL");
    assert_eq!(message, "internal error");
}
