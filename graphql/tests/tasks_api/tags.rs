//! Tags: case-insensitive uniqueness, counts, renames and deletes, and bad tag input.

use super::*;

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
    // The message names the argument (the wording is tested in tests/constraints.rs).
    assert!(message.starts_with("name "), "{message}");
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
