//! The graphql-transport-ws close codes async-graphql does not send itself.
//!
//! The engine closes a protocol violation with 1002 or 1011 (or not at all), so
//! [`crate::http`] runs every incoming client message through a [`Guard`] before the engine
//! sees it, and every outgoing message through it on the way out:
//!
//! | violation                                   | close                                     |
//! |---------------------------------------------|-------------------------------------------|
//! | not JSON, unknown `type`, malformed message | 4400 `<reason>`                           |
//! | `subscribe` before `connection_ack`         | 4401 `Unauthorized`                       |
//! | `connection_init` refused                   | 4403 `Forbidden` (see [`forbidden_close`]) |
//! | no `connection_init` in time                | 4408 `Connection initialisation timeout`  |
//! | `subscribe` with an id already active       | 4409 `Subscriber for <id> already exists` |
//! | a second `connection_init`                  | 4429 `Too many initialisation requests`   |

use std::collections::HashSet;

use axum::extract::ws::{CloseFrame, Message};
use axum::http::{HeaderMap, header};

/// graphql-transport-ws: an invalid message.
pub const CLOSE_BAD_REQUEST: u16 = 4400;
/// graphql-transport-ws: `subscribe` before the connection was acknowledged.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// graphql-transport-ws: a refused `connection_init`.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// graphql-transport-ws: no `connection_init` within the init timeout.
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// graphql-transport-ws: `subscribe` with the id of an active subscription.
pub const CLOSE_SUBSCRIBER_EXISTS: u16 = 4409;
/// graphql-transport-ws: a second `connection_init`.
pub const CLOSE_TOO_MANY_INITS: u16 = 4429;
/// RFC 6455 §7.4.1: the server is going away (shutting down).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The reason prefix that marks our own refusal among the engine's 1002 closes.
pub const FORBIDDEN_REASON: &str = "Forbidden";

/// A close frame's reason is at most 123 bytes (RFC 6455 §5.5).
const MAX_REASON_BYTES: usize = 123;

/// Whether the protocol the engine will pick from `Sec-WebSocket-Protocol` (the first known
/// one listed) is `graphql-transport-ws`, the only one the guard applies to.
pub fn is_transport_ws(headers: &HeaderMap) -> bool {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| {
            list.split(',').map(str::trim).find(|p| {
                p.eq_ignore_ascii_case("graphql-transport-ws")
                    || p.eq_ignore_ascii_case("graphql-ws")
            })
        })
        .is_some_and(|p| p.eq_ignore_ascii_case("graphql-transport-ws"))
}

/// A close frame with `reason` cut to the protocol's limit.
pub fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// The engine closes a refused `connection_init` with 1002; graphql-transport-ws says 4403.
pub fn forbidden_close(message: Message) -> Message {
    match message {
        Message::Close(Some(frame))
            if frame.code == 1002 && frame.reason.as_str().starts_with(FORBIDDEN_REASON) =>
        {
            close(CLOSE_FORBIDDEN, FORBIDDEN_REASON)
        }
        other => other,
    }
}

/// What to do with one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the engine.
    Pass,
    /// Close the socket with this code and reason; the engine never sees the message.
    Close(u16, String),
}

/// One socket's protocol state as the client and the engine have shown it.
#[derive(Debug, Default)]
pub struct Guard {
    init_received: bool,
    acknowledged: bool,
    active: HashSet<String>,
}

impl Guard {
    /// Whether the client has sent `connection_init`.
    pub fn init_received(&self) -> bool {
        self.init_received
    }

    /// Checks one incoming text or binary message.
    pub fn incoming(&mut self, bytes: &[u8]) -> Verdict {
        let value: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return Verdict::Close(CLOSE_BAD_REQUEST, format!("Invalid message: {e}")),
        };
        let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if !matches!(
            kind,
            "connection_init" | "ping" | "pong" | "subscribe" | "complete"
        ) {
            return Verdict::Close(
                CLOSE_BAD_REQUEST,
                format!("Invalid message: unknown type {kind:?}"),
            );
        }
        if let Err(e) = serde_json::from_value::<async_graphql::http::ClientMessage>(value.clone())
        {
            return Verdict::Close(CLOSE_BAD_REQUEST, format!("Invalid message: {e}"));
        }
        let id = value.get("id").and_then(|v| v.as_str()).unwrap_or("");
        match kind {
            "connection_init" if self.init_received => Verdict::Close(
                CLOSE_TOO_MANY_INITS,
                "Too many initialisation requests".into(),
            ),
            "connection_init" => {
                self.init_received = true;
                Verdict::Pass
            }
            "subscribe" if !self.acknowledged => {
                Verdict::Close(CLOSE_UNAUTHORIZED, "Unauthorized".into())
            }
            "subscribe" if !self.active.insert(id.to_owned()) => Verdict::Close(
                CLOSE_SUBSCRIBER_EXISTS,
                format!("Subscriber for {id} already exists"),
            ),
            "complete" => {
                self.active.remove(id);
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }

    /// Notes what the engine sends: `connection_ack` and the end of a subscription.
    pub fn outgoing(&mut self, message: &Message) {
        let Message::Text(text) = message else {
            return;
        };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"connection_ack""#) {
            self.acknowledged = true;
        } else if text.starts_with(r#"{"type":"complete""#)
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
            && let Some(id) = value.get("id").and_then(|v| v.as_str())
        {
            self.active.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked() -> Guard {
        let mut guard = Guard::default();
        assert_eq!(
            guard.incoming(br#"{"type":"connection_init"}"#),
            Verdict::Pass
        );
        guard.outgoing(&Message::Text(r#"{"type":"connection_ack"}"#.into()));
        guard
    }

    const SUBSCRIBE: &[u8] =
        br#"{"type":"subscribe","id":"1","payload":{"query":"subscription { x }"}}"#;

    #[test]
    fn an_id_is_free_again_once_the_server_completes_it() {
        let mut guard = acked();
        assert_eq!(guard.incoming(SUBSCRIBE), Verdict::Pass);
        guard.outgoing(&Message::Text(r#"{"type":"complete","id":"1"}"#.into()));
        assert_eq!(guard.incoming(SUBSCRIBE), Verdict::Pass);
    }

    #[test]
    fn a_malformed_subscribe_is_a_bad_request() {
        let mut guard = acked();
        let verdict = guard.incoming(br#"{"type":"subscribe","id":"1"}"#);
        assert!(matches!(verdict, Verdict::Close(CLOSE_BAD_REQUEST, _)));
    }

    #[test]
    fn a_long_reason_is_cut_to_the_limit() {
        let Message::Close(Some(frame)) = close(4409, &"é".repeat(100)) else {
            panic!("not a close frame");
        };
        assert!(frame.reason.len() <= MAX_REASON_BYTES);
    }
}
