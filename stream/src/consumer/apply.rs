//! Applying fetched records: batches, the one-record fallback with retries, and parking.
//! The guarantees are described in the parent module.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbErr};
use tracing::{Instrument, debug, error, warn};
use uuid::Uuid;

use super::partition::Partition;
use super::store::{self, Failure};
use super::{Handler, HandlerError, HandlerOutcome};
use crate::log::{LogReader, LogRecord};
use crate::outbox::{begin_write, header, notify_committed};

/// Where a step of the loop left the partition.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The records were applied (or parked); the offset moved past them.
    Advanced,
    /// The stored offset no longer matches ours: reload it and fetch again.
    Conflict,
    /// Shutdown was requested during a backoff.
    Shutdown,
}

/// How a batch attempt ended, when the database answered.
#[derive(Debug)]
enum BatchOutcome {
    Committed,
    Conflict,
    /// Record `k` of the batch failed (no event id, or its handler failed); nothing committed.
    FailedAt(usize),
}

/// Records of one committed transaction by outcome, counted into the metrics after the commit
/// (a rolled-back attempt counts nothing).
#[derive(Debug, Default)]
struct Tally {
    applied: u64,
    ignored: u64,
    duplicate: u64,
}

impl Tally {
    fn count(&mut self, outcome: HandlerOutcome) {
        match outcome {
            HandlerOutcome::Applied => self.applied += 1,
            HandlerOutcome::Ignored => self.ignored += 1,
        }
    }

    fn publish(&self, config: &super::ConsumerConfig) {
        let metrics = telemetry::metrics::metrics();
        let (consumer, topic) = (&config.consumer, &config.topic);
        metrics.count_records(consumer, topic, "applied", self.applied);
        metrics.count_records(consumer, topic, "ignored", self.ignored);
        metrics.count_records(consumer, topic, "duplicate", self.duplicate);
    }
}

/// The span of one record's handler: a child of the trace the event carries (its
/// `ce_traceparent` header: the relay's publish span, or in embedded mode the span that
/// wrote it), so the handler and the follow-up events it writes join that trace.
fn record_span(consumer: &str, record: &LogRecord) -> tracing::Span {
    let span = tracing::info_span!(
        "consumer.process",
        otel.name = %format_args!("{} process", record.topic),
        otel.kind = "consumer",
        consumer,
        messaging.destination.name = %record.topic,
        messaging.destination.partition.id = record.partition,
        messaging.kafka.offset = record.offset,
        event_type = record.headers.get(header::TYPE).map_or("-", String::as_str),
    );
    telemetry::continue_trace(
        &span,
        record.headers.get(header::TRACEPARENT).map(String::as_str),
    );
    span
}

/// Whether `handler` skips `record`: its `ce_type` header names a type the handler does not
/// act on ([`Handler::event_types`]).
fn skips<H: Handler>(handler: &H, record: &LogRecord) -> bool {
    match (handler.event_types(), record.headers.get(header::TYPE)) {
        (Some(types), Some(event_type)) => !types.contains(&event_type.as_str()),
        _ => false,
    }
}

/// A skipped record still gets its [`record_span`], so its trace shows the consumer read it,
/// as it shows a record the handler ignored.
fn trace_skipped(consumer: &str, record: &LogRecord) {
    record_span(consumer, record).in_scope(|| {
        debug!(
            offset = record.offset,
            "not an event type this consumer acts on; skipped"
        );
    });
}

/// How a one-record attempt ended, when the database answered.
enum SingleOutcome {
    Committed,
    Conflict,
    Failed(HandlerError),
}

impl<L: LogReader + 'static, H: Handler + 'static> Partition<L, H> {
    /// Applies fetched records in order, in batches of at most `max_batch_records`.
    pub(super) async fn apply(&mut self, records: &[LogRecord]) -> Step {
        for chunk in records.chunks(self.config().max_batch_records) {
            let step = self.apply_chunk(chunk).await;
            if step != Step::Advanced {
                return step;
            }
            if self.shutdown.is_requested() {
                return Step::Shutdown;
            }
        }
        Step::Advanced
    }

    /// Applies `chunk` as one batch, or, where a record fails, the records before it as a
    /// batch and the failing one through [`Self::apply_one`].
    async fn apply_chunk(&mut self, chunk: &[LogRecord]) -> Step {
        let mut rest = chunk;
        while !rest.is_empty() {
            let mut singles = 1;
            if rest.len() > 1 {
                match self.try_batch(rest).await {
                    Ok(BatchOutcome::Committed) => return Step::Advanced,
                    Ok(BatchOutcome::Conflict) => return Step::Conflict,
                    Ok(BatchOutcome::FailedAt(k)) => {
                        singles = k + 1;
                        if k > 1 {
                            match self.try_batch(&rest[..k]).await {
                                Ok(BatchOutcome::Committed) => {
                                    rest = &rest[k..];
                                    singles = 1;
                                }
                                Ok(BatchOutcome::Conflict) => return Step::Conflict,
                                Ok(BatchOutcome::FailedAt(_)) | Err(_) => {}
                            }
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "batch failed on a database error; applying its records one by one");
                    }
                }
            }
            for record in &rest[..singles] {
                let step = self.apply_one(record).await;
                if step != Step::Advanced {
                    return step;
                }
            }
            rest = &rest[singles..];
        }
        Step::Advanced
    }

    /// One transaction for the whole batch; any failure rolls all of it back.
    async fn try_batch(&mut self, batch: &[LogRecord]) -> Result<BatchOutcome, DbErr> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(BatchOutcome::Committed);
        };
        let span = tracing::debug_span!(
            "batch",
            first_offset = first.offset,
            last_offset = last.offset
        );
        async {
            // `None`: a record the handler skips.
            let mut ids = Vec::with_capacity(batch.len());
            for (k, record) in batch.iter().enumerate() {
                if skips(&self.shared.handler, record) {
                    ids.push(None);
                    continue;
                }
                match store::event_id(record) {
                    Ok(id) => ids.push(Some(id)),
                    Err(_) => return Ok(BatchOutcome::FailedAt(k)),
                }
            }
            let consumed: Vec<Uuid> = ids.iter().flatten().copied().collect();
            let next = last.offset + 1;
            if consumed.is_empty() {
                self.skip_lazily(batch, next);
                return Ok(BatchOutcome::Committed);
            }
            let consumer = &self.shared.config.consumer;
            // First as if every event were new (one insert); when some were processed before
            // (a redelivery), again with a read of which. `fresh`: the new ones, `None` for all.
            let mut exact = false;
            let (txn, fresh) = loop {
                let txn = begin_write(&self.shared.db).await?;
                if !store::advance_offset(&txn, self.key(), self.stored, next).await? {
                    txn.rollback().await?;
                    return Ok(BatchOutcome::Conflict);
                }
                if exact {
                    let fresh = store::mark_processed(&txn, consumer, &consumed).await?;
                    break (txn, Some(fresh));
                }
                if store::mark_new(&txn, consumer, &consumed).await? {
                    break (txn, None);
                }
                txn.rollback().await?;
                exact = true;
            };
            let mut seen: HashSet<Uuid> = HashSet::with_capacity(consumed.len());
            let mut tally = Tally::default();
            for (k, (record, id)) in batch.iter().zip(&ids).enumerate() {
                let Some(id) = id else {
                    trace_skipped(&self.shared.config.consumer, record);
                    tally.count(HandlerOutcome::Ignored);
                    continue;
                };
                let new = fresh.as_ref().is_none_or(|fresh| fresh.contains(id));
                if !seen.insert(*id) || !new {
                    debug!(offset = record.offset, event_id = %id, "duplicate event; skipped");
                    tally.duplicate += 1;
                    continue;
                }
                let span = record_span(&self.shared.config.consumer, record);
                match self.shared.handler.handle(&txn, record).instrument(span).await {
                    Ok(outcome) => tally.count(outcome),
                    Err(e) => {
                        debug!(offset = record.offset, error = %e, "handler failed inside a batch; rolling the batch back");
                        txn.rollback().await?;
                        return Ok(BatchOutcome::FailedAt(k));
                    }
                }
            }
            txn.commit().await?;
            tally.publish(self.config());
            self.stored_at(next);
            notify_committed();
            Ok(BatchOutcome::Committed)
        }
        .instrument(span)
        .await
    }

    /// Applies one record in its own transaction, retrying until it is applied or parked.
    async fn apply_one(&mut self, record: &LogRecord) -> Step {
        let span = tracing::info_span!("record", offset = record.offset);
        async {
            let mut counted = 0;
            let mut failures = 0;
            loop {
                let error = match self.try_one(record).await {
                    Ok(SingleOutcome::Committed) => return Step::Advanced,
                    Ok(SingleOutcome::Conflict) => return Step::Conflict,
                    Ok(SingleOutcome::Failed(e)) if e.is_permanent() => {
                        return self.park(record, &e.to_string(), counted + 1).await;
                    }
                    Ok(SingleOutcome::Failed(e)) => {
                        if self.database_answers().await {
                            counted += 1;
                        }
                        if counted >= self.config().max_attempts {
                            return self.park(record, &e.to_string(), counted).await;
                        }
                        format!(
                            "handler failed (attempt {counted} of {}): {e}",
                            self.config().max_attempts
                        )
                    }
                    Err(e) => format!("database error: {e}"),
                };
                failures += 1;
                let delay = self.backoff(failures);
                telemetry::metrics::metrics()
                    .count_consumer_retry(&self.config().consumer, &self.config().topic);
                warn!(
                    offset = record.offset,
                    attempt = failures,
                    "{error}; retrying the same record in {delay:?}"
                );
                if self.shutdown.sleep(delay).await {
                    return Step::Shutdown;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn try_one(&mut self, record: &LogRecord) -> Result<SingleOutcome, DbErr> {
        // `None`: a record the handler skips.
        let id = if skips(&self.shared.handler, record) {
            None
        } else {
            match store::event_id(record) {
                Ok(id) => Some(id),
                Err(why) => {
                    return Ok(SingleOutcome::Failed(HandlerError::permanent(
                        anyhow::anyhow!("the record has no event id: {why}"),
                    )));
                }
            }
        };
        let next = record.offset + 1;
        if id.is_none() {
            self.skip_lazily(std::slice::from_ref(record), next);
            return Ok(SingleOutcome::Committed);
        }
        let txn = begin_write(&self.shared.db).await?;
        if !store::advance_offset(&txn, self.key(), self.stored, next).await? {
            txn.rollback().await?;
            return Ok(SingleOutcome::Conflict);
        }
        let mut tally = Tally::default();
        let duplicate = match id {
            Some(id) => store::mark_processed(&txn, &self.shared.config.consumer, &[id])
                .await?
                .is_empty(),
            None => false,
        };
        if duplicate {
            debug!(event_id = ?id, "duplicate event; skipped");
            tally.duplicate += 1;
        } else {
            let span = record_span(&self.shared.config.consumer, record);
            match self
                .shared
                .handler
                .handle(&txn, record)
                .instrument(span)
                .await
            {
                Ok(outcome) => tally.count(outcome),
                Err(e) => {
                    txn.rollback().await?;
                    return Ok(SingleOutcome::Failed(e));
                }
            }
        }
        txn.commit().await?;
        tally.publish(self.config());
        self.stored_at(next);
        notify_committed();
        Ok(SingleOutcome::Committed)
    }

    /// Moves past `records`, which the handler skips, without a transaction: the stored offset
    /// catches up with the next effectful batch or [`Self::flush_offset`]. A crash before then
    /// reads them again and skips them again.
    fn skip_lazily(&mut self, records: &[LogRecord], next: i64) {
        let mut tally = Tally::default();
        for record in records {
            trace_skipped(&self.shared.config.consumer, record);
            tally.count(HandlerOutcome::Ignored);
        }
        tally.publish(self.config());
        self.position = next;
        self.unstored_since
            .get_or_insert_with(std::time::Instant::now);
    }

    /// Stores the position reached by skipping records (compare-and-set from the stored
    /// offset, in a transaction of its own). [`Step::Conflict`] when another instance moved
    /// the stored offset meanwhile; a database error leaves the offset for the next try.
    pub(super) async fn flush_offset(&mut self) -> Step {
        if self.unstored_since.is_none() || self.position == self.stored {
            self.unstored_since = None;
            return Step::Advanced;
        }
        let next = self.position;
        let attempt = async {
            let txn = begin_write(&self.shared.db).await?;
            if !store::advance_offset(&txn, self.key(), self.stored, next).await? {
                txn.rollback().await?;
                return Ok::<bool, DbErr>(false);
            }
            txn.commit().await?;
            Ok(true)
        };
        match attempt.await {
            Ok(true) => {
                self.stored_at(next);
                Step::Advanced
            }
            Ok(false) => Step::Conflict,
            Err(e) => {
                warn!(offset = next, error = %e, "cannot store the offset past skipped records; trying again later");
                Step::Advanced
            }
        }
    }

    /// Records that the stored offset is now `next` (after a commit that moved it there).
    fn stored_at(&mut self, next: i64) {
        self.position = next;
        self.stored = next;
        self.unstored_since = None;
    }

    /// Whether the database answers a trivial query (so a handler failure is the record's).
    async fn database_answers(&self) -> bool {
        self.shared.db.execute_unprepared("SELECT 1").await.is_ok()
    }

    /// Parks `record` and advances past it, retrying database errors.
    async fn park(&mut self, record: &LogRecord, error: &str, attempts: u32) -> Step {
        let shared = self.shared.clone();
        let failure = Failure {
            consumer: &shared.config.consumer,
            event_id: store::event_id(record).ok(),
            error,
            attempts,
        };
        let mut failures = 0;
        loop {
            match self.try_park(record, &failure).await {
                Ok(Some(dead_letter_id)) => {
                    telemetry::metrics::metrics()
                        .count_dead_letter(&shared.config.consumer, &shared.config.topic);
                    error!(
                        offset = record.offset,
                        event_id = ?failure.event_id,
                        dead_letter_id,
                        attempts,
                        error,
                        "record parked in dead_letters and {}; the partition moves on",
                        crate::topics::dlq(&record.topic),
                    );
                    return Step::Advanced;
                }
                Ok(None) => return Step::Conflict,
                Err(e) => {
                    failures += 1;
                    let delay = self.backoff(failures);
                    warn!(offset = record.offset, attempt = failures, error = %e, "cannot park the record; retrying in {delay:?}");
                    if self.shutdown.sleep(delay).await {
                        return Step::Shutdown;
                    }
                }
            }
        }
    }

    /// One transaction: dead letter, its `<topic>.dlq` outbox row, offset advance.
    async fn try_park(
        &mut self,
        record: &LogRecord,
        failure: &Failure<'_>,
    ) -> Result<Option<i64>, DbErr> {
        let next = record.offset + 1;
        let txn = begin_write(&self.shared.db).await?;
        if !store::advance_offset(&txn, self.key(), self.stored, next).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let id = store::park(&txn, record, failure).await?;
        txn.commit().await?;
        self.stored_at(next);
        notify_committed();
        Ok(Some(id))
    }
}
