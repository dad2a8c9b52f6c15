//! Task history through `schema.execute`, on SQLite and PostgreSQL: `Task.history` (every
//! version, newest first, with what changed), `task(id, asOf)`, `deletedTasks` and
//! `restoreTask`; paging and bad arguments; concurrent updates (no gaps, no duplicates); and
//! another user's ids, which read exactly like missing ones.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::TestApp;

const ALICE: &str = "alice";
const BOB: &str = "bob";

const HISTORY: &str = "query($id: ID!, $first: Int, $after: String) { task(id: $id) { \
    history(first: $first, after: $after) { nodes { version kind at causedBy \
    changes { field old new } task { title tags { name } } } \
    pageInfo { hasNextPage hasPreviousPage endCursor } } } }";

const AS_OF: &str = "query($id: ID!, $at: DateTime) { task(id: $id, asOf: $at) { \
    title completed version tags { name } reminders { minutesBeforeDue status } } }";

const DELETED: &str = "query($first: Int, $after: String) { deletedTasks(first: $first, after: $after) { \
    nodes { deletedAt task { id title version } } pageInfo { hasNextPage endCursor } } }";

const RESTORE: &str = "mutation($id: ID!) { restoreTask(id: $id) { id title version tags { name } reminders { minutesBeforeDue status } } }";

async fn history(app: &TestApp, user: &str, id: &Value) -> Vec<Value> {
    let data = app
        .ok(user, HISTORY, json!({ "id": id, "first": 100 }))
        .await;
    data["task"]["history"]["nodes"].as_array().unwrap().clone()
}

fn kinds(nodes: &[Value]) -> Vec<(i64, String)> {
    nodes
        .iter()
        .map(|n| {
            (
                n["version"].as_i64().unwrap(),
                n["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn mutate(app: &TestApp, query: &str, variables: Value) -> Value {
    app.ok(ALICE, query, variables).await
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

on_both_databases!(
    every_change_is_a_version_newest_first_with_what_it_changed,
    |t| {
        let app = TestApp::on(t);
        let created = app
            .create_task(ALICE, json!({ "title": "Pay rent", "tags": ["home"] }))
            .await;
        let id = created["id"].clone();
        mutate(
            &app,
            "mutation($id: ID!) { updateTask(id: $id, input: { title: \"Pay the rent\", priority: HIGH }) { id } }",
            json!({ "id": id }),
        )
        .await;
        mutate(
            &app,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        mutate(
            &app,
            "mutation($id: ID!) { reopenTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        mutate(
            &app,
            "mutation($id: ID!) { tagTask(taskId: $id, tags: [\"money\"]) { id } }",
            json!({ "id": id }),
        )
        .await;

        let nodes = history(&app, ALICE, &id).await;
        assert_eq!(
            kinds(&nodes),
            [
                (5, "UPDATED".to_owned()),
                (4, "REOPENED".to_owned()),
                (3, "COMPLETED".to_owned()),
                (2, "UPDATED".to_owned()),
                (1, "CREATED".to_owned()),
            ]
        );
        let tagged = &nodes[0]["changes"];
        assert_eq!(
            tagged,
            &json!([{ "field": "tags", "old": ["home"], "new": ["home", "money"] }])
        );
        let renamed = &nodes[3]["changes"];
        assert_eq!(
            renamed,
            &json!([
                { "field": "title", "old": "Pay rent", "new": "Pay the rent" },
                { "field": "priority", "old": "NONE", "new": "HIGH" }
            ])
        );
        let completed: Vec<&str> = nodes[2]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(completed, ["completed", "completedAt"]);
        let first: Vec<(&str, &Value)> = nodes[4]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["field"].as_str().unwrap(), &c["old"]))
            .collect();
        assert_eq!(
            first,
            [("title", &Value::Null), ("tags", &Value::Null)],
            "a first version lists what it set, from nothing"
        );
        assert_eq!(
            nodes[4]["task"]["title"], "Pay rent",
            "each version carries the task as it was"
        );
        assert!(nodes.iter().all(|n| n["causedBy"].is_null()));

        // Paging: two at a time, then the rest after the cursor.
        let page = app
            .ok(ALICE, HISTORY, json!({ "id": id, "first": 2 }))
            .await;
        let info = &page["task"]["history"]["pageInfo"];
        assert_eq!(info["hasNextPage"], true);
        assert_eq!(info["hasPreviousPage"], false);
        let rest = app
            .ok(
                ALICE,
                HISTORY,
                json!({ "id": id, "first": 10, "after": info["endCursor"] }),
            )
            .await;
        let rest = rest["task"]["history"]["nodes"].as_array().unwrap().clone();
        assert_eq!(kinds(&rest)[0], (3, "COMPLETED".to_owned()));
        assert_eq!(rest.len(), 3);
        assert_eq!(
            rest[0]["changes"], nodes[2]["changes"],
            "a version's changes do not depend on the page it is on"
        );
    }
);

on_both_databases!(
    bad_history_arguments_name_the_argument_and_another_users_task_has_no_history,
    |t| {
        let app = TestApp::on(t);
        let id = app.create_task(ALICE, json!({ "title": "Mine" })).await["id"].clone();
        for (variables, field) in [
            (json!({ "id": id, "first": 0 }), "first"),
            (json!({ "id": id, "first": 101 }), "first"),
            (json!({ "id": id, "after": "not-a-cursor" }), "after"),
            (json!({ "id": id, "after": "eyJ2IjoibjEifQ" }), "after"),
        ] {
            let (code, message) = app.err(ALICE, HISTORY, variables.clone()).await;
            assert_eq!(code, "BAD_USER_INPUT", "{variables}");
            assert!(message.starts_with(field), "{variables}: {message}");
        }
        let theirs = app.ok(BOB, HISTORY, json!({ "id": id })).await;
        assert_eq!(theirs["task"], Value::Null);
        let as_of = app.ok(BOB, AS_OF, json!({ "id": id, "at": now() })).await;
        assert_eq!(
            as_of["task"],
            Value::Null,
            "another user's task reads as missing"
        );
    }
);

on_both_databases!(
    a_task_as_of_an_instant_is_the_version_then_also_after_deletion,
    |t| {
        let app = TestApp::on(t);
        let before_creation = now();
        let id = app
            .create_task(
                ALICE,
                json!({ "title": "Draft", "tags": ["work"], "dueAt": "2030-01-10T09:00:00Z",
                        "reminders": [{ "minutesBeforeDue": 30 }] }),
            )
            .await["id"]
            .clone();
        let after_creation = now();
        mutate(
            &app,
            "mutation($id: ID!) { updateTask(id: $id, input: { title: \"Final\", tags: [] }) { id } }",
            json!({ "id": id }),
        )
        .await;
        let after_update = now();
        mutate(
            &app,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        let after_deletion = now();

        let at = |at: &str| app.ok(ALICE, AS_OF, json!({ "id": id, "at": at }));
        assert_eq!(at(&before_creation).await["task"], Value::Null);
        assert_eq!(
            at(&after_creation).await["task"],
            json!({ "title": "Draft", "completed": false, "version": 1, "tags": [{ "name": "work" }],
                    "reminders": [{ "minutesBeforeDue": 30, "status": "PENDING" }] })
        );
        let updated = at(&after_update).await;
        assert_eq!(updated["task"]["title"], "Final");
        assert_eq!(updated["task"]["tags"], json!([]));
        assert_eq!(
            at(&after_deletion).await["task"],
            Value::Null,
            "deleted then"
        );
        let current = app.ok(ALICE, AS_OF, json!({ "id": id })).await;
        assert_eq!(current["task"], Value::Null, "and deleted now");
    }
);

on_both_databases!(
    a_deleted_task_is_listed_and_restored_as_a_new_version_with_its_tags_and_reminders,
    |t| {
        let app = TestApp::on(t);
        let kept = app.create_task(ALICE, json!({ "title": "Kept" })).await;
        let id = app
            .create_task(
                ALICE,
                json!({ "title": "Oops", "tags": ["home", "money"], "dueAt": "2030-01-10T09:00:00Z",
                        "reminders": [{ "minutesBeforeDue": 15 }] }),
            )
            .await["id"]
            .clone();
        mutate(
            &app,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        // A tag deleted meanwhile comes back with the task.
        let home = app.ok(ALICE, "{ tags { id name } }", json!({})).await["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "home")
            .unwrap()["id"]
            .clone();
        mutate(
            &app,
            "mutation($id: ID!) { deleteTag(id: $id) }",
            json!({ "id": home }),
        )
        .await;

        let deleted = app.ok(ALICE, DELETED, json!({})).await;
        let nodes = deleted["deletedTasks"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 1, "{deleted}");
        assert_eq!(nodes[0]["task"]["id"], id);
        assert_eq!(nodes[0]["task"]["title"], "Oops");
        assert_eq!(nodes[0]["task"]["version"], 2);
        assert_eq!(
            app.ok(BOB, DELETED, json!({})).await["deletedTasks"]["nodes"],
            json!([])
        );

        let outbox_before = app.count("outbox").await;
        let restored = mutate(&app, RESTORE, json!({ "id": id })).await["restoreTask"].clone();
        assert_eq!(
            restored,
            json!({ "id": id, "title": "Oops", "version": 3,
                    "tags": [{ "name": "home" }, { "name": "money" }],
                    "reminders": [{ "minutesBeforeDue": 15, "status": "PENDING" }] })
        );
        assert_eq!(
            app.count("outbox").await,
            outbox_before + 2,
            "announced like a created task (task-events and task-updates)"
        );
        assert_eq!(
            kinds(&history(&app, ALICE, &id).await),
            [
                (3, "RESTORED".to_owned()),
                (2, "DELETED".to_owned()),
                (1, "CREATED".to_owned()),
            ]
        );
        assert_eq!(
            app.ok(ALICE, DELETED, json!({})).await["deletedTasks"]["nodes"],
            json!([])
        );

        // Restoring what is not deleted, what never existed, or another user's task.
        let (code, message) = app.err(ALICE, RESTORE, json!({ "id": id })).await;
        assert_eq!(code, "CONFLICT", "{message}");
        let (code, _) = app.err(ALICE, RESTORE, json!({ "id": kept["id"] })).await;
        assert_eq!(code, "CONFLICT");
        mutate(
            &app,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        let (code, _) = app.err(BOB, RESTORE, json!({ "id": id })).await;
        assert_eq!(code, "NOT_FOUND", "another user's task reads as missing");
        let (code, _) = app
            .err(
                ALICE,
                RESTORE,
                json!({ "id": uuid::Uuid::now_v7().to_string() }),
            )
            .await;
        assert_eq!(code, "NOT_FOUND");
        let (code, message) = app.err(ALICE, RESTORE, json!({ "id": "nope" })).await;
        assert_eq!(
            code, "NOT_FOUND",
            "a malformed id is a missing task: {message}"
        );
    }
);

on_both_databases!(deleted_tasks_page_newest_deletion_first, |t| {
    let app = TestApp::on(t);
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = app
            .create_task(ALICE, json!({ "title": format!("t{n}") }))
            .await["id"]
            .clone();
        mutate(
            &app,
            "mutation($id: ID!) { deleteTask(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        ids.push(id);
    }
    let first = app.ok(ALICE, DELETED, json!({ "first": 2 })).await;
    let titles: Vec<&str> = first["deletedTasks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["task"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["t2", "t1"]);
    let info = &first["deletedTasks"]["pageInfo"];
    assert_eq!(info["hasNextPage"], true);
    let rest = app
        .ok(
            ALICE,
            DELETED,
            json!({ "first": 2, "after": info["endCursor"] }),
        )
        .await;
    assert_eq!(rest["deletedTasks"]["nodes"][0]["task"]["title"], "t0");
    assert_eq!(rest["deletedTasks"]["pageInfo"]["hasNextPage"], false);
    let (code, _) = app.err(ALICE, DELETED, json!({ "after": "bad" })).await;
    assert_eq!(code, "BAD_USER_INPUT");
});

on_both_databases!(
    concurrent_updates_record_every_version_once_without_gaps,
    |t| {
        let app = TestApp::on(t);
        let id = app.create_task(ALICE, json!({ "title": "Busy" })).await["id"].clone();
        let updates = (0..12).map(|n| {
            let app = &app;
            let id = id.clone();
            async move {
                app.ok(
                    ALICE,
                    "mutation($id: ID!, $title: String!) { updateTask(id: $id, input: { title: $title }) { version } }",
                    json!({ "id": id, "title": format!("Busy {n}") }),
                )
                .await
            }
        });
        futures_util::future::join_all(updates).await;
        let versions: Vec<i64> = history(&app, ALICE, &id)
            .await
            .iter()
            .map(|n| n["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, (1..=13).rev().collect::<Vec<i64>>());
        assert_eq!(app.count("task_versions").await, 13);
    }
);
