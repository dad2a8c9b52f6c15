//! One partition's loop: fetch, apply in batches, fall back to one-record transactions with
//! retries and dead-lettering. The guarantees are described in the parent module.

use std::collections::HashSet;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::sync::watch;
use tracing::{Instrument, debug, error, info, warn};
use uuid::Uuid;

use super::store::{self, Failure, OffsetKey};
use super::{ConsumerConfig, ConsumerError, Handler, HandlerError, Shutdown, backoff_delay};
use crate::log::{LogError, LogReader, LogRecord};
use crate::outbox::notify_committed;

/// What every partition task of one consumer shares.
pub(super) struct Shared<L, H> {
    pub db: DatabaseConnection,
    pub log: L,
    pub handler: H,
    pub config: ConsumerConfig,
}

/// Where a step of the loop left the partition.
#[derive(Debug, PartialEq, Eq)]
enum Step {
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

/// How a one-record attempt ended, when the database answered.
enum SingleOutcome {
    Committed,
    Conflict,
    Failed(HandlerError),
}

pub(super) struct Partition<L, H> {
    shared: Arc<Shared<L, H>>,
    partition: i32,
    /// The stored offset as last read or written by this task.
    position: i64,
    shutdown: Shutdown,
}

impl<L: LogReader, H: Handler> Partition<L, H> {
    pub(super) fn new(
        shared: Arc<Shared<L, H>>,
        partition: i32,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Partition {
            shared,
            partition,
            position: 0,
            shutdown: Shutdown(shutdown),
        }
    }

    fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    fn key(&self) -> OffsetKey<'_> {
        OffsetKey {
            consumer: &self.shared.config.consumer,
            topic: &self.shared.config.topic,
            partition: self.partition,
        }
    }

    pub(super) async fn run(mut self) -> Result<(), ConsumerError> {
        if !self.reload_offset().await {
            return Ok(());
        }
        info!(next_offset = self.position, "consuming");
        let mut log_failures = 0;
        loop {
            if self.shutdown.is_requested() {
                break;
            }
            let cfg = &self.shared.config;
            let fetched = tokio::select! {
                biased;
                () = self.shutdown.requested() => break,
                fetched = self.shared.log.fetch(
                    &cfg.topic,
                    self.partition,
                    self.position,
                    cfg.fetch_max_records,
                    cfg.fetch_max_wait,
                ) => fetched,
            };
            let fetched = match fetched {
                Ok(fetched) => {
                    log_failures = 0;
                    fetched
                }
                Err(LogError::OffsetOutOfRange { high_watermark, .. }) => {
                    return Err(self.out_of_range(high_watermark));
                }
                Err(e) if e.is_transient() => {
                    log_failures += 1;
                    let delay = self.backoff(log_failures);
                    warn!(attempt = log_failures, error = %e, "event log unavailable; fetching again from the stored offset in {delay:?}");
                    if self.shutdown.sleep(delay).await || !self.reload_offset().await {
                        break;
                    }
                    continue;
                }
                Err(source) => {
                    return Err(ConsumerError::Log {
                        consumer: cfg.consumer.clone(),
                        topic: cfg.topic.clone(),
                        partition: self.partition,
                        source,
                    });
                }
            };
            if self.position > fetched.high_watermark {
                return Err(self.out_of_range(fetched.high_watermark));
            }
            let records: Vec<LogRecord> = fetched
                .records
                .into_iter()
                .filter(|r| r.offset >= self.position)
                .collect();
            match self.apply(&records).await {
                Step::Advanced => {}
                Step::Conflict => {
                    warn!(
                        offset = self.position,
                        "the stored offset was moved by another instance; reloading it"
                    );
                    if !self.reload_offset().await {
                        break;
                    }
                }
                Step::Shutdown => break,
            }
        }
        info!(next_offset = self.position, "stopped");
        Ok(())
    }

    fn out_of_range(&self, high_watermark: i64) -> ConsumerError {
        ConsumerError::OffsetOutOfRange {
            consumer: self.config().consumer.clone(),
            topic: self.config().topic.clone(),
            partition: self.partition,
            offset: self.position,
            high_watermark,
        }
    }

    fn backoff(&self, failures: u32) -> std::time::Duration {
        backoff_delay(
            self.config().backoff_initial,
            self.config().backoff_max,
            failures,
        )
    }

    /// Loads (or creates) the stored offset into `position`, retrying database errors. False
    /// if shutdown was requested first.
    async fn reload_offset(&mut self) -> bool {
        let mut failures = 0;
        loop {
            let initial = self.config().initial_offset;
            match store::load_or_init_offset(&self.shared.db, self.key(), initial).await {
                Ok(next) => {
                    self.position = next;
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    let delay = self.backoff(failures);
                    warn!(attempt = failures, error = %e, "cannot load the stored offset; retrying in {delay:?}");
                    if self.shutdown.sleep(delay).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Applies fetched records in order, in batches of at most `max_batch_records`.
    async fn apply(&mut self, records: &[LogRecord]) -> Step {
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
            let mut ids = Vec::with_capacity(batch.len());
            for (k, record) in batch.iter().enumerate() {
                match store::event_id(record) {
                    Ok(id) => ids.push(id),
                    Err(_) => return Ok(BatchOutcome::FailedAt(k)),
                }
            }
            let next = last.offset + 1;
            let txn = store::begin_write(&self.shared.db).await?;
            if !store::advance_offset(&txn, self.key(), self.position, next).await? {
                txn.rollback().await?;
                return Ok(BatchOutcome::Conflict);
            }
            let fresh = store::mark_processed(&txn, &self.shared.config.consumer, &ids).await?;
            let mut seen: HashSet<Uuid> = HashSet::with_capacity(ids.len());
            for (k, (record, id)) in batch.iter().zip(&ids).enumerate() {
                if !seen.insert(*id) || !fresh.contains(id) {
                    debug!(offset = record.offset, event_id = %id, "duplicate event; skipped");
                    continue;
                }
                if let Err(e) = self.shared.handler.handle(&txn, record).await {
                    debug!(offset = record.offset, error = %e, "handler failed inside a batch; rolling the batch back");
                    txn.rollback().await?;
                    return Ok(BatchOutcome::FailedAt(k));
                }
            }
            txn.commit().await?;
            self.position = next;
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
        let id = match store::event_id(record) {
            Ok(id) => id,
            Err(why) => {
                return Ok(SingleOutcome::Failed(HandlerError::permanent(
                    anyhow::anyhow!("the record has no event id: {why}"),
                )));
            }
        };
        let next = record.offset + 1;
        let txn = store::begin_write(&self.shared.db).await?;
        if !store::advance_offset(&txn, self.key(), self.position, next).await? {
            txn.rollback().await?;
            return Ok(SingleOutcome::Conflict);
        }
        if store::mark_processed(&txn, &self.shared.config.consumer, &[id])
            .await?
            .is_empty()
        {
            debug!(event_id = %id, "duplicate event; skipped");
        } else if let Err(e) = self.shared.handler.handle(&txn, record).await {
            txn.rollback().await?;
            return Ok(SingleOutcome::Failed(e));
        }
        txn.commit().await?;
        self.position = next;
        notify_committed();
        Ok(SingleOutcome::Committed)
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
        let txn = store::begin_write(&self.shared.db).await?;
        if !store::advance_offset(&txn, self.key(), self.position, next).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let id = store::park(&txn, record, failure).await?;
        txn.commit().await?;
        self.position = next;
        notify_committed();
        Ok(Some(id))
    }
}
