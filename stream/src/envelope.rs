//! The CloudEvents 1.0 envelope in structured JSON mode, with Taskstream's extensions.
//!
//! Attributes are also copied into `ce_*` record headers (the CloudEvents Kafka binding), so a
//! consumer can route or filter without parsing the body: see [`crate::outbox::event_headers`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `source` attribute of every event Taskstream produces.
pub const SOURCE: &str = "urn:taskstream";

/// One event, serialised as the record value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate the event is about (the task id).
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    /// The aggregate's version after the change, for ordering and idempotence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregateversion: Option<i64>,
    /// The request (or root event) this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    /// The event or request that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causationid: Option<String>,
    /// W3C trace context of the span that wrote the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// A new event with a fresh time-ordered id, `source` = [`SOURCE`], JSON data.
    pub fn new(
        event_type: impl Into<String>,
        subject: impl Into<String>,
        time: DateTime<Utc>,
        data: serde_json::Value,
    ) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".to_owned(),
            id: Uuid::now_v7(),
            source: SOURCE.to_owned(),
            event_type: event_type.into(),
            subject: subject.into(),
            time,
            datacontenttype: "application/json".to_owned(),
            aggregateversion: None,
            correlationid: None,
            causationid: None,
            traceparent: None,
            data,
        }
    }

    pub fn with_version(mut self, version: i64) -> CloudEvent {
        self.aggregateversion = Some(version);
        self
    }

    pub fn with_correlation(mut self, correlation_id: Option<String>) -> CloudEvent {
        self.correlationid = correlation_id;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn structured_json_uses_cloudevents_attribute_names() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let ev = CloudEvent::new(
            "taskstream.task.created",
            "abc",
            t,
            serde_json::json!({"a": 1}),
        )
        .with_version(3);
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "taskstream.task.created");
        assert_eq!(json["subject"], "abc");
        assert_eq!(json["aggregateversion"], 3);
        assert!(json.get("correlationid").is_none());
        let back: CloudEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }
}
