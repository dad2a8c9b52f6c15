//! `taskChanged` through `schema.execute_stream`: owner scoping, filters, deletions, lagging
//! and the socket cap.

use super::*;

#[tokio::test]
async fn a_user_only_receives_changes_to_their_own_tasks() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut bob = app.subscribe("bob", TASK_CHANGED).await;

    // Act
    app.hub.publish(change(
        TaskChangeKind::Created,
        snapshot("alice", "Alice's secret", &[]),
    ));
    let bobs = snapshot("bob", "Bob's task", &[]);
    app.hub
        .publish(change(TaskChangeKind::Created, bobs.clone()));

    // Assert: the first change Bob sees is his own.
    let first = next(&mut bob).await;
    assert_eq!(
        first["data"]["taskChanged"],
        json!({ "kind": "CREATED", "taskId": bobs.id.to_string(), "task": { "title": "Bob's task" } })
    );
}

#[tokio::test]
async fn a_filter_only_delivers_changes_whose_task_matches() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut work = app
        .subscribe(
            "alice",
            r#"subscription { taskChanged(filter: { tags: { any: ["work"] } }) { kind task { title } } }"#,
        )
        .await;

    // Act
    app.hub.publish(change(
        TaskChangeKind::Created,
        snapshot("alice", "Buy milk", &["home"]),
    ));
    app.hub.publish(change(
        TaskChangeKind::Updated,
        snapshot("alice", "Write report", &["Work"]),
    ));

    // Assert
    let first = next(&mut work).await;
    assert_eq!(
        first["data"]["taskChanged"],
        json!({ "kind": "UPDATED", "task": { "title": "Write report" } })
    );
}

#[tokio::test]
async fn a_deletion_is_delivered_with_a_null_task() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut rx = app.subscribe("alice", TASK_CHANGED).await;
    let task = snapshot("alice", "Gone soon", &[]);

    // Act
    app.hub
        .publish(change(TaskChangeKind::Deleted, task.clone()));

    // Assert
    let first = next(&mut rx).await;
    assert_eq!(
        first["data"]["taskChanged"],
        json!({ "kind": "DELETED", "taskId": task.id.to_string(), "task": null })
    );
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_gets_an_error_and_its_stream_ends() {
    // Arrange: a hub that keeps two changes.
    let app = LiveApp::start(LiveHub::with_capacity(2)).await;
    let mut rx = app.subscribe("alice", TASK_CHANGED).await;

    // Act: five changes before the subscriber reads any.
    for i in 0..5 {
        app.hub.publish(change(
            TaskChangeKind::Created,
            snapshot("alice", &format!("task {i}"), &[]),
        ));
    }

    // Assert
    assert_lagged_and_ended(&mut rx).await;
}

#[tokio::test]
async fn a_socket_cannot_hold_more_subscriptions_than_its_cap() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let socket = SocketSubscriptions::new(1);
    let _first = app
        .subscribe_with("alice", TASK_CHANGED, Some(socket.clone()))
        .await;

    // Act
    let body = app.first_response("alice", TASK_CHANGED, socket).await;

    // Assert
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}
