//! Query execution: batched loading of a page, query limits, and database failures.

use super::*;

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
