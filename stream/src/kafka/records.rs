//! Conversions between the log's records and rskafka's.

use rskafka::record::{Record, RecordAndOffset};

use crate::log::{LogRecord, OutgoingRecord};

/// The Kafka record for `record`: UTF-8 key and header values as bytes; a `None` value stays a
/// null value (a tombstone).
pub(super) fn to_kafka(record: OutgoingRecord) -> Record {
    Record {
        key: Some(record.key.into_bytes()),
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect(),
        timestamp: record.timestamp,
    }
}

/// The log record for a fetched Kafka record. Keys and header values written by other producers
/// may not be UTF-8; they are decoded lossily rather than failing the whole fetch.
pub(super) fn from_kafka(topic: &str, partition: i32, fetched: RecordAndOffset) -> LogRecord {
    let RecordAndOffset { record, offset } = fetched;
    LogRecord {
        topic: topic.to_owned(),
        partition,
        offset,
        key: record
            .key
            .map(|key| String::from_utf8_lossy(&key).into_owned()),
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect(),
        timestamp: record.timestamp,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn a_record_survives_the_round_trip() {
        let timestamp = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let outgoing = OutgoingRecord {
            key: "task-1".into(),
            value: None,
            headers: BTreeMap::from([("ce_type".to_owned(), "task.deleted.v1".to_owned())]),
            timestamp,
        };
        let kafka = to_kafka(outgoing.clone());
        assert_eq!(kafka.value, None);
        let back = from_kafka(
            "t",
            2,
            RecordAndOffset {
                record: kafka,
                offset: 7,
            },
        );
        assert_eq!(back.key.as_deref(), Some("task-1"));
        assert_eq!((back.partition, back.offset), (2, 7));
        assert_eq!(back.headers, outgoing.headers);
        assert_eq!(back.timestamp, timestamp);
    }

    #[test]
    fn non_utf8_header_values_are_decoded_lossily() {
        let record = Record {
            key: Some(vec![0xff]),
            value: Some(vec![1]),
            headers: BTreeMap::from([("h".to_owned(), vec![b'a', 0xff])]),
            timestamp: Utc::now(),
        };
        let back = from_kafka("t", 0, RecordAndOffset { record, offset: 0 });
        assert_eq!(back.key.as_deref(), Some("\u{fffd}"));
        assert_eq!(back.headers["h"], "a\u{fffd}");
    }
}
