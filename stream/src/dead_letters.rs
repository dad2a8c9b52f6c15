//! The dead-letter queue as service functions: list, show, replay and discard the records
//! consumers parked (see [`crate::consumer`]). A CLI presents them; these know nothing of
//! presentation.
//!
//! Replay runs the parked record through the consumer's own handler, in one transaction that
//! records its event id in `processed_events` and marks the row `REPLAYED`: after the handler
//! is fixed a replay applies exactly once, and if the event was applied meanwhile (it was
//! redelivered and succeeded) the replay applies nothing. There is no broker round-trip, so a
//! replay does not wait behind the partition, and it reaches only the consumer that parked it.
//! A replayed event may be older than events applied since; handlers guard with the event's
//! `aggregateversion` where order matters.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::consumer::{Handler, HandlerError};
use crate::log::LogRecord;
use crate::outbox::begin_write;
use entities::dead_letter;

pub use entities::dead_letter::DeadLetterStatus;

/// Why a dead-letter operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no dead letter has id {0}")]
    NotFound(i64),
    #[error("dead letter {id} is {status}; only PARKED dead letters can be replayed or discarded")]
    NotParked { id: i64, status: DeadLetterStatus },
    #[error(
        "dead letter {0} has no event id, so a replay could not be deduplicated; discard it \
         (and fix the producer)"
    )]
    NoEventId(i64),
    #[error(
        "dead letter {id} belongs to consumer {consumer:?}; it cannot be replayed through the \
         handler of {handler:?}"
    )]
    WrongHandler {
        id: i64,
        consumer: String,
        handler: String,
    },
    /// The handler failed again; the dead letter stays parked, its error and attempts updated.
    #[error("replaying dead letter {id} failed: {source}")]
    Handler {
        id: i64,
        #[source]
        source: HandlerError,
    },
    /// The row's headers are corrupt; the record cannot be rebuilt as it was consumed.
    #[error("dead letter {id} cannot be replayed: {source}")]
    CorruptHeaders {
        id: i64,
        #[source]
        source: entities::outbox::CorruptHeaders,
    },
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// What a successful replay did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The handler applied the record.
    Applied,
    /// The event had already been applied by this consumer; nothing ran.
    AlreadyProcessed,
}

/// Dead letters, oldest first, optionally only those with `status`; at most `limit`.
pub async fn list(
    db: &DatabaseConnection,
    status: Option<DeadLetterStatus>,
    limit: u64,
) -> Result<Vec<dead_letter::Model>, DbErr> {
    let mut query = dead_letter::Entity::find();
    if let Some(status) = status {
        query = query.filter(dead_letter::Column::Status.eq(status));
    }
    query
        .order_by_asc(dead_letter::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// One dead letter.
pub async fn show(db: &DatabaseConnection, id: i64) -> Result<dead_letter::Model, DeadLetterError> {
    dead_letter::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DeadLetterError::NotFound(id))
}

/// Marks a parked dead letter `DISCARDED`: it will not be replayed. Returns the updated row.
pub async fn discard(
    db: &DatabaseConnection,
    id: i64,
) -> Result<dead_letter::Model, DeadLetterError> {
    let txn = begin_write(db).await?;
    let row = load_parked(&txn, id).await?;
    let mut row = row.into_active_model();
    row.status = Set(DeadLetterStatus::Discarded);
    row.updated_at = Set(entities::to_db_precision(Utc::now()));
    let row = row.update(&txn).await?;
    txn.commit().await?;
    Ok(row)
}

/// Parks `record` for `consumer` inside `txn`, as the consumer runtime does for a record that
/// keeps failing: a `dead_letters` row and its copy on `<topic>.dlq` through the outbox.
/// For work that fails after its record was consumed (a webhook that stays unreachable):
/// `event_id` is what a replay is deduplicated on. Returns the dead letter's id.
pub async fn park(
    txn: &sea_orm::DatabaseTransaction,
    record: &LogRecord,
    consumer: &str,
    event_id: Option<uuid::Uuid>,
    error: &str,
    attempts: u32,
) -> Result<i64, sea_orm::DbErr> {
    let failure = crate::consumer::store::Failure {
        consumer,
        event_id,
        error,
        attempts,
    };
    crate::consumer::store::park(txn, record, &failure).await
}

/// Runs a parked dead letter through `handler` (the handler of the consumer that parked it)
/// in one transaction, deduplicated on its event id, and marks it `REPLAYED`.
pub async fn replay<H: Handler>(
    db: &DatabaseConnection,
    id: i64,
    handler: &H,
) -> Result<ReplayOutcome, DeadLetterError> {
    let txn = begin_write(db).await?;
    let row = load_parked(&txn, id).await?;
    if row.consumer != handler.name() {
        return Err(DeadLetterError::WrongHandler {
            id,
            consumer: row.consumer,
            handler: handler.name().to_owned(),
        });
    }
    let event_id = row.event_id.ok_or(DeadLetterError::NoEventId(id))?;
    let record =
        to_record(&row).map_err(|source| DeadLetterError::CorruptHeaders { id, source })?;
    let fresh = !crate::consumer::store::mark_processed(&txn, &row.consumer, &[event_id])
        .await?
        .is_empty();
    if fresh && let Err(source) = handler.handle(&txn, &record).await {
        txn.rollback().await?;
        record_failure(db, id, &source).await?;
        return Err(DeadLetterError::Handler { id, source });
    }
    let mut row = row.into_active_model();
    row.status = Set(DeadLetterStatus::Replayed);
    row.updated_at = Set(entities::to_db_precision(Utc::now()));
    row.update(&txn).await?;
    txn.commit().await?;
    // The handler may have written outbox rows.
    crate::outbox::notify_committed();
    Ok(if fresh {
        ReplayOutcome::Applied
    } else {
        ReplayOutcome::AlreadyProcessed
    })
}

/// The row, locked against a concurrent replay or discard (PostgreSQL; SQLite's
/// `BEGIN IMMEDIATE` already serialises), if it exists and is parked.
async fn load_parked(
    txn: &sea_orm::DatabaseTransaction,
    id: i64,
) -> Result<dead_letter::Model, DeadLetterError> {
    let row = dead_letter::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(DeadLetterError::NotFound(id))?;
    if row.status != DeadLetterStatus::Parked {
        return Err(DeadLetterError::NotParked {
            id,
            status: row.status,
        });
    }
    Ok(row)
}

/// Keeps the latest error and counts the attempt, on a parked row.
async fn record_failure(
    db: &DatabaseConnection,
    id: i64,
    error: &HandlerError,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    if let Some(row) = dead_letter::Entity::find_by_id(id)
        .filter(dead_letter::Column::Status.eq(DeadLetterStatus::Parked))
        .one(&txn)
        .await?
    {
        let attempts = row.attempts.saturating_add(1);
        let mut row = row.into_active_model();
        row.error = Set(format!("replay: {error}"));
        row.attempts = Set(attempts);
        row.updated_at = Set(entities::to_db_precision(Utc::now()));
        row.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The parked record as the handler first saw it. The original record timestamp is not
/// stored; the time it was parked stands in for it.
fn to_record(row: &dead_letter::Model) -> Result<LogRecord, entities::outbox::CorruptHeaders> {
    let headers = entities::outbox::decode_headers(&row.headers)?;
    Ok(LogRecord {
        topic: row.topic.clone(),
        partition: row.partition,
        offset: row.offset,
        key: row.key.clone(),
        value: Some(row.payload.clone().into_bytes()),
        headers,
        timestamp: row.created_at,
    })
}
