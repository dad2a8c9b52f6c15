//! `notificationReceived` through `schema.execute_stream`: owner scoping, lagging and the
//! socket cap.

use super::*;

const NOTIFICATION_RECEIVED: &str =
    "subscription { notificationReceived { id kind title body readAt dueAt remindAt } }";

fn notification(owner: &str, title: &str) -> LiveNotification {
    LiveNotification::from_data(stream::notification_events::NotificationData {
        id: uuid::Uuid::new_v4(),
        owner_id: owner.into(),
        task_id: None,
        kind: entities::notification::NotificationKind::ReminderDue,
        title: title.into(),
        body: "Due at 2030-01-07T09:00:00Z".into(),
        event_id: uuid::Uuid::new_v4(),
        created_at: Utc::now(),
        read_at: None,
        due_at: Some("2030-01-07T09:00:00Z".parse().unwrap()),
        remind_at: Some("2030-01-07T08:30:00Z".parse().unwrap()),
    })
}

#[tokio::test]
async fn a_user_only_receives_their_own_notifications() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut bob = app.subscribe("bob", NOTIFICATION_RECEIVED).await;

    // Act
    app.hub
        .publish_notification(notification("alice", "Alice's reminder"));
    let bobs = notification("bob", "Bob's reminder");
    app.hub.publish_notification(bobs.clone());

    // Assert
    let first = next(&mut bob).await;
    assert_eq!(
        first["data"]["notificationReceived"],
        json!({ "id": bobs.notification.id.to_string(), "kind": "REMINDER_DUE",
                "title": "Bob's reminder", "body": "Due at 2030-01-07T09:00:00Z", "readAt": null,
                "dueAt": "2030-01-07T09:00:00+00:00", "remindAt": "2030-01-07T08:30:00+00:00" })
    );
}

#[tokio::test]
async fn a_notification_subscriber_that_falls_behind_gets_an_error_and_its_stream_ends() {
    // Arrange
    let app = LiveApp::start(LiveHub::with_capacity(2)).await;
    let mut rx = app.subscribe("alice", NOTIFICATION_RECEIVED).await;

    // Act
    for i in 0..5 {
        app.hub
            .publish_notification(notification("alice", &format!("n{i}")));
    }

    // Assert
    assert_lagged_and_ended(&mut rx).await;
}

#[tokio::test]
async fn notification_subscriptions_count_against_the_socket_cap() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let socket = SocketSubscriptions::new(1);
    let _tasks = app
        .subscribe_with("alice", TASK_CHANGED, Some(socket.clone()))
        .await;

    // Act
    let body = app
        .first_response("alice", NOTIFICATION_RECEIVED, socket)
        .await;

    // Assert
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}
