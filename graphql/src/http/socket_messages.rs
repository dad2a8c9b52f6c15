//! Errors over the WebSocket as over HTTP. async-graphql's WebSocket engine answers an
//! operation the engine refused (a document that does not parse or validate, or a document
//! limit) with `next` carrying the errors, then `complete`; graphql-transport-ws says such an
//! operation gets one `error` message whose payload is the array of errors, and nothing after
//! it. And the engine's own errors carry no `extensions.code`, which HTTP adds
//! (`crate::schema::execute`). [`OutgoingErrors`] rewrites the engine's messages on their way
//! to the client accordingly.

use std::collections::HashSet;

use async_graphql::ServerError;
use axum::extract::ws::Message;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The code engine errors get, as over HTTP.
const ENGINE_ERROR_CODE: &str = "BAD_USER_INPUT";

/// One socket's rewriting state: the operations answered with `error`, whose engine
/// `complete` must not follow it.
#[derive(Debug, Default)]
pub(super) struct OutgoingErrors {
    errored: HashSet<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: String,
    #[serde(borrow, default)]
    payload: Option<Payload<'a>>,
}

#[derive(Deserialize, Serialize)]
struct Payload<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ServerError>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    extensions: Option<&'a RawValue>,
}

impl OutgoingErrors {
    /// The message to send instead of `message` (`None`: send nothing). `transport_ws` is
    /// whether the socket speaks graphql-transport-ws (the legacy protocol has no `error` for
    /// an operation; its errors only get their codes).
    pub(super) fn map(&mut self, message: Message, transport_ws: bool) -> Option<Message> {
        let Message::Text(text) = &message else {
            return Some(message);
        };
        let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text.as_str()) else {
            return Some(message);
        };
        match envelope.kind {
            "complete" if self.errored.remove(&envelope.id) => return None,
            "next" | "data" => {}
            _ => return Some(message),
        }
        let Some(mut payload) = envelope.payload else {
            return Some(message);
        };
        if payload.errors.is_empty() {
            return Some(message);
        }
        let coded = add_missing_codes(&mut payload.errors);
        let refused = payload.data.is_none_or(|d| d.get() == "null")
            && payload.errors.iter().all(|e| e.path.is_empty());
        if transport_ws && refused {
            #[derive(Serialize)]
            struct ErrorMessage<'a> {
                id: &'a str,
                #[serde(rename = "type")]
                kind: &'static str,
                payload: &'a [ServerError],
            }
            let text = serde_json::to_string(&ErrorMessage {
                id: &envelope.id,
                kind: "error",
                payload: &payload.errors,
            });
            self.errored.insert(envelope.id);
            return text.ok().map(|t| Message::Text(t.into())).or(Some(message));
        }
        if !coded {
            return Some(message);
        }
        #[derive(Serialize)]
        struct NextMessage<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            id: &'a str,
            payload: &'a Payload<'a>,
        }
        match serde_json::to_string(&NextMessage {
            kind: envelope.kind,
            id: &envelope.id,
            payload: &payload,
        }) {
            Ok(text) => Some(Message::Text(text.into())),
            Err(_) => Some(message),
        }
    }
}

/// Gives every error without `extensions.code` the engine errors' code, as
/// `crate::schema::execute` does over HTTP; whether any changed.
fn add_missing_codes(errors: &mut [ServerError]) -> bool {
    let mut changed = false;
    for err in errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", ENGINE_ERROR_CODE);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(message: Option<Message>) -> serde_json::Value {
        match message {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("not a text message: {other:?}"),
        }
    }

    #[test]
    fn a_refused_operation_becomes_one_error_message_with_codes_and_no_complete() {
        let mut errors = OutgoingErrors::default();
        let next = r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"Unknown field \"nope\"","locations":[{"line":1,"column":16}]}]}}"#;
        let sent = text(errors.map(Message::Text(next.into()), true));
        assert_eq!(sent["type"], "error");
        assert_eq!(sent["id"], "1");
        assert_eq!(sent["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(sent["payload"][0]["locations"][0]["line"], 1);
        let complete = Message::Text(r#"{"type":"complete","id":"1"}"#.into());
        assert!(errors.map(complete.clone(), true).is_none());
        assert!(
            errors.map(complete, true).is_some(),
            "a later operation with the id completes as usual"
        );
    }

    #[test]
    fn field_errors_stay_next_and_keep_the_data_as_sent() {
        let mut errors = OutgoingErrors::default();
        let next = r#"{"type":"next","id":"2","payload":{"data":{"z":1,"a":null},"errors":[{"message":"x","path":["a"]}]}}"#;
        let sent = errors.map(Message::Text(next.into()), true);
        let Some(Message::Text(sent)) = sent else {
            panic!("dropped");
        };
        assert!(
            sent.as_str().contains(r#""data":{"z":1,"a":null}"#),
            "{sent}"
        );
        let sent: serde_json::Value = serde_json::from_str(sent.as_str()).unwrap();
        assert_eq!(sent["type"], "next");
        assert_eq!(
            sent["payload"]["errors"][0]["extensions"]["code"],
            "BAD_USER_INPUT"
        );

        let coded = r#"{"type":"next","id":"3","payload":{"data":null,"errors":[{"message":"x","path":["a"],"extensions":{"code":"RATE_LIMITED"}}]}}"#;
        let sent = errors.map(Message::Text(coded.into()), true);
        assert!(matches!(sent, Some(Message::Text(t)) if t.as_str() == coded));
    }

    #[test]
    fn the_legacy_protocol_only_gets_codes() {
        let mut errors = OutgoingErrors::default();
        let data =
            r#"{"type":"data","id":"1","payload":{"data":null,"errors":[{"message":"bad"}]}}"#;
        let sent = text(errors.map(Message::Text(data.into()), false));
        assert_eq!(sent["type"], "data");
        assert_eq!(
            sent["payload"]["errors"][0]["extensions"]["code"],
            "BAD_USER_INPUT"
        );
    }
}
