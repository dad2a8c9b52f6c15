//! The consumer runtime shared by every subscriber: per (consumer, topic, partition) it loads
//! the stored offset, fetches records, and applies each through a [`Handler`] inside a
//! database transaction that also records the event id and advances the offset. The result is
//! exactly-once *effects* on top of at-least-once delivery.
//!
//! It deliberately does not know what an event means (handlers do), nor where records come
//! from: any [`LogReader`] works, the Kafka transport in distributed mode and
//! [`crate::embedded::EmbeddedLog`] in embedded mode.
//!
//! # One transaction per record, or per batch
//!
//! Applying a record is, in one write transaction (`BEGIN IMMEDIATE` on SQLite):
//! 1. compare-and-set the stored offset: `UPDATE consumer_offsets SET next_offset = <after the
//!    record> WHERE ... AND next_offset = <where we read it>`. Zero rows means another instance
//!    moved it; the transaction is rolled back and the partition reloads its offset and fetches
//!    again, so a zombie instance never applies anything twice. Doing it first also takes the
//!    row lock on PostgreSQL, so a second instance waits there instead of running its handler;
//! 2. dedupe on the CloudEvent id (`ce_id` header, else the payload's `id`; a record without a
//!    UUID event id is poison) by inserting into `processed_events`; a duplicate skips the
//!    handler;
//! 3. run the handler, which writes its effects (and follow-up outbox rows) with the same
//!    transaction;
//! 4. commit.
//!
//! A record of a CloudEvent type the handler does not act on ([`Handler::event_types`], read
//! from the `ce_type` header) skips steps 2 and 3, and needs no transaction of its own (below).
//!
//! # Lazy offsets
//!
//! Most records on a topic are of types a given consumer skips (the recurrence subscriber acts
//! on completions only), and a write transaction per skipped batch would cost a commit per
//! change for nothing. So skipped records only move the partition's in-memory position; the
//! stored offset catches up with the next transaction that has effects (its compare-and-set
//! goes from the stored offset to past its last record, covering the skipped ones before it),
//! or with a transaction of its own when the log goes quiet (a fetch that finds nothing for
//! [`ConsumerConfig::offset_quiet`], 100 ms: while the position is ahead of the stored offset,
//! fetches wait no longer), every
//! [`ConsumerConfig::offset_flush_interval`] while skipped records keep coming, and at
//! shutdown. The guarantees are unchanged: every compare-and-set still expects the offset this
//! instance last stored, so a zombie still applies nothing twice; after a crash the skipped
//! records are read again and skipped again (they had no effects to repeat). The stored offset
//! (and the retention horizon it sets) may trail the position by up to that interval.
//!
//! Batching decision: one transaction per record costs a commit per record, too slow for the
//! target of 5,000 simple records/s. So the runtime applies up to
//! [`ConsumerConfig::max_batch_records`] fetched records in one transaction: one offset
//! compare-and-set for the batch, one multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING`
//! for the dedupe, the handler for each new record, one commit. A batch is all or nothing, so
//! a failure cannot leave some records' effects without their offset advance or vice versa. If
//! any record of a batch fails (handler error, missing event id, database error), the whole
//! batch is rolled back; the records before the failing one are applied again as a batch,
//! and the failing one goes through the one-record path with its retries and dead-lettering.
//! Effects outside the database (an HTTP call) are not rolled back with a batch and may be
//! repeated; handlers with such effects set `max_batch_records = 1` and use idempotency keys.
//!
//! # Failures
//!
//! - A [`HandlerError::Transient`] retries the same record with exponential backoff; later
//!   records wait, so order is kept. After [`ConsumerConfig::max_attempts`] failed attempts
//!   the record is parked. An attempt counts only if the database still answers afterwards: a
//!   database outage surfaces in handlers as transient errors, and must not send healthy
//!   records to the dead-letter queue.
//! - A [`HandlerError::Permanent`] (poison: an unparsable payload) and a record without an
//!   event id are parked at once.
//! - Parking is one transaction: insert the `dead_letters` row (status `PARKED`), insert an
//!   outbox row for `<topic>.dlq`, and advance the offset (compare-and-set). DLQ publishing
//!   decision: through the outbox, not a direct produce, so the dead letter, its copy on the
//!   log and the offset advance commit together; the relay publishes it in distributed mode,
//!   and in embedded mode the outbox is the log. The copy keeps the original key, payload and
//!   headers and adds `dlq_original_topic`, `dlq_original_partition`, `dlq_original_offset`,
//!   `dlq_consumer`, `dlq_error` (at most 1 KiB) and `dlq_attempts`. The event id is *not*
//!   recorded as processed, so [`crate::dead_letters::replay`] can apply it later.
//! - Errors of the runtime's own statements (database down, SQLite busy) and transient log
//!   errors retry forever with backoff, logged with the attempt count; after a log error the
//!   partition reloads its stored offset and fetches again (nothing fetched is kept).
//! - A stored offset past the log's end ([`LogError::OffsetOutOfRange`], or beyond the high
//!   watermark) halts the consumer with [`ConsumerError::OffsetOutOfRange`], logged at error:
//!   records were lost or the offset is wrong, and skipping would hide it.
//!
//! # Telemetry
//!
//! Each record's handler runs in a `consumer.process` span whose parent is the record's
//! `ce_traceparent` (so follow-up events the handler writes stay in the trace). After each
//! commit the records are counted by outcome (applied, ignored, duplicate); retries and
//! parked records are counted; after each fetch and apply the partition's lag (high watermark
//! minus the stored offset) is set. See `telemetry::metrics`.
//!
//! # Shutdown
//!
//! [`Consumer::run`] takes any `Future<Output = ()>` as its shutdown signal (a
//! `CancellationToken::cancelled_owned()`, a `ctrl_c` future, a oneshot receiver), like the
//! HTTP server does, so `stream` needs no extra dependency. When it completes, each partition
//! finishes the batch or record in flight, commits, and returns; a pending backoff or fetch is
//! abandoned (nothing is lost: the stored offset has not moved).

mod apply;
pub mod leases;
mod partition;
pub(crate) mod store;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use leases::LeaseConfig;

use crate::log::{LogError, LogReader, LogRecord};

pub use crate::lifecycle::backoff_delay;
pub use store::event_id;

/// Applies records of one consumer. It runs inside the runtime's transaction and must write
/// every effect with `txn`, so the effects, the dedupe row and the offset commit together.
pub trait Handler: Send + Sync {
    /// The consumer's name: the key of its offsets, processed events and dead letters. It must
    /// equal [`ConsumerConfig::consumer`], and [`crate::dead_letters::replay`] checks it
    /// against the dead letter's consumer.
    fn name(&self) -> &str;

    /// The CloudEvent types this handler acts on, or `None` (the default) for every record.
    /// The runtime skips a record whose `ce_type` header names another type without calling
    /// the handler or recording its event id: only the offset moves past it, as past a record
    /// the handler [`HandlerOutcome::Ignored`]. A record without a `ce_type` header always
    /// reaches the handler (which parks it if it is poison).
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Applies one record. Called at most once per event id per consumer, as far as the
    /// database can see; a rolled-back attempt may be followed by another.
    fn handle<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        record: &'a LogRecord,
    ) -> impl Future<Output = Result<HandlerOutcome, HandlerError>> + Send + 'a;
}

/// What a handler did with a record; both advance the offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// The record had effects.
    Applied,
    /// The record was not of interest (another event type, a stale version).
    Ignored,
}

/// The CloudEvent a record carries: what every handler starts with. A record without a value
/// (a tombstone) or whose value is not a CloudEvent is a permanent error (poison: parked).
pub fn decode_event(record: &crate::log::LogRecord) -> Result<crate::CloudEvent, HandlerError> {
    let value = record
        .value
        .as_deref()
        .ok_or_else(|| HandlerError::permanent(anyhow::anyhow!("the record has no value")))?;
    serde_json::from_slice(value).map_err(|e| {
        HandlerError::permanent(anyhow::anyhow!("the record is not a CloudEvent: {e}"))
    })
}

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (database busy, a dependency down): retried with backoff, parked
    /// after [`ConsumerConfig::max_attempts`].
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed (poison: a payload that cannot be parsed, an unknown event version):
    /// parked at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl HandlerError {
    pub fn transient(error: impl Into<anyhow::Error>) -> HandlerError {
        HandlerError::Transient(error.into())
    }

    pub fn permanent(error: impl Into<anyhow::Error>) -> HandlerError {
        HandlerError::Permanent(error.into())
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, HandlerError::Permanent(_))
    }
}

/// Database errors are assumed transient (connection lost, serialisation failure, SQLite
/// busy), so `?` works in handlers; map a constraint violation that means "this event can
/// never apply" to [`HandlerError::Permanent`] yourself.
impl From<sea_orm::DbErr> for HandlerError {
    fn from(e: sea_orm::DbErr) -> HandlerError {
        HandlerError::Transient(e.into())
    }
}

/// What a consumer reads and how it retries. Start from [`ConsumerConfig::new`] and override
/// fields with struct update syntax.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The consumer's name (equal to its handler's [`Handler::name`]).
    pub consumer: String,
    pub topic: String,
    /// The partitions this consumer reads. Without [`ConsumerConfig::lease`], this instance
    /// consumes all of them (fixed assignment; the offset compare-and-set makes an overlap
    /// with another instance harmless, not useful). With a lease configuration they are the
    /// pool shared out among the consumer's live instances ([`leases`]).
    pub partitions: Vec<i32>,
    /// Share [`ConsumerConfig::partitions`] with the consumer's other instances by leases in
    /// the database (`None`: consume them all).
    pub lease: Option<LeaseConfig>,
    /// Where a consumer without a stored offset starts: 0 reads the whole log.
    pub initial_offset: i64,
    /// Failed attempts of a transiently failing record before it is parked. Five: with the
    /// doubling backoff, enough to ride out a blip of a second or two, short enough that a
    /// poison record does not hold its partition for long.
    pub max_attempts: u32,
    /// The first retry delay; doubled on every further failure of the same record.
    pub backoff_initial: Duration,
    /// The largest retry delay, so a long outage is polled at a steady rate.
    pub backoff_max: Duration,
    /// Most records one fetch returns.
    pub fetch_max_records: usize,
    /// How long a fetch waits for a first record; also the embedded log's fallback poll.
    pub fetch_max_wait: Duration,
    /// Most records applied in one transaction; 1 disables batching.
    pub max_batch_records: usize,
    /// How long the stored offset may stay behind records the handler skips while records keep
    /// coming (it is stored at once when the log goes quiet, and at shutdown).
    pub offset_flush_interval: Duration,
    /// How long the log must stay quiet before the position past skipped records is stored
    /// (while it is ahead of the stored offset, fetches wait no longer than this).
    pub offset_quiet: Duration,
}

impl ConsumerConfig {
    /// Partition 0 from offset 0, 5 attempts, backoff 200 ms doubling up to 30 s, fetches of
    /// up to 500 records waiting up to 1 s, batches of up to 500 records, offsets past skipped
    /// records stored after 100 ms of quiet and at least every 5 s.
    pub fn new(consumer: impl Into<String>, topic: impl Into<String>) -> ConsumerConfig {
        ConsumerConfig {
            consumer: consumer.into(),
            topic: topic.into(),
            partitions: vec![0],
            lease: None,
            initial_offset: 0,
            max_attempts: 5,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            fetch_max_records: 500,
            fetch_max_wait: Duration::from_secs(1),
            max_batch_records: 500,
            offset_flush_interval: Duration::from_secs(5),
            offset_quiet: Duration::from_millis(100),
        }
    }

    fn validate(&self, handler_name: &str) -> Result<(), ConsumerError> {
        let problem = if self.consumer.is_empty() {
            Some("the consumer name is empty".to_owned())
        } else if self.consumer != handler_name {
            Some(format!(
                "the consumer is named {:?} but its handler {:?}",
                self.consumer, handler_name
            ))
        } else if self.partitions.is_empty() {
            Some("no partitions are assigned".to_owned())
        } else if self.max_attempts == 0 {
            Some("max_attempts must be at least 1".to_owned())
        } else if self.fetch_max_records == 0 || self.max_batch_records == 0 {
            Some("fetch_max_records and max_batch_records must be at least 1".to_owned())
        } else if self.initial_offset < 0 {
            Some("initial_offset must not be negative".to_owned())
        } else {
            self.lease.as_ref().and_then(LeaseConfig::validate)
        };
        problem.map_or(Ok(()), |p| Err(ConsumerError::Config(p)))
    }
}

/// Why a consumer stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("invalid consumer configuration: {0}")]
    Config(String),
    /// The stored offset is not in the log. Records were lost (retention, a broker that lost
    /// data) or the offset is wrong; an operator must decide, so the consumer halts.
    #[error(
        "consumer {consumer} halted: its offset {offset} is out of range for \
         {topic}[{partition}] (the log ends at {high_watermark}); fix the log or the stored \
         offset in consumer_offsets"
    )]
    OffsetOutOfRange {
        consumer: String,
        topic: String,
        partition: i32,
        offset: i64,
        high_watermark: i64,
    },
    /// A log error that retrying cannot fix (unknown topic, protocol error).
    #[error("consumer {consumer} halted on {topic}[{partition}]: {source}")]
    Log {
        consumer: String,
        topic: String,
        partition: i32,
        #[source]
        source: LogError,
    },
    #[error("consumer {consumer}: a partition task panicked: {message}")]
    Panicked { consumer: String, message: String },
}

/// One consumer: a handler applied to its partitions of one topic.
pub struct Consumer<L, H> {
    db: DatabaseConnection,
    log: L,
    handler: H,
    config: ConsumerConfig,
}

impl<L, H> Consumer<L, H>
where
    L: LogReader + 'static,
    H: Handler + 'static,
{
    pub fn new(db: DatabaseConnection, log: L, handler: H, config: ConsumerConfig) -> Self {
        Consumer {
            db,
            log,
            handler,
            config,
        }
    }

    /// Runs one task per partition it consumes until `shutdown` completes (then each finishes
    /// its in-flight batch, commits and stops: `Ok`) or a partition halts (then the others are
    /// stopped the same way and its error is returned). With leases, the partitions it
    /// consumes follow its heartbeats ([`leases`]): tasks start for leases taken and stop for
    /// leases lost or given up; at the end it leaves the group, releasing its leases.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ConsumerError> {
        // Names the consumer in the lease and shutdown lines (a binary may run two).
        let span = tracing::info_span!(
            "consumer",
            consumer = %self.config.consumer,
            topic = %self.config.topic,
        );
        self.run_in_span(shutdown).instrument(span).await
    }

    async fn run_in_span(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ConsumerError> {
        self.config.validate(self.handler.name())?;
        let leases = self.config.lease.clone().map(|lease| {
            leases::Leases::new(
                self.db.clone(),
                &self.config.consumer,
                &self.config.topic,
                &self.config.partitions,
                lease,
            )
        });
        let shared = Arc::new(partition::Shared {
            db: self.db,
            log: self.log,
            handler: self.handler,
            config: self.config,
        });
        let mut set = PartitionSet::new(shared.clone());
        if leases.is_none() {
            for &p in &shared.config.partitions {
                set.start(p);
            }
            set.report();
        }
        let heartbeat = leases.as_ref().map_or(Duration::from_secs(3600), |l| {
            l.config().heartbeat_interval()
        });
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rows_created = false;

        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        let mut first_error = None;
        loop {
            if stopping && set.is_empty() {
                break;
            }
            tokio::select! {
                () = &mut shutdown, if !stopping => {
                    tracing::info!(consumer = %shared.config.consumer, "shutdown requested; finishing in-flight records");
                    stopping = true;
                    set.stop_all();
                }
                _ = ticker.tick(), if leases.is_some() => {
                    let Some(leases) = &leases else { continue };
                    if !rows_created {
                        match leases.create_rows().await {
                            Ok(()) => rows_created = true,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot create the partition leases; retrying at the next heartbeat");
                                continue;
                            }
                        }
                    }
                    match leases.heartbeat().await {
                        Ok(beat) => set.follow(leases, beat, stopping).await,
                        Err(e) => tracing::warn!(error = %e, "lease heartbeat failed; retrying at the next one (partitions whose lease lapses meanwhile apply nothing)"),
                    }
                }
                joined = set.join_next(), if !set.is_empty() => {
                    let Some((partition, joined)) = joined else { continue };
                    let error = match joined {
                        Ok(Ok(())) => {
                            set.stopped(partition, leases.as_ref()).await;
                            continue;
                        }
                        Ok(Err(e)) => e,
                        Err(e) => ConsumerError::Panicked {
                            consumer: shared.config.consumer.clone(),
                            message: e.to_string(),
                        },
                    };
                    tracing::error!(error = %error, "consumer halted; stopping its other partitions");
                    first_error.get_or_insert(error);
                    stopping = true;
                    set.stop_all();
                }
            }
        }
        if let Some(leases) = &leases {
            match leases.leave().await {
                Ok(()) => {
                    tracing::info!(consumer = %shared.config.consumer, "left the consumer group; its partitions are free")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot release the partition leases; they lapse after the lease period")
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The partition tasks of one consumer instance, each with its own stop signal.
struct PartitionSet<L, H> {
    shared: Arc<partition::Shared<L, H>>,
    tasks: JoinSet<Result<(), ConsumerError>>,
    /// Running partitions and their stop signals.
    running: HashMap<i32, watch::Sender<bool>>,
    ids: HashMap<tokio::task::Id, i32>,
    /// Partitions stopping to be given up: released once their task ends.
    releasing: BTreeSet<i32>,
}

impl<L, H> PartitionSet<L, H>
where
    L: LogReader + 'static,
    H: Handler + 'static,
{
    fn new(shared: Arc<partition::Shared<L, H>>) -> Self {
        PartitionSet {
            shared,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            ids: HashMap::new(),
            releasing: BTreeSet::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn start(&mut self, p: i32) {
        let span = tracing::info_span!(
            "consumer",
            consumer = %self.shared.config.consumer,
            topic = %self.shared.config.topic,
            partition = p,
        );
        let (stop, stopped) = watch::channel(false);
        let runner = partition::Partition::new(self.shared.clone(), p, stopped);
        let handle = self.tasks.spawn(runner.run().instrument(span));
        self.ids.insert(handle.id(), p);
        self.running.insert(p, stop);
    }

    fn stop(&mut self, p: i32) {
        if let Some(stop) = self.running.get(&p) {
            stop.send_replace(true);
        }
    }

    fn stop_all(&mut self) {
        for stop in self.running.values() {
            stop.send_replace(true);
        }
    }

    /// Publishes how many partitions run now.
    fn report(&self) {
        let cfg = &self.shared.config;
        telemetry::metrics::metrics().set_consumer_partitions(
            &cfg.consumer,
            &cfg.topic,
            self.running.len() - self.releasing.len(),
        );
    }

    /// Makes the running tasks follow a heartbeat: stops those whose lease is gone at once and
    /// those given up (released when they end), and starts those newly held (unless stopping).
    async fn follow(&mut self, leases: &leases::Leases, beat: leases::Heartbeat, stopping: bool) {
        let running: BTreeSet<i32> = self.running.keys().copied().collect();
        let lost: Vec<i32> = running.difference(&beat.held).copied().collect();
        for &p in &lost {
            tracing::warn!(
                partition = p,
                "the lease on this partition lapsed; stopping it"
            );
            self.stop(p);
        }
        let mut release_now = Vec::new();
        for &p in &beat.surplus {
            if running.contains(&p) {
                if self.releasing.insert(p) {
                    tracing::info!(
                        partition = p,
                        members = beat.members,
                        "handing this partition over to another instance"
                    );
                    self.stop(p);
                }
            } else {
                release_now.push(p);
            }
        }
        if let Err(e) = leases.release(&release_now).await {
            tracing::warn!(error = %e, "cannot release partition leases; they lapse after the lease period");
        }
        if !stopping {
            let new: Vec<i32> = beat
                .held
                .iter()
                .filter(|p| !running.contains(p) && !beat.surplus.contains(p))
                .copied()
                .collect();
            if !new.is_empty() {
                tracing::info!(partitions = ?new, members = beat.members, "took partition leases");
            }
            for p in new {
                self.start(p);
            }
        }
        if !lost.is_empty() || !beat.surplus.is_empty() || self.running.len() != running.len() {
            let consuming: Vec<i32> = {
                let mut v: Vec<i32> = self
                    .running
                    .keys()
                    .filter(|p| !self.releasing.contains(p) && !lost.contains(p))
                    .copied()
                    .collect();
                v.sort_unstable();
                v
            };
            tracing::info!(partitions = ?consuming, members = beat.members, "consuming partitions");
        }
        self.report();
    }

    /// The next partition task to end, with its partition.
    async fn join_next(
        &mut self,
    ) -> Option<(
        i32,
        Result<Result<(), ConsumerError>, tokio::task::JoinError>,
    )> {
        let joined = self.tasks.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let partition = self.ids.remove(&id).unwrap_or(-1);
        Some((partition, joined.map(|(_, result)| result)))
    }

    /// A partition task ended normally: forget it, release its lease if it was given up.
    async fn stopped(&mut self, p: i32, leases: Option<&leases::Leases>) {
        self.running.remove(&p);
        let cfg = &self.shared.config;
        if let Some(leases) = leases {
            telemetry::metrics::metrics().clear_consumer_lag(&cfg.consumer, &cfg.topic, p);
            if self.releasing.remove(&p)
                && let Err(e) = leases.release(&[p]).await
            {
                tracing::warn!(partition = p, error = %e, "cannot release the partition lease; it lapses after the lease period");
            }
        }
        self.report();
    }
}

/// The shutdown signal as each partition task sees it.
#[derive(Clone, Debug)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when shutdown is requested (or the consumer is gone).
    async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `delay`; true if shutdown was requested meanwhile.
    async fn sleep(&mut self, delay: Duration) -> bool {
        tokio::select! {
            () = self.requested() => true,
            () = tokio::time::sleep(delay) => false,
        }
    }
}
