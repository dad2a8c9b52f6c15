//! Stale expected versions, other users' tasks and deleted tasks: conflicts and not-found.

use super::*;

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
        assert!(message.starts_with("input.expectedVersion: "), "{message}");
        assert!(message.contains("version 2"), "{message}");
        // Programs place the error by `extensions.field`, as for bad input.
        let inline = format!(
            r#"mutation {{ updateTask(id: "{}", input: {{ title: "Draft 4", expectedVersion: 1 }}) {{ id }} }}"#,
            id.as_str().unwrap()
        );
        assert_eq!(
            app.error_field(ALICE, &inline).await,
            (
                "CONFLICT".to_owned(),
                Some("input.expectedVersion".to_owned())
            )
        );
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
