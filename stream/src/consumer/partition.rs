//! One partition's loop: load the stored offset, fetch, hand records to [`super::apply`],
//! reload the offset after a conflict or a log error, stop on shutdown.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::watch;
use tracing::{info, warn};

use super::apply::Step;
use super::store::{self, OffsetKey};
use super::{ConsumerConfig, ConsumerError, Handler, Shutdown, backoff_delay};
use crate::log::{LogError, LogReader, LogRecord};

/// A fetch running on its own task, aborted when dropped: whatever way the partition loop
/// ends, no fetch of it outlives it (a new loop for the partition may start at once).
struct Prefetch(tokio::task::JoinHandle<Result<crate::log::Fetched, LogError>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every partition task of one consumer shares.
pub(super) struct Shared<L, H> {
    pub db: DatabaseConnection,
    pub log: L,
    pub handler: H,
    pub config: ConsumerConfig,
}

pub(super) struct Partition<L, H> {
    pub(super) shared: Arc<Shared<L, H>>,
    pub(super) partition: i32,
    /// The next offset to read. Ahead of `stored` after records the handler skips, which are
    /// passed without a transaction (the parent module's "Lazy offsets").
    pub(super) position: i64,
    /// The stored offset as last read or written by this task: the expected value of the next
    /// compare-and-set.
    pub(super) stored: i64,
    /// Since when `position` is ahead of `stored`.
    pub(super) unstored_since: Option<std::time::Instant>,
    pub(super) shutdown: Shutdown,
}

impl<L: LogReader + 'static, H: Handler + 'static> Partition<L, H> {
    pub(super) fn new(
        shared: Arc<Shared<L, H>>,
        partition: i32,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Partition {
            shared,
            partition,
            position: 0,
            stored: 0,
            unstored_since: None,
            shutdown: Shutdown(shutdown),
        }
    }

    pub(super) fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    pub(super) fn key(&self) -> OffsetKey<'_> {
        OffsetKey {
            consumer: &self.shared.config.consumer,
            topic: &self.shared.config.topic,
            partition: self.partition,
            lease_owner: self
                .shared
                .config
                .lease
                .as_ref()
                .map(|l| l.instance.as_str()),
        }
    }

    /// With leases: whether this instance still holds this partition's lease (a database error
    /// counts as holding it; the fence in the compare-and-set stays the judge). Always true
    /// with fixed partitions.
    async fn holds_lease(&self) -> bool {
        let Some(lease) = &self.shared.config.lease else {
            return true;
        };
        let backend = self.shared.db.get_database_backend();
        let query = super::leases::held_lease(
            backend,
            &self.shared.config.consumer,
            &self.shared.config.topic,
            self.partition,
            &lease.instance,
        );
        match self.shared.db.query_one(&query).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                warn!(error = %e, "cannot check the partition lease");
                true
            }
        }
    }

    pub(super) async fn run(mut self) -> Result<(), ConsumerError> {
        if !self.reload_offset().await {
            return Ok(());
        }
        info!(next_offset = self.position, "consuming");
        let mut log_failures = 0;
        // The fetch started while the previous full batch was being applied: (its offset, the
        // task). Awaited before any other fetch, so one fetch per partition is in flight.
        let mut prefetch: Option<(i64, Prefetch)> = None;
        loop {
            if self.shutdown.is_requested() {
                break;
            }
            let cfg = &self.shared.config;
            let mut ahead = None;
            if let Some((from, mut task)) = prefetch.take() {
                let done = tokio::select! {
                    biased;
                    () = self.shutdown.requested() => break,
                    done = &mut task.0 => done,
                };
                // A prefetch from where the batch ended is used; after a conflict (the stored
                // offset moved) or a failed fetch, the partition fetches again below.
                if let Ok(Ok(fetched)) = done
                    && from == self.position
                {
                    ahead = Some(fetched);
                }
            }
            // With skipped records not stored yet, wait only briefly: a fetch that comes back
            // empty means the log went quiet, and the offset is stored then.
            let max_wait = if self.unstored_since.is_some() {
                cfg.fetch_max_wait.min(cfg.offset_quiet)
            } else {
                cfg.fetch_max_wait
            };
            let fetched = match ahead {
                Some(fetched) => Ok(fetched),
                None => tokio::select! {
                    biased;
                    () = self.shutdown.requested() => break,
                    fetched = self.shared.log.fetch(
                        &cfg.topic,
                        self.partition,
                        self.position,
                        cfg.fetch_max_records,
                        max_wait,
                    ) => fetched,
                },
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
            let high_watermark = fetched.high_watermark;
            let records: Vec<LogRecord> = fetched
                .records
                .into_iter()
                .filter(|r| r.offset >= self.position)
                .collect();
            // A full batch means a backlog: fetch the next one while this one is applied.
            if records.len() >= self.shared.config.fetch_max_records
                && let Some(last) = records.last()
            {
                let from = last.offset + 1;
                prefetch = Some((from, self.spawn_fetch(from, max_wait)));
            }
            let mut step = self.apply(&records).await;
            let flush_interval = self.shared.config.offset_flush_interval;
            let flush_due = self
                .unstored_since
                .is_some_and(|since| records.is_empty() || since.elapsed() >= flush_interval);
            if step == Step::Advanced && flush_due {
                step = self.flush_offset().await;
            }
            match step {
                Step::Advanced => {
                    // Embedded mode: offsets are outbox ids shared by every topic, so this is
                    // the id distance to the topic's end, an upper bound on the records.
                    let cfg = &self.shared.config;
                    telemetry::metrics::metrics().set_consumer_lag(
                        &cfg.consumer,
                        &cfg.topic,
                        self.partition,
                        high_watermark - self.position,
                    );
                }
                Step::Conflict => {
                    if !self.holds_lease().await {
                        warn!(
                            offset = self.position,
                            "this instance no longer holds the partition's lease; nothing of the batch was applied, stopping"
                        );
                        return Ok(());
                    }
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
        // Store the position past skipped records, so a restart does not read them again (a
        // conflict or an error here only means it will).
        self.flush_offset().await;
        info!(next_offset = self.position, "stopped");
        Ok(())
    }

    /// Starts a fetch from `from` on its own task.
    fn spawn_fetch(&self, from: i64, max_wait: std::time::Duration) -> Prefetch {
        let shared = Arc::clone(&self.shared);
        let partition = self.partition;
        Prefetch(tokio::spawn(async move {
            let cfg = &shared.config;
            shared
                .log
                .fetch(&cfg.topic, partition, from, cfg.fetch_max_records, max_wait)
                .await
        }))
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

    pub(super) fn backoff(&self, failures: u32) -> std::time::Duration {
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
                    self.stored = next;
                    self.unstored_since = None;
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
}
