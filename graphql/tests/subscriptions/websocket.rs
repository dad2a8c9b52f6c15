//! End to end over a real WebSocket: a task created over HTTP, a bad token, and a reminder
//! that arrives live and at the webhook.

use super::*;

#[tokio::test]
async fn a_websocket_subscriber_receives_a_task_created_over_http() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");
    let mut socket = server.connect().await;
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    send_json(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { taskChanged { kind taskId task { title tags { name } } } }"
        } }),
    )
    .await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;

    // Act
    let created = server
        .mutate(
            &token,
            r#"mutation { createTask(input: { title: "Live one", tags: ["work"] }) { id } }"#,
        )
        .await;
    let id = created["data"]["createTask"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Assert
    let message = receive(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next");
    assert_eq!(message["id"], "1");
    assert_eq!(
        message["payload"]["data"]["taskChanged"],
        json!({ "kind": "CREATED", "taskId": id, "task": { "title": "Live one", "tags": [{ "name": "work" }] } })
    );
}

#[tokio::test]
async fn a_websocket_with_a_bad_token_is_closed_with_4403() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;

    // Act
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-jwt" } }),
    )
    .await;

    // Assert
    assert_eq!(receive(&mut socket).await, Err(Some(4403)));
}

/// The embedded-mode promise: a reminder set a moment ahead fires, and its notification
/// arrives on `notificationReceived` and at the user's webhook, with nothing else running.
#[tokio::test]
async fn a_reminder_a_moment_ahead_arrives_live_on_notification_received_and_at_the_webhook() {
    // Arrange: a webhook receiver on loopback (allow-listed) and the embedded server.
    let (posts_tx, mut posts) = mpsc::unbounded_channel::<Value>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = posts_tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, receiver).await });
    let server = TestServer::start_embedded(subscribers::webhook::WebhookSettings {
        policy: subscribers::webhook::TargetPolicy::parse("127.0.0.0/8").unwrap(),
        ..subscribers::webhook::WebhookSettings::default()
    })
    .await;
    let token = server.token("alice");
    // The user row, then the webhook straight in the database (the gateway's own policy is
    // the default public-only one).
    server
        .mutate(
            &token,
            r#"mutation { updateSettings(input: { timezone: "UTC" }) { id } }"#,
        )
        .await;
    {
        use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
        let row = entities::user::Entity::find_by_id("alice".to_owned())
            .one(&server.state.db)
            .await
            .unwrap()
            .unwrap();
        let mut row = row.into_active_model();
        row.webhook_url = Set(Some(hook));
        row.webhook_secret = Set(Some("a-webhook-secret-of-some-length".into()));
        row.update(&server.state.db).await.unwrap();
    }
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(
        &mut socket,
        json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription { notificationReceived { kind title task { title } } }"
        } }),
    )
    .await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;

    // Act: a reminder two seconds ahead.
    let at = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let created = server
        .mutate(
            &token,
            &format!(r#"mutation {{ createTask(input: {{ title: "Stretch", reminders: [{{ at: "{at}" }}] }}) {{ id }} }}"#),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");

    // Assert: live push, then the webhook POST with the same notification.
    let message = receive(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["notificationReceived"],
        json!({ "kind": "REMINDER_DUE", "title": "Stretch", "task": { "title": "Stretch" } })
    );
    let post = tokio::time::timeout(DEADLINE, posts.recv())
        .await
        .expect("no webhook POST before the deadline")
        .unwrap();
    assert_eq!(post["type"], "taskstream.notification.created");
    assert_eq!(post["data"]["title"], "Stretch");
}
