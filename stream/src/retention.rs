//! Retention of the event log's own tables: `outbox`, `processed_events` and `dead_letters`.
//! Each function deletes what is provably no longer needed, older than a cutoff the caller
//! computes from its clock, in bounded batches ([`in_batches`]); the gateway's pruning loop
//! (`graphql::retention`) calls them on a timer, in both modes, with one setting per table.
//!
//! It deliberately decides nothing about ages or schedules (the caller passes the cutoff and
//! the batch size) and knows nothing of the subscribers' own tables.
//!
//! # What is safe to delete
//!
//! - **Outbox, distributed mode** ([`LogMode::Distributed`]): the broker holds the history, so
//!   a row is only the relay's work item. Published rows (`published_at` set) older than the
//!   cutoff go; a pending row is never deleted, whatever its age (the relay still owes it).
//! - **Outbox, embedded mode** ([`LogMode::Embedded`]): the table *is* the log (see
//!   [`crate::embedded`]: a topic's offsets are outbox ids, one partition). A row of topic `T`
//!   is deleted only when all three hold: (1) every consumer with a stored offset on `T` has
//!   moved past it (`id < min(next_offset)`), and every *registered* consumer of `T` has a
//!   stored offset at all (one that has not started yet would read from 0); (2) it is not
//!   `T`'s newest row, because that row is the topic's end: deleting it would move the end
//!   backwards and halt the caught-up consumers with an out-of-range offset; (3) it was
//!   created before the cutoff, so `taskstream events tail` still shows recent history. A
//!   topic nobody consumes (`task-updates`, the `.dlq` twins) is pruned by age alone.
//! - **Processed events**: see [`prune_processed_events`].
//! - **Dead letters**: only `DISCARDED` and `REPLAYED` ones past the cutoff; a `PARKED` dead
//!   letter waits for an operator forever.
//!
//! Several processes may prune at once (gateway replicas, `taskstream relay`): every batch
//! re-reads what it deletes, so they only repeat work.

use std::future::Future;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::dead_letters::DeadLetterStatus;
use entities::{consumer_offset, dead_letter, outbox, processed_event};

/// Rows deleted per statement unless the caller says otherwise: small enough that one
/// statement holds SQLite's write lock (or PostgreSQL's row locks) for milliseconds, so
/// requests and consumers never queue behind retention; large enough that a backlog of a
/// million rows is a thousand statements.
pub const BATCH_ROWS: u64 = 1_000;

/// Which transport reads the outbox, which decides what an outbox row still means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogMode {
    /// The outbox table is the log. `registered` lists the `(consumer, topic)` pairs that
    /// will read it; a topic whose registered consumer has no stored offset yet is kept whole.
    Embedded { registered: Vec<(String, String)> },
    /// The relay publishes the outbox to a broker; consumer offsets are the broker's.
    Distributed,
}

/// What pruning one table did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rows deleted.
    pub rows: u64,
    /// Delete statements that removed at least one row.
    pub batches: u64,
    /// The most rows one statement removed (never more than the batch size).
    pub largest_batch: u64,
}

impl Pruned {
    fn add_batch(&mut self, deleted: u64) {
        if deleted > 0 {
            self.rows += deleted;
            self.batches += 1;
            self.largest_batch = self.largest_batch.max(deleted);
        }
    }

    /// Adds another table's (or topic's) counts to these.
    pub fn merge(&mut self, other: Pruned) {
        self.rows += other.rows;
        self.batches += other.batches;
        self.largest_batch = self.largest_batch.max(other.largest_batch);
    }
}

/// Runs `step` until it finds nothing more to delete. Each step selects at most one batch of
/// keys and deletes them, returning `(selected, deleted)`; `deleted` may be smaller when
/// another pruner got there first. Yields between batches so other tasks run.
pub async fn in_batches<F, Fut>(mut step: F) -> Result<Pruned, DbErr>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(u64, u64), DbErr>>,
{
    let mut pruned = Pruned::default();
    loop {
        let (selected, deleted) = step().await?;
        pruned.add_batch(deleted);
        if selected == 0 {
            return Ok(pruned);
        }
        tokio::task::yield_now().await;
    }
}

/// Deletes outbox rows no reader needs any more and created (embedded) or published
/// (distributed) before `cutoff`; see the module doc for the rules of each mode.
pub async fn prune_outbox(
    db: &DatabaseConnection,
    mode: &LogMode,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    let batch = batch.max(1);
    match mode {
        LogMode::Distributed => {
            in_batches(async || {
                let ids: Vec<i64> = outbox::Entity::find()
                    .select_only()
                    .column(outbox::Column::Id)
                    .filter(outbox::Column::PublishedAt.lt(cutoff))
                    .order_by_asc(outbox::Column::Id)
                    .limit(batch)
                    .into_tuple()
                    .all(db)
                    .await?;
                delete_outbox_ids(db, ids).await
            })
            .await
        }
        LogMode::Embedded { registered } => {
            let mut pruned = Pruned::default();
            for (topic, bound) in embedded_bounds(db, registered).await? {
                let topic = topic.as_str();
                pruned.merge(
                    in_batches(async || {
                        let ids: Vec<i64> = outbox::Entity::find()
                            .select_only()
                            .column(outbox::Column::Id)
                            .filter(outbox::Column::Topic.eq(topic))
                            .filter(outbox::Column::Id.lt(bound))
                            .filter(outbox::Column::CreatedAt.lt(cutoff))
                            .order_by_asc(outbox::Column::Id)
                            .limit(batch)
                            .into_tuple()
                            .all(db)
                            .await?;
                        delete_outbox_ids(db, ids).await
                    })
                    .await?,
                );
            }
            Ok(pruned)
        }
    }
}

/// Per topic of the embedded log, the id below which rows may go: the smaller of the topic's
/// newest id (kept: it is the end) and the slowest stored offset on it. Topics with a
/// registered consumer that has no stored offset are left out (nothing of them may go).
async fn embedded_bounds(
    db: &DatabaseConnection,
    registered: &[(String, String)],
) -> Result<Vec<(String, i64)>, DbErr> {
    let newest: Vec<(String, i64)> = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Topic)
        .column_as(outbox::Column::Id.max(), "newest")
        .group_by(outbox::Column::Topic)
        .into_tuple()
        .all(db)
        .await?;
    let offsets: Vec<(String, String, i64)> = consumer_offset::Entity::find()
        .select_only()
        .column(consumer_offset::Column::Consumer)
        .column(consumer_offset::Column::Topic)
        .column_as(consumer_offset::Column::NextOffset.min(), "slowest")
        .group_by(consumer_offset::Column::Consumer)
        .group_by(consumer_offset::Column::Topic)
        .into_tuple()
        .all(db)
        .await?;
    let mut bounds = Vec::with_capacity(newest.len());
    for (topic, newest_id) in newest {
        let not_started = registered.iter().any(|(consumer, t)| {
            *t == topic
                && !offsets
                    .iter()
                    .any(|(c, ot, _)| c == consumer && *ot == topic)
        });
        if not_started {
            continue;
        }
        let slowest = offsets
            .iter()
            .filter(|(_, t, _)| *t == topic)
            .map(|(_, _, next)| *next)
            .min()
            .unwrap_or(i64::MAX);
        bounds.push((topic, newest_id.min(slowest)));
    }
    Ok(bounds)
}

async fn delete_outbox_ids(db: &DatabaseConnection, ids: Vec<i64>) -> Result<(u64, u64), DbErr> {
    if ids.is_empty() {
        return Ok((0, 0));
    }
    let selected = ids.len() as u64;
    let result = outbox::Entity::delete_many()
        .filter(outbox::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok((selected, result.rows_affected))
}

/// Deletes `processed_events` entries recorded before `cutoff` that can no longer meet a
/// redelivery of their event.
///
/// Why this keeps deduplication correct: an entry exists to skip a *second* delivery of an
/// event to its consumer, and a consumer only ever reads the log at or after its committed
/// offset (the offset and the entry commit in one transaction). So a second delivery can
/// only come from a copy of the event that is still ahead of that offset, or one that will
/// be written there later:
/// - embedded mode: the copy would be the event's outbox row at or after the consumer's
///   stored offset on that row's topic; such entries are kept;
/// - distributed mode: the relay republishes a row only while it is pending (a crash between
///   produce and marking it published), so entries whose outbox row is still pending are
///   kept, and so are entries whose row was published at or after the consumer's committed
///   offset on that partition (the copy it has not read yet).
///
/// Every other duplicate (a producer retry inside the broker client, a tool re-appending an
/// event under a fresh row id) lands within seconds of the original, far inside the age
/// horizon the caller keeps on top of these rules.
pub async fn prune_processed_events(
    db: &DatabaseConnection,
    mode: &LogMode,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    let batch = batch.max(1);
    in_batches(async || {
        let keys: Vec<(String, Uuid)> = processed_event::Entity::find()
            .select_only()
            .column(processed_event::Column::Consumer)
            .column(processed_event::Column::EventId)
            .filter(processed_event::Column::ProcessedAt.lt(cutoff))
            .filter(sea_orm::sea_query::ExprTrait::not(Expr::exists(
                redelivery_possible(mode),
            )))
            .order_by_asc(processed_event::Column::ProcessedAt)
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        let selected = keys.len() as u64;
        let mut by_consumer: std::collections::BTreeMap<String, Vec<Uuid>> = Default::default();
        for (consumer, event_id) in keys {
            by_consumer.entry(consumer).or_default().push(event_id);
        }
        let mut deleted = 0;
        for (consumer, ids) in by_consumer {
            deleted += processed_event::Entity::delete_many()
                .filter(processed_event::Column::Consumer.eq(consumer))
                .filter(processed_event::Column::EventId.is_in(ids))
                .exec(db)
                .await?
                .rows_affected;
        }
        Ok((selected, deleted))
    })
    .await
}

/// A correlated subquery over the outer `processed_events` row: a row exists when its event
/// may still be delivered to its consumer again (see [`prune_processed_events`]).
fn redelivery_possible(mode: &LogMode) -> SelectStatement {
    use sea_orm::sea_query::ExprTrait;
    let pe = |c: processed_event::Column| Expr::col((processed_event::Entity, c));
    let ob = |c: outbox::Column| Expr::col((outbox::Entity, c));
    let co = |c: consumer_offset::Column| Expr::col((consumer_offset::Entity, c));
    let same_event = ob(outbox::Column::EventId).eq(pe(processed_event::Column::EventId));
    match mode {
        LogMode::Embedded { .. } => Query::select()
            .expr(Expr::val(1))
            .from(outbox::Entity)
            .inner_join(
                consumer_offset::Entity,
                co(consumer_offset::Column::Topic).eq(ob(outbox::Column::Topic)),
            )
            .and_where(same_event)
            .and_where(
                co(consumer_offset::Column::Consumer).eq(pe(processed_event::Column::Consumer)),
            )
            .and_where(ob(outbox::Column::Id).gte(co(consumer_offset::Column::NextOffset)))
            .to_owned(),
        LogMode::Distributed => {
            let unread_copy = Query::select()
                .expr(Expr::val(1))
                .from(consumer_offset::Entity)
                .and_where(
                    co(consumer_offset::Column::Consumer).eq(pe(processed_event::Column::Consumer)),
                )
                .and_where(co(consumer_offset::Column::Topic).eq(ob(outbox::Column::Topic)))
                .and_where(co(consumer_offset::Column::Partition).eq(ob(outbox::Column::Partition)))
                .and_where(co(consumer_offset::Column::NextOffset).lte(ob(outbox::Column::Offset)))
                .to_owned();
            Query::select()
                .expr(Expr::val(1))
                .from(outbox::Entity)
                .and_where(same_event)
                .and_where(
                    ob(outbox::Column::PublishedAt)
                        .is_null()
                        .or(Expr::exists(unread_copy)),
                )
                .to_owned()
        }
    }
}

/// Deletes `DISCARDED` and `REPLAYED` dead letters last changed before `cutoff`. `PARKED`
/// ones are never deleted: they wait for an operator's replay or discard.
pub async fn prune_dead_letters(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Pruned, DbErr> {
    let batch = batch.max(1);
    let finished = [
        DeadLetterStatus::Discarded.as_str(),
        DeadLetterStatus::Replayed.as_str(),
    ];
    in_batches(async || {
        let ids: Vec<i64> = dead_letter::Entity::find()
            .select_only()
            .column(dead_letter::Column::Id)
            .filter(dead_letter::Column::Status.is_in(finished))
            .filter(dead_letter::Column::UpdatedAt.lt(cutoff))
            .order_by_asc(dead_letter::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let selected = ids.len() as u64;
        let result = dead_letter::Entity::delete_many()
            .filter(dead_letter::Column::Id.is_in(ids))
            // Re-checked at delete time: a row whose status changed in between stays.
            .filter(dead_letter::Column::Status.is_in(finished))
            .exec(db)
            .await?;
        Ok((selected, result.rows_affected))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::Pruned;

    #[test]
    fn batches_that_delete_nothing_are_not_counted() {
        let mut p = Pruned::default();
        p.add_batch(3);
        p.add_batch(0);
        p.add_batch(5);
        assert_eq!(
            p,
            Pruned {
                rows: 8,
                batches: 2,
                largest_batch: 5
            }
        );
    }
}
