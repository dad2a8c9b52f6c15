//! Invalid task input and updates: the field is named and nothing is written.

use super::*;

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
