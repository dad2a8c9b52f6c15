//! Conversions between the log's records and NATS messages.
//!
//! A record is one message on its partition's subject. What a Kafka record carries outside its
//! headers travels in headers of Taskstream's own, which readers strip again:
//! - [`KEY`]: the record key (the task id), which NATS messages do not have;
//! - [`TOMBSTONE`] = `1`: the record has no value (a deletion on `task-updates`), as opposed to
//!   an empty one;
//! - [`TIMESTAMP`]: the record's timestamp in milliseconds since the epoch (the server's receive
//!   time is used for messages without it);
//! - `Nats-Msg-Id` (like every `Nats-*` header, JetStream's, and not passed on to readers): the
//!   CloudEvent id (`ce_id`), plus `:<consumer>` on dead-letter copies, so
//!   that the server drops a message the relay publishes twice within the duplicate window.
//!
//! The `ce_*` headers and the JSON CloudEvent body are exactly those of the Kafka transport.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use async_nats::jetstream::message::{Info, Message};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};

use crate::log::{LogError, LogRecord, OutgoingRecord};
use crate::outbox::header;

/// The record key.
pub const KEY: &str = "Taskstream-Key";
/// `1` on a tombstone (a record without a value).
pub const TOMBSTONE: &str = "Taskstream-Tombstone";
/// The record timestamp, milliseconds since the epoch.
pub const TIMESTAMP: &str = "Taskstream-Timestamp";
/// JetStream's de-duplication header.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The message id the server de-duplicates `record` by, if it has a CloudEvent id.
pub(super) fn message_id(record: &OutgoingRecord) -> Option<String> {
    let id = record.headers.get(header::ID)?;
    Some(match record.headers.get(header::DLQ_CONSUMER) {
        Some(consumer) => format!("{id}:{consumer}"),
        None => id.clone(),
    })
}

/// The headers and payload of the message for `record`.
pub(super) fn to_message(record: OutgoingRecord) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    if let Some(id) = message_id(&record) {
        headers.insert(MSG_ID, id.as_str());
    }
    for (name, value) in &record.headers {
        headers.insert(name.as_str(), value.as_str());
    }
    headers.insert(KEY, record.key.as_str());
    headers.insert(
        TIMESTAMP,
        record.timestamp.timestamp_millis().to_string().as_str(),
    );
    let payload = match record.value {
        Some(value) => value,
        None => {
            headers.insert(TOMBSTONE, "1");
            Vec::new()
        }
    };
    (headers, payload.into())
}

/// The log record for a message read from partition `partition` of `topic`, with the info of
/// its reply subject (sequence, receive time).
pub(super) fn from_message(
    topic: &str,
    partition: i32,
    message: &Message,
    info: &Info<'_>,
) -> Result<LogRecord, LogError> {
    let offset = sequence_to_offset(info.stream_sequence)?;
    let mut headers = BTreeMap::new();
    let (mut key, mut tombstone, mut timestamp) = (None, false, None);
    if let Some(map) = &message.headers {
        for (name, values) in map.iter() {
            let Some(value) = values.last() else { continue };
            let (name, value) = (name.as_ref(), value.as_str());
            match name {
                KEY => key = Some(value.to_owned()),
                TOMBSTONE => tombstone = value == "1",
                TIMESTAMP => {
                    timestamp = value
                        .parse::<i64>()
                        .ok()
                        .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
                }
                // JetStream's own headers (Nats-Msg-Id, Nats-Expected-Stream, ...).
                _ if name.starts_with("Nats-") => {}
                _ => {
                    headers.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }
    let published = info.published.unix_timestamp_nanos();
    let timestamp = timestamp.unwrap_or_else(|| {
        DateTime::from_timestamp_nanos(i64::try_from(published).unwrap_or(i64::MAX))
    });
    Ok(LogRecord {
        topic: topic.to_owned(),
        partition,
        offset,
        key,
        value: (!tombstone).then(|| message.payload.to_vec()),
        headers,
        timestamp,
    })
}

/// The log offset of JetStream stream sequence `sequence` (sequences start at 1, offsets at 0).
pub(super) fn sequence_to_offset(sequence: u64) -> Result<i64, LogError> {
    sequence
        .checked_sub(1)
        .and_then(|o| i64::try_from(o).ok())
        .ok_or_else(|| LogError::Fatal(format!("JetStream stream sequence {sequence} is invalid")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: Option<&[u8]>, headers: &[(&str, &str)]) -> OutgoingRecord {
        OutgoingRecord {
            key: "task-1".into(),
            value: value.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timestamp: Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
        }
    }

    #[test]
    fn a_tombstone_is_marked_and_carries_its_key_and_timestamp() {
        let (headers, payload) = to_message(record(None, &[("ce_id", "e1")]));
        assert!(payload.is_empty());
        assert_eq!(headers.get(TOMBSTONE).unwrap().as_str(), "1");
        assert_eq!(headers.get(KEY).unwrap().as_str(), "task-1");
        assert_eq!(headers.get(TIMESTAMP).unwrap().as_str(), "1700000000123");
        assert_eq!(headers.get(MSG_ID).unwrap().as_str(), "e1");
        assert_eq!(headers.get("ce_id").unwrap().as_str(), "e1");
    }

    #[test]
    fn an_empty_value_is_not_a_tombstone() {
        let (headers, payload) = to_message(record(Some(b""), &[]));
        assert!(payload.is_empty());
        assert!(headers.get(TOMBSTONE).is_none());
        assert!(headers.get(MSG_ID).is_none(), "no ce_id, no message id");
    }

    #[test]
    fn dead_letter_copies_are_deduplicated_per_consumer() {
        let parked = record(
            Some(b"{}"),
            &[("ce_id", "e1"), ("dlq_consumer", "recurrence")],
        );
        assert_eq!(message_id(&parked).as_deref(), Some("e1:recurrence"));
    }

    #[test]
    fn sequences_map_to_offsets() {
        assert_eq!(sequence_to_offset(1).unwrap(), 0);
        assert_eq!(sequence_to_offset(42).unwrap(), 41);
        assert!(sequence_to_offset(0).is_err());
    }
}
