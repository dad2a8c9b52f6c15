//! The runtime's database statements: offsets, processed events, dead letters.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, Set,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::log::LogRecord;
use crate::outbox::{begin_write, header};
use entities::{consumer_offset, dead_letter, processed_event};

/// The most bytes of an error message copied into the `dlq_error` header.
const DLQ_ERROR_HEADER_MAX: usize = 1024;
/// The most bytes of an error message stored in `dead_letters.error`.
const DEAD_LETTER_ERROR_MAX: usize = 16 * 1024;
/// Rows per multi-row insert into `processed_events`: 3 parameters each, far below SQLite's
/// 32,766 and PostgreSQL's 65,535 bind parameters.
const PROCESSED_CHUNK: usize = 1000;

/// The CloudEvent id of a record: its `ce_id` header, else the `id` of its JSON payload.
/// `Err` says why there is none; such a record is poison (it cannot be deduplicated).
pub fn event_id(record: &LogRecord) -> Result<Uuid, String> {
    if let Some(id) = record.headers.get(header::ID) {
        return Uuid::parse_str(id).map_err(|_| format!("its ce_id header {id:?} is not a UUID"));
    }
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    let value = record
        .value
        .as_deref()
        .ok_or("it has no ce_id header and no payload")?;
    let parsed: IdOnly = serde_json::from_slice(value)
        .map_err(|e| format!("it has no ce_id header and no `id` in its payload ({e})"))?;
    Uuid::parse_str(&parsed.id).map_err(|_| format!("its payload id {:?} is not a UUID", parsed.id))
}

/// Identifies one stored offset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OffsetKey<'a> {
    pub consumer: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    /// With leases, the instance that must hold the partition's lease for the offset to move
    /// (the fence against a zombie: [`super::leases`]); `None` with fixed partitions.
    pub lease_owner: Option<&'a str>,
}

impl OffsetKey<'_> {
    fn filter(&self) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(consumer_offset::Column::Consumer.eq(self.consumer))
            .add(consumer_offset::Column::Topic.eq(self.topic))
            .add(consumer_offset::Column::Partition.eq(self.partition))
    }
}

/// The stored next offset, creating the row at `initial` if there is none.
pub(crate) async fn load_or_init_offset(
    db: &DatabaseConnection,
    key: OffsetKey<'_>,
    initial: i64,
) -> Result<i64, DbErr> {
    let txn = begin_write(db).await?;
    let found = consumer_offset::Entity::find()
        .filter(key.filter())
        .one(&txn)
        .await?;
    let next = match found {
        Some(row) => row.next_offset,
        None => {
            consumer_offset::ActiveModel {
                consumer: Set(key.consumer.to_owned()),
                topic: Set(key.topic.to_owned()),
                partition: Set(key.partition),
                next_offset: Set(initial),
                updated_at: Set(entities::to_db_precision(Utc::now())),
            }
            .insert(&txn)
            .await?;
            initial
        }
    };
    txn.commit().await?;
    Ok(next)
}

/// Compare-and-set: moves the stored offset from `expected` to `next`. False if it no longer
/// equals `expected` (another instance moved it, or the row is gone), or if the key names a
/// lease owner that no longer holds an unexpired lease on the partition.
pub(crate) async fn advance_offset(
    txn: &DatabaseTransaction,
    key: OffsetKey<'_>,
    expected: i64,
    next: i64,
) -> Result<bool, DbErr> {
    let mut update = consumer_offset::Entity::update_many()
        .col_expr(consumer_offset::Column::NextOffset, Expr::val(next))
        .col_expr(
            consumer_offset::Column::UpdatedAt,
            Expr::val(entities::to_db_precision(Utc::now())),
        )
        .filter(key.filter())
        .filter(consumer_offset::Column::NextOffset.eq(expected));
    if let Some(owner) = key.lease_owner {
        let held = super::leases::held_lease(
            txn.get_database_backend(),
            key.consumer,
            key.topic,
            key.partition,
            owner,
        );
        update = update.filter(Expr::exists(held));
    }
    let result = update.exec(txn).await?;
    Ok(result.rows_affected == 1)
}

/// Records `ids` as processed by `consumer` when none of them is yet, the usual case: one
/// insert, nothing sent back. False when some were there already (nothing tells which); the
/// caller then rolls back and uses [`mark_processed`], which does.
pub(crate) async fn mark_new<C: ConnectionTrait>(
    conn: &C,
    consumer: &str,
    ids: &[Uuid],
) -> Result<bool, DbErr> {
    let now = entities::to_db_precision(Utc::now());
    for chunk in ids.chunks(PROCESSED_CHUNK) {
        let inserted = conn
            .execute(&processed_insert(consumer, chunk, now))
            .await?
            .rows_affected();
        if inserted != chunk.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Records `ids` as processed by `consumer`; returns those that were not already.
///
/// One id: an insert that returns the id when it was not there. More: first a read of those
/// already there, then one insert of the others, whose row count must match (returning every
/// inserted id would send a row back per event). A count that does not match means another
/// transaction stored one of the ids between the two statements (on PostgreSQL, the same event
/// applied at once from a second copy on another partition): that is an error, so the caller
/// rolls back and applies the records one at a time, where the one-id form decides.
pub(crate) async fn mark_processed<C: ConnectionTrait>(
    conn: &C,
    consumer: &str,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, DbErr> {
    let now = entities::to_db_precision(Utc::now());
    if let [id] = ids {
        let mut insert = processed_insert(consumer, ids, now);
        insert.returning_col(processed_event::Column::EventId);
        let inserted = conn.query_one(&insert).await?;
        return Ok(inserted.map(|_| *id).into_iter().collect());
    }
    let mut fresh: HashSet<Uuid> = ids.iter().copied().collect();
    for chunk in ids.chunks(PROCESSED_CHUNK) {
        let there = Query::select()
            .column(processed_event::Column::EventId)
            .from(processed_event::Entity)
            .and_where(processed_event::Column::Consumer.eq(consumer))
            .and_where(processed_event::Column::EventId.is_in(chunk.iter().copied()))
            .to_owned();
        for row in conn.query_all(&there).await? {
            fresh.remove(&row.try_get::<Uuid>("", "event_id")?);
        }
    }
    let new: Vec<Uuid> = fresh.iter().copied().collect();
    if !mark_new(conn, consumer, &new).await? {
        return Err(DbErr::Custom(format!(
            "an event was stored as processed by {consumer} by another transaction meanwhile"
        )));
    }
    Ok(fresh)
}

/// `INSERT INTO processed_events … ON CONFLICT DO NOTHING` of `ids`, processed `now`.
fn processed_insert(
    consumer: &str,
    ids: &[Uuid],
    now: chrono::DateTime<Utc>,
) -> sea_orm::sea_query::InsertStatement {
    let mut insert = Query::insert();
    insert.into_table(processed_event::Entity).columns([
        processed_event::Column::Consumer,
        processed_event::Column::EventId,
        processed_event::Column::ProcessedAt,
    ]);
    for id in ids {
        insert.values_panic([Expr::val(consumer), Expr::val(*id), Expr::val(now)]);
    }
    insert.on_conflict(
        OnConflict::columns([
            processed_event::Column::Consumer,
            processed_event::Column::EventId,
        ])
        .do_nothing()
        .to_owned(),
    );
    insert
}

/// Why and how often a record failed, for its dead letter.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    pub consumer: &'a str,
    pub event_id: Option<Uuid>,
    pub error: &'a str,
    pub attempts: u32,
}

/// Parks `record`, inside `txn`: a `dead_letters` row and its copy on `<topic>.dlq` through
/// the outbox. Returns the dead letter's id. The caller advances the offset in the same
/// transaction.
pub(crate) async fn park(
    txn: &DatabaseTransaction,
    record: &LogRecord,
    failure: &Failure<'_>,
) -> Result<i64, DbErr> {
    let now = entities::to_db_precision(Utc::now());
    let payload = record
        .value
        .as_deref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let attempts = i32::try_from(failure.attempts).unwrap_or(i32::MAX);
    let headers = to_json(&record.headers)?;
    let dead_letter = dead_letter::ActiveModel {
        consumer: Set(failure.consumer.to_owned()),
        topic: Set(record.topic.clone()),
        partition: Set(record.partition),
        offset: Set(record.offset),
        event_id: Set(failure.event_id),
        key: Set(record.key.clone()),
        payload: Set(payload.clone()),
        headers: Set(headers),
        error: Set(truncate(failure.error, DEAD_LETTER_ERROR_MAX).to_owned()),
        attempts: Set(attempts),
        status: Set(crate::dead_letters::DeadLetterStatus::Parked),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;

    let mut dlq_headers: BTreeMap<String, String> = record.headers.clone();
    for (name, value) in [
        (header::DLQ_ORIGINAL_TOPIC, record.topic.clone()),
        (header::DLQ_ORIGINAL_PARTITION, record.partition.to_string()),
        (header::DLQ_ORIGINAL_OFFSET, record.offset.to_string()),
        (header::DLQ_CONSUMER, failure.consumer.to_owned()),
        (
            header::DLQ_ERROR,
            truncate(failure.error, DLQ_ERROR_HEADER_MAX).to_owned(),
        ),
        (header::DLQ_ATTEMPTS, failure.attempts.to_string()),
    ] {
        dlq_headers.insert(name.to_owned(), value);
    }
    // The column is unique and the original event may be in the same table (embedded mode):
    // the copy gets its own row id; its ce_id header keeps the event's id.
    crate::outbox::row(
        Uuid::now_v7(),
        &crate::topics::dlq(&record.topic),
        record.key.as_deref().unwrap_or_default(),
        payload,
        &dlq_headers,
        now,
    )?
    .insert(txn)
    .await?;
    Ok(dead_letter.id)
}

fn to_json(headers: &BTreeMap<String, String>) -> Result<String, DbErr> {
    serde_json::to_string(headers)
        .map_err(|e| DbErr::Custom(format!("BUG: headers do not serialise: {e}")))
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn record(headers: &[(&str, &str)], value: Option<&str>) -> LogRecord {
        LogRecord {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            key: Some("k".into()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn the_event_id_comes_from_the_ce_id_header_first() {
        let id = Uuid::now_v7();
        let other = Uuid::now_v7();
        let r = record(
            &[("ce_id", &id.to_string())],
            Some(&format!(r#"{{"id":"{other}"}}"#)),
        );
        assert_eq!(event_id(&r), Ok(id));
    }

    #[test]
    fn the_event_id_falls_back_to_the_payload_id() {
        let id = Uuid::now_v7();
        let r = record(&[], Some(&format!(r#"{{"id":"{id}","type":"x"}}"#)));
        assert_eq!(event_id(&r), Ok(id));
    }

    #[test]
    fn records_without_a_uuid_event_id_have_none() {
        assert!(event_id(&record(&[], Some("not json"))).is_err());
        assert!(event_id(&record(&[], Some(r#"{"id":"abc"}"#))).is_err());
        assert!(event_id(&record(&[], None)).is_err());
        assert!(event_id(&record(&[("ce_id", "nope")], Some("{}"))).is_err());
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
