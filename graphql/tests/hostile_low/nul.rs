//! NUL characters (U+0000) in free text: PostgreSQL cannot store or compare one, so every
//! input that reaches a text column or a query parameter refuses it with `BAD_USER_INPUT`
//! naming the field, on both databases, before anything is written.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

const NUL_MESSAGE: &str = "must not contain a NUL character";

/// A user with one tagged task (so that updates have something to change); returns the task
/// id and the tag id.
async fn seeded(app: &TestApp) -> (Value, Value) {
    let task = app
        .create_task(ALICE, json!({ "title": "Seed", "tags": ["home"] }))
        .await;
    let tags = app.ok(ALICE, "{ tags { id } }", json!({})).await;
    (task["id"].clone(), tags["tags"][0]["id"].clone())
}

on_both_databases!(
    nul_characters_in_task_tag_and_settings_text_are_refused_naming_the_field,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        let (task_id, tag_id) = seeded(&app).await;
        let before = row_counts(&app).await;
        let update_task = "mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }";
        let create_tag =
            "mutation($n: String!, $c: String) { createTag(name: $n, color: $c) { id } }";
        let update_tag = "mutation($id: ID!, $n: String) { updateTag(id: $id, name: $n) { id } }";
        let cases = [
            (
                CREATE_TASK,
                json!({ "input": { "title": "a\u{0}b" } }),
                "input.title",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "ok", "description": "\u{0}" } }),
                "input.description",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "ok", "tags": ["fine", "bad\u{0}"] } }),
                "input.tags[1]",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "ok", "dueAt": "2030-01-01T09:00:00Z",
                    "recurrence": { "rule": "FREQ=DAILY\u{0}" } } }),
                "input.recurrence.rule",
            ),
            (
                CREATE_TASK,
                json!({ "input": { "title": "ok", "dueAt": "2030-01-01T09:00:00Z",
                    "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC\u{0}" } } }),
                "input.recurrence.timezone",
            ),
            (
                update_task,
                json!({ "id": task_id, "input": { "title": "\u{0}" } }),
                "input.title",
            ),
            (
                update_task,
                json!({ "id": task_id, "input": { "tags": ["\u{0}home"] } }),
                "input.tags[0]",
            ),
            (create_tag, json!({ "n": "work\u{0}" }), "name"),
            (
                create_tag,
                json!({ "n": "work", "c": "#fff\u{0}" }),
                "color",
            ),
            (update_tag, json!({ "id": tag_id, "n": "\u{0}" }), "name"),
            (
                UPDATE_SETTINGS,
                json!({ "i": { "webhookSecret": format!("{}\u{0}", "s".repeat(20)) } }),
                "input.webhookSecret",
            ),
            (
                UPDATE_SETTINGS,
                json!({ "i": { "timezone": "Europe/London\u{0}" } }),
                "input.timezone",
            ),
            (
                UPDATE_SETTINGS,
                json!({ "i": { "webhookUrl": "https://hooks.example.com/\u{0}" } }),
                "input.webhookUrl",
            ),
        ];

        for (query, variables, field) in cases {
            // Act
            let error = app.err(ALICE, query, variables.clone()).await;

            // Assert
            assert_bad_input(error, field);
        }
        assert_eq!(row_counts(&app).await, before, "nothing may be written");
        let me = app
            .ok(ALICE, "{ me { timezone webhookUrl } }", json!({}))
            .await;
        assert_eq!(me["me"], json!({ "timezone": "UTC", "webhookUrl": null }));
    }
);

on_both_databases!(
    nul_characters_in_text_fields_are_refused_with_a_sentence_naming_the_field,
    |t| {
        // Arrange
        let app = TestApp::on(t);

        // Act
        let (code, message) = app
            .err(
                ALICE,
                CREATE_TASK,
                json!({ "input": { "title": "a\u{0}b" } }),
            )
            .await;

        // Assert
        assert_eq!(code, "BAD_USER_INPUT");
        assert_eq!(message, format!("input.title {NUL_MESSAGE}"));
        assert_eq!(app.count("users").await, 0);
    }
);

on_both_databases!(
    nul_characters_in_list_arguments_are_refused_and_ids_with_one_are_not_found,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        seeded(&app).await;
        let list = "query($s: String, $f: TaskFilter, $a: String) { tasks(search: $s, filter: $f, after: $a, first: 5) { nodes { id } } }";
        let preview = "query($r: RecurrenceInput!) { previewRecurrence(recurrence: $r, dueAt: \"2030-01-01T09:00:00Z\") }";

        // Act and Assert: list arguments.
        assert_bad_input(
            app.err(ALICE, list, json!({ "s": "milk\u{0}eggs" })).await,
            &format!("search {NUL_MESSAGE}"),
        );
        for (list_name, field) in [("any", "any"), ("all", "all"), ("none", "none")] {
            let filter = json!({ "tags": { list_name: ["home", "x\u{0}"] } });
            assert_bad_input(
                app.err(ALICE, list, json!({ "f": filter })).await,
                &format!("filter.tags.{field}[1] {NUL_MESSAGE}"),
            );
        }
        assert_bad_input(app.err(ALICE, list, json!({ "a": "\u{0}" })).await, "after");
        assert_bad_input(
            app.err(
                ALICE,
                preview,
                json!({ "r": { "rule": "FREQ=DAILY", "timezone": "UTC\u{0}" } }),
            )
            .await,
            &format!("recurrence.timezone {NUL_MESSAGE}"),
        );
        assert_bad_input(
            app.err(ALICE, preview, json!({ "r": { "rule": "\u{0}" } }))
                .await,
            &format!("recurrence.rule {NUL_MESSAGE}"),
        );

        // Act and Assert: ids are UUIDs, so one with a NUL is simply not found.
        let found = app
            .ok(
                ALICE,
                "query($id: ID!) { task(id: $id) { id } }",
                json!({ "id": "\u{0}" }),
            )
            .await;
        assert_eq!(found["task"], Value::Null);
        let (code, _) = app
            .err(
                ALICE,
                "mutation($id: ID!) { markNotificationRead(id: $id) { id } }",
                json!({ "id": "a\u{0}" }),
            )
            .await;
        assert_eq!(code, "NOT_FOUND");
        let (code, _) = app
            .err(
                ALICE,
                "query($a: String) { notifications(after: $a) { nodes { id } } }",
                json!({ "a": "\u{0}" }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
    }
);

on_both_databases!(a_cursor_forged_with_a_nul_in_its_title_is_refused, |t| {
    // Arrange: a real title-sorted cursor, with its title value changed to hold a NUL.
    let app = TestApp::on(t);
    app.create_task(ALICE, json!({ "title": "A" })).await;
    app.create_task(ALICE, json!({ "title": "B" })).await;
    let query = "query($a: String) { tasks(first: 1, after: $a, sort: [{field: TITLE}]) { pageInfo { endCursor } nodes { title } } }";
    let page = app.ok(ALICE, query, json!({})).await;
    let cursor = page["tasks"]["pageInfo"]["endCursor"].as_str().unwrap();
    let mut body: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cursor).unwrap()).unwrap();
    body["k"][0] = json!("A\u{0}");
    let forged = URL_SAFE_NO_PAD.encode(body.to_string());

    // Act
    let error = app.err(ALICE, query, json!({ "a": forged })).await;

    // Assert
    assert_bad_input(error, "after");
});
