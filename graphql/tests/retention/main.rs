//! Retention on SQLite and PostgreSQL: what each table keeps and what a pass deletes.
//!
//! `outbox` (the embedded log below the slowest consumer and past the minimum age; published
//! rows in distributed mode), `processed_events` (pruned past the horizon unless a
//! redelivery is still possible; deduplication holds within it), and `tables` (webhook
//! deliveries, dead letters, read notifications, zero settings, bounded batches, the loop).
//! Rows are written directly with chosen timestamps; every pass gets its clock as a value.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod outbox;
mod processed_events;
mod tables;

use chrono::{DateTime, Duration, Utc};
use entities::{consumer_offset, outbox as outbox_rows};
use graphql::retention::RetentionPolicy;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

const TASK_EVENTS: &str = stream::topics::TASK_EVENTS;
const REMINDERS: &str = stream::topics::REMINDERS;

/// The default settings, with a batch size the tests choose.
fn policy(batch_rows: u64) -> RetentionPolicy {
    RetentionPolicy {
        batch_rows,
        ..graphql::retention::RetentionArgs::default().policy()
    }
}

/// No table pruned.
fn keep_everything() -> RetentionPolicy {
    RetentionPolicy {
        outbox: None,
        processed_events: None,
        webhook_deliveries: None,
        dead_letters: None,
        read_notifications: None,
        ..policy(1_000)
    }
}

fn embedded(registered: &[(&str, &str)]) -> stream::retention::LogMode {
    stream::retention::LogMode::Embedded {
        registered: registered
            .iter()
            .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
            .collect(),
    }
}

fn ago(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    entities::to_db_precision(now - Duration::days(days))
}

/// Appends one outbox row of `topic` created at `created_at`, as the writer would (the
/// `ce_id` header is the row's event id). Returns the row.
async fn append(
    db: &DatabaseConnection,
    topic: &str,
    created_at: DateTime<Utc>,
) -> outbox_rows::Model {
    let event_id = Uuid::now_v7();
    append_copy(db, topic, event_id, event_id, created_at).await
}

/// Appends an outbox row with its own row `event_id` carrying the CloudEvent `ce_id` (a
/// copy of an event, as `EmbeddedLog::produce` writes one, has a fresh row id).
async fn append_copy(
    db: &DatabaseConnection,
    topic: &str,
    row_event_id: Uuid,
    ce_id: Uuid,
    created_at: DateTime<Utc>,
) -> outbox_rows::Model {
    outbox_rows::ActiveModel {
        event_id: Set(row_event_id),
        topic: Set(topic.to_owned()),
        key: Set("k".to_owned()),
        payload: Set(format!(r#"{{"id":"{ce_id}"}}"#)),
        headers: Set(format!(r#"{{"ce_id":"{ce_id}"}}"#)),
        created_at: Set(created_at),
        published_at: Set(None),
        partition: Set(None),
        offset: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
}

/// Stores `consumer`'s next offset on partition 0 of `topic`.
async fn set_offset(db: &DatabaseConnection, consumer: &str, topic: &str, next_offset: i64) {
    consumer_offset::Entity::delete_many()
        .filter(consumer_offset::Column::Consumer.eq(consumer))
        .filter(consumer_offset::Column::Topic.eq(topic))
        .exec(db)
        .await
        .unwrap();
    consumer_offset::ActiveModel {
        consumer: Set(consumer.to_owned()),
        topic: Set(topic.to_owned()),
        partition: Set(0),
        next_offset: Set(next_offset),
        updated_at: Set(entities::to_db_precision(Utc::now())),
    }
    .insert(db)
    .await
    .unwrap();
}

/// The ids of `topic`'s outbox rows, in order.
async fn outbox_ids(db: &DatabaseConnection, topic: &str) -> Vec<i64> {
    outbox_rows::Entity::find()
        .filter(outbox_rows::Column::Topic.eq(topic))
        .order_by_asc(outbox_rows::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Runs one pass and asserts no table failed.
async fn pass(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    mode: &stream::retention::LogMode,
    now: DateTime<Utc>,
) -> graphql::retention::PassReport {
    let report = graphql::retention::prune_once(db, policy, mode, now).await;
    assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
    report
}
