//! Per-user bounds on sockets and subscriptions, and sockets closed when their token expires.

use super::*;

#[tokio::test]
async fn a_user_past_the_socket_cap_is_closed_with_1013_and_others_are_not() {
    // Arrange
    let server = TestServer::start_with_user_limits(2, 100).await;
    let mut first = server.connect().await;
    handshake(&server, &mut first, "alice").await;
    let mut second = server.connect().await;
    handshake(&server, &mut second, "alice").await;

    // Act
    let mut third = server.connect().await;
    let token = server.token("alice");
    send_json(
        &mut third,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;

    // Assert
    let (code, reason) = close_frame(&mut third).await;
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("WS_MAX_SOCKETS_PER_USER"), "{reason}");
    let mut bob = server.connect().await;
    handshake(&server, &mut bob, "bob").await;
    drop(first);
    // The slot comes back once the server sees the first socket end.
    wait_until("the slot comes back", || {
        server.state.user_sockets.sockets_of("alice") <= 1
    })
    .await;
    let mut again = server.connect().await;
    handshake(&server, &mut again, "alice").await;
}

#[tokio::test]
async fn subscriptions_are_counted_per_user_across_sockets() {
    // Arrange
    let server = TestServer::start_with_user_limits(10, 3).await;
    let mut first = server.connect().await;
    handshake(&server, &mut first, "alice").await;
    let mut second = server.connect().await;
    handshake(&server, &mut second, "alice").await;
    for id in ["1", "2"] {
        send_json(&mut first, subscribe_message(id)).await;
    }
    send_json(&mut second, subscribe_message("3")).await;
    // A round trip on each socket, so the subscriptions above are registered.
    for socket in [&mut first, &mut second] {
        send_json(socket, json!({ "type": "ping" })).await;
        assert_eq!(receive(socket).await.unwrap()["type"], "pong");
    }

    // Act
    send_json(&mut second, subscribe_message("4")).await;

    // Assert
    let reply = receive(&mut second).await.unwrap();
    assert_eq!(reply["id"], "4", "{reply}");
    let errors = match reply["type"].as_str() {
        Some("error") => reply["payload"].clone(),
        _ => reply["payload"]["errors"].clone(),
    };
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{reply}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("WS_MAX_SUBSCRIPTIONS_PER_USER"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_socket_is_closed_with_4403_when_its_token_expires() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    let token = server.token_for("alice", Duration::from_secs(1));
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    send_json(&mut socket, subscribe_message("1")).await;

    // Act: nothing; the token runs out within a second or two.

    // Assert
    let (code, reason) = close_frame(&mut socket).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn a_query_sent_over_the_websocket_path_is_cut_off_by_the_execution_timeout() {
    // Arrange: the WebSocket transport runs queries through `execute_stream`. A zero timeout
    // cuts off any operation still running at the timer's next tick; this preview walks tens of
    // thousands of days on the blocking pool before it gives up (29 February on a Monday, 50
    // times), far longer than a tick, so the cut-off does not race a fast reply.
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let schema = build_schema(
        t.db.clone(),
        Clock::System,
        &SchemaLimits {
            execution_timeout: Duration::ZERO,
            ..SchemaLimits::default()
        },
        LiveHub::new(),
    );
    let request = prepare_request(
        async_graphql::Request::new(
            "{ previewRecurrence(recurrence: { rule: \"FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO\", \
             timezone: \"UTC\" }, dueAt: \"2026-01-01T09:00:00Z\", count: 50) }",
        ),
        &t.db,
        RequestMeta {
            user: AuthUser { id: "alice".into() },
            request_id: None,
        },
    );

    // Act
    let response = tokio::time::timeout(DEADLINE, schema.execute_stream(request).next())
        .await
        .unwrap()
        .unwrap();

    // Assert
    let error = &response.errors[0];
    assert!(error.message.contains("REQUEST_TIMEOUT_SECS"), "{error:?}");
    assert!(error.message.contains("outcome is unknown"), "{error:?}");
    assert_eq!(
        error.extensions.as_ref().unwrap().get("code"),
        Some(&async_graphql::Value::from("INTERNAL"))
    );
}

#[tokio::test]
async fn a_mutation_retried_over_the_websocket_with_its_idempotency_key_runs_once() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let create = |id: &str| {
        json!({ "id": id, "type": "subscribe", "payload": {
            "query": "mutation { createTask(input: { title: \"Once\" }) { id } }",
            "extensions": { "idempotencyKey": "ws-key-1" }
        } })
    };
    let mut created = Vec::new();

    // Act: the same mutation twice, as a client retrying after a lost reply.
    for id in ["first", "retry"] {
        send_json(&mut socket, create(id)).await;
        let reply = receive(&mut socket).await.unwrap();
        assert_eq!(
            (reply["id"].as_str(), reply["type"].as_str()),
            (Some(id), Some("next"))
        );
        created.push(reply["payload"]["data"]["createTask"]["id"].clone());
        assert_eq!(receive(&mut socket).await.unwrap()["type"], "complete");
    }

    // Assert
    assert_eq!(created[0], created[1], "the retry got the first result");
    let token = server.token("alice");
    let tasks = server.mutate(&token, "{ tasks { totalCount } }").await;
    assert_eq!(tasks["data"]["tasks"]["totalCount"], 1);
}
