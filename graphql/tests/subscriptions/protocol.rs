//! The graphql-transport-ws protocol rules, each closing the socket with its code, the
//! message size cap, and the close on shutdown.

use super::*;

#[tokio::test]
async fn a_websocket_without_connection_init_is_closed_with_4408() {
    // Arrange
    let server = TestServer::start_with_init_timeout(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();

    // Act
    let mut socket = server.connect().await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4408, "Connection initialisation timeout".to_owned())
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_websocket_that_sent_connection_init_outlives_the_init_timeout() {
    // Arrange
    let server = TestServer::start_with_init_timeout(Duration::from_millis(200)).await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    tokio::time::sleep(Duration::from_millis(400)).await;
    send_json(&mut socket, json!({ "type": "ping" })).await;

    // Assert
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_subscribe_before_connection_ack_is_closed_with_4401() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;

    // Act
    send_json(&mut socket, subscribe_message("1")).await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4401, "Unauthorized".to_owned())
    );
}

#[tokio::test]
async fn a_duplicate_active_subscription_id_is_closed_with_4409() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(&mut socket, subscribe_message("1")).await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;

    // Act
    send_json(&mut socket, subscribe_message("1")).await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4409, "Subscriber for 1 already exists".to_owned())
    );
}

#[tokio::test]
async fn a_completed_subscription_id_can_be_reused() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(&mut socket, subscribe_message("1")).await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;
    send_json(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "complete");

    // Act
    send_json(&mut socket, subscribe_message("1")).await;
    send_json(&mut socket, json!({ "type": "ping" })).await;

    // Assert: still open.
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_message_that_is_not_json_is_closed_with_4400() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;

    // Act
    socket.send(Message::Text("not json".into())).await.unwrap();

    // Assert
    assert_eq!(close_frame(&mut socket).await.0, 4400);
}

#[tokio::test]
async fn a_message_of_an_unknown_type_is_closed_with_4400() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    send_json(&mut socket, json!({ "type": "shout", "id": "1" })).await;

    // Assert
    assert_eq!(close_frame(&mut socket).await.0, 4400);
}

#[tokio::test]
async fn a_second_connection_init_is_closed_with_4429() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    let token = server.token("alice");
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4429, "Too many initialisation requests".to_owned())
    );
}

#[tokio::test]
async fn a_message_larger_than_the_cap_closes_the_socket_without_being_read() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let huge = format!(
        r#"{{"id":"1","type":"subscribe","payload":{{"query":"{}"}}}}"#,
        "x".repeat(graphql::http::WS_MAX_MESSAGE_BYTES + 1)
    );

    // Act
    let _ = socket.send(Message::Text(huge.into())).await;

    // Assert: the server gives up on the connection (1009 "message too big", or a reset).
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the socket stayed open after an oversized message");
        match next {
            Some(Ok(Message::Close(frame))) => {
                if let Some(frame) = frame {
                    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
                }
                break;
            }
            Some(Ok(Message::Text(text))) => {
                panic!("the oversized message was answered: {text:.200}")
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
}

#[tokio::test]
async fn a_subscription_nested_two_thousand_deep_is_refused_and_the_socket_stays_usable() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let deep = format!(
        "subscription {{ taskChanged(filter: {{ tags: {{ any: {}\"x\"{} }} }}) {{ kind }} }}",
        "[".repeat(2_000),
        "]".repeat(2_000)
    );

    // Act
    send_json(
        &mut socket,
        json!({ "id": "deep", "type": "subscribe", "payload": { "query": deep } }),
    )
    .await;

    // Assert: one error naming the limit, and the socket still answers.
    let reply = receive(&mut socket).await.unwrap();
    assert_eq!(reply["id"], "deep");
    let errors = match reply["type"].as_str() {
        Some("error") => reply["payload"].clone(),
        Some("next") => reply["payload"]["errors"].clone(),
        other => panic!("unexpected reply {other:?}: {reply}"),
    };
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{reply}");
    assert_eq!(
        errors[0]["extensions"]["limit"], "MAX_QUERY_NESTING",
        "{reply}"
    );
    send_json(&mut socket, json!({ "type": "ping" })).await;
    loop {
        let message = receive(&mut socket).await.unwrap();
        if message["type"] == "pong" {
            break;
        }
        assert_eq!(
            message["id"], "deep",
            "only the refused operation's end: {message}"
        );
    }
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_1001_before_the_server_stops() {
    // Arrange: a socket with an active subscription.
    let mut server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(&mut socket, subscribe_message("1")).await;

    // Act: shut down as SIGTERM does; `shut_down` returns once the gateway has stopped.
    let (closed, ()) = tokio::join!(close_frame(&mut socket), server.shut_down());

    // Assert
    assert_eq!(closed, (1001, "the server is shutting down".to_owned()));
}
