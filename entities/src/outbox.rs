//! `outbox`: events written in the same transaction as the change they describe; the relay
//! (or, in embedded mode, the consumers themselves) reads them in id order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The CloudEvent `id`; unique, so consumers can dedupe.
    #[sea_orm(unique)]
    pub event_id: Uuid,
    pub topic: String,
    /// Record key (the task id), which picks the partition.
    pub key: String,
    /// The CloudEvent in structured JSON mode.
    pub payload: String,
    /// Record headers as a JSON object of strings (`ce_*` copies of the attributes); read with
    /// [`decode_headers`].
    pub headers: String,
    pub created_at: DateTimeUtc,
    /// NULL while pending. A per-row flag, never a watermark: ids commit out of order.
    pub published_at: Option<DateTimeUtc>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

/// The columns of a row that its log record is made of: what the relay and the embedded log
/// read (`Entity::find().into_partial_model::<Record>()`), leaving out the publication
/// bookkeeping, so each row read decodes 7 columns instead of 13.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "Entity")]
pub struct Record {
    pub id: i64,
    pub event_id: Uuid,
    pub topic: String,
    pub key: String,
    pub payload: String,
    pub headers: String,
    pub created_at: DateTimeUtc,
}

impl From<Model> for Record {
    fn from(row: Model) -> Record {
        Record {
            id: row.id,
            event_id: row.event_id,
            topic: row.topic,
            key: row.key,
            payload: row.payload,
            headers: row.headers,
            created_at: row.created_at,
        }
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// Headers text that is not a JSON object of strings (see [`decode_headers`]).
#[derive(Debug, thiserror::Error)]
#[error("the stored record headers are not a JSON object of strings: {0}")]
pub struct CorruptHeaders(#[source] pub serde_json::Error);

/// Reads record headers as `outbox.headers`, `dead_letters.headers` and
/// `webhook_deliveries.source_headers` store them: a JSON object of strings. Anything else is
/// an error, never an empty set: the headers carry the event's id, type and trace context.
pub fn decode_headers(
    text: &str,
) -> Result<std::collections::BTreeMap<String, String>, CorruptHeaders> {
    serde_json::from_str(text).map_err(CorruptHeaders)
}

#[cfg(test)]
mod tests {
    use super::decode_headers;

    #[test]
    fn headers_decode_from_a_json_object_of_strings_and_anything_else_is_an_error() {
        let headers = decode_headers(r#"{"ce_id":"1","ce_type":"t"}"#).unwrap();
        assert_eq!(headers.get("ce_type").map(String::as_str), Some("t"));
        assert!(decode_headers("{}").unwrap().is_empty());
        for corrupt in ["", "not json", "[]", r#"{"ce_id":1}"#, "null"] {
            let error = decode_headers(corrupt).unwrap_err().to_string();
            assert!(
                error.contains("not a JSON object of strings"),
                "{corrupt:?}: {error}"
            );
        }
    }
}
