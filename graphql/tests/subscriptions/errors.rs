//! Errors over the WebSocket as over HTTP: an operation the engine refuses gets the
//! graphql-transport-ws `error` message (its payload the array of errors, nothing after it),
//! and every error carries the `extensions.code` HTTP gives it.

use super::*;

/// Subscribes `query` as `id` and returns the server's first answer for it.
async fn first_answer<S>(socket: &mut S, id: &str, query: &str) -> Value
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    send_json(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    receive(socket).await.unwrap()
}

/// Asserts nothing for the refused operation follows its `error`: the next message is the
/// answer to a ping sent now.
async fn assert_nothing_follows<S>(socket: &mut S)
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    send_json(socket, json!({ "type": "ping" })).await;
    let next = receive(socket).await.unwrap();
    assert_eq!(next["type"], "pong", "{next}");
}

#[tokio::test]
async fn a_subscription_with_an_unknown_field_gets_an_error_message_with_bad_user_input() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    let answer = first_answer(&mut socket, "1", "subscription { taskChanged { nope } }").await;

    // Assert
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["id"], "1");
    let errors = answer["payload"].as_array().expect("an array of errors");
    assert!(!errors.is_empty());
    assert!(
        errors[0]["message"].as_str().unwrap().contains("nope"),
        "{answer}"
    );
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    assert_nothing_follows(&mut socket).await;
}

#[tokio::test]
async fn a_subscription_refused_by_a_document_limit_gets_an_error_message_naming_it() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let padded = format!(
        "subscription {{ taskChanged {{ kind }} }}\n#{}",
        "x".repeat(20 * 1024)
    );

    // Act
    let answer = first_answer(&mut socket, "1", &padded).await;

    // Assert
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        answer["payload"][0]["extensions"]["limit"],
        "MAX_SUBSCRIPTION_BYTES"
    );
    assert_nothing_follows(&mut socket).await;
}

#[tokio::test]
async fn the_id_of_a_refused_operation_is_free_again_and_queries_get_codes_too() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let refused = first_answer(&mut socket, "1", "{ me { nope } }").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );

    // Act: the same id again, now valid (an id still active would close the socket, 4409).
    let answer = first_answer(&mut socket, "1", "{ me { id } }").await;

    // Assert
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["data"]["me"]["id"], "alice");
    let complete = receive(&mut socket).await.unwrap();
    assert_eq!(complete, json!({ "type": "complete", "id": "1" }));
}

#[tokio::test]
async fn websocket_responses_follow_the_selection_order() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let query = "{ d: me { timezone id } b: tasks { totalCount nodes { id } } a: me { id } }";

    for round in 0..10 {
        // Act
        let id = format!("order-{round}");
        send_json(
            &mut socket,
            json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
        )
        .await;

        // Assert: on the raw text, since serde_json's map would sort the keys.
        let text = loop {
            let message = tokio::time::timeout(DEADLINE, socket.next())
                .await
                .expect("no reply before the deadline")
                .expect("the socket closed")
                .unwrap();
            if let Message::Text(text) = message
                && text.contains("\"next\"")
            {
                break text.to_string();
            }
        };
        let data = &text[text.find("\"data\"").expect("a data member")..];
        let at = |needle: &str| {
            data.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {text}"))
        };
        assert!(
            at("\"d\"") < at("\"b\"") && at("\"b\"") < at("\"a\""),
            "{text}"
        );
        assert!(at("\"timezone\"") < at("\"id\""), "{text}");
        assert!(at("\"totalCount\"") < at("\"nodes\""), "{text}");
    }
}
