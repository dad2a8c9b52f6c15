//! The Kafka-protocol transport of the event log, on rskafka: [`KafkaLog`] implements
//! [`LogReader`] and [`LogWriter`] against any Kafka-protocol broker (Apache Kafka, Redpanda,
//! tansu).
//!
//! It is deliberately a thin adapter: no consumer groups, no broker-side offsets, no buffering or
//! linger (the relay batches per partition itself), no idempotent producer. Offsets live in the
//! application database; partitions are chosen by the caller with [`crate::partitioner`].
//!
//! Behaviour worth knowing:
//! - Every operation is bounded in wall-clock time (`retry_deadline + request_timeout`, plus the
//!   fetch's `max_wait`): a dead broker yields [`LogError::Unavailable`], never a hang.
//! - A produce that fails with `Unavailable` may still have been appended (the request may have
//!   reached the broker before the connection broke, and rskafka retries IO errors itself), so
//!   delivery is at-least-once; consumers dedupe on the event id.
//! - rskafka's metadata requests allow auto-creation of unknown topics, which a broker with
//!   `auto.create.topics.enable` honours. So partition clients are only built for topics and
//!   partitions already listed in the cluster metadata: a typo is a [`LogError::Fatal`] instead
//!   of a new topic.
//! - A fetch past the end of the partition is [`LogError::OffsetOutOfRange`], whether the broker
//!   says so or (as tansu 0.6.0 does) waits `max_wait` and answers with no records. A negative
//!   offset is refused without asking (tansu 0.6.0 answers it with duplicated records).
//! - Each partition has two connections: one for fetches, one for produces and offset lookups.
//!   A broker answers the requests of one connection in order and may hold a fetch for
//!   `max_wait`, so a shared connection would delay produces behind a waiting fetch. Two
//!   consumers fetching the same partition in one process should use a `KafkaLog` each, for the
//!   same reason.
//!
//! Modules: [`config`] (settings and broker-list parsing), `args` ([`KafkaArgs`], the
//! `KAFKA_*` flags every binary shares), `metadata` (topics, partition counts,
//! topic creation), `partition_io` (produce, fetch, watermarks), `errors` (rskafka error →
//! `LogError`), `records` (record conversions).

mod args;
pub mod config;
mod errors;
mod metadata;
mod partition_io;
mod records;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

pub use args::KafkaArgs;
pub use config::{
    Compression, KafkaConfig, KafkaConfigError, SaslMechanism, SaslSettings, TlsSettings,
    parse_brokers,
};

use crate::log::{Fetched, LogError, LogReader, LogWriter, OutgoingRecord};

/// First pause of rskafka's internal retries.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause of rskafka's internal retries. Short, because those retries are themselves
/// bounded by `retry_deadline`: the caller's own loop owns long backoff, and a broker that comes
/// back should be noticed within a couple of seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a partition client is used for: each use gets its own connection (see the module
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Use {
    /// Fetches, which the broker may hold for `max_wait`.
    Fetch,
    /// Produces and offset lookups, which the broker answers at once.
    Write,
}

/// A Kafka-protocol event log. Cheap to share (`Arc<KafkaLog>`); all methods take `&self`.
pub struct KafkaLog {
    client: Client,
    config: KafkaConfig,
    /// Clients per (topic, partition, use), each holding its own connection to the leader.
    partition_clients: Mutex<HashMap<(String, i32, Use), Arc<PartitionClient>>>,
    /// Partition count per topic, from the last metadata request.
    partition_counts: Mutex<HashMap<String, i32>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.config.brokers)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the brokers (bounded by `connect_timeout`) and loads the cluster metadata.
    /// A broker that cannot be reached is [`LogError::Unavailable`]; bad TLS or SASL settings
    /// are [`LogError::Fatal`].
    pub async fn connect(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        if config.brokers.is_empty() {
            return Err(LogError::Fatal("no Kafka brokers configured".to_owned()));
        }
        let brokers = config.brokers.join(",");
        let mut builder = ClientBuilder::new(config.brokers.clone())
            .client_id(config.client_id.as_str())
            .backoff_config(BackoffConfig {
                init_backoff: INITIAL_BACKOFF,
                max_backoff: MAX_BACKOFF,
                base: 3.0,
                deadline: Some(config.retry_deadline),
            });
        if let Some(sasl) = config.rskafka_sasl() {
            builder = builder.sasl_config(sasl);
        }
        if let Some(tls) = config.rustls()? {
            builder = builder.tls_config(tls);
        }
        let operation = format!("connect to Kafka brokers {brokers}");
        let client = match tokio::time::timeout(config.connect_timeout, builder.build()).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(errors::log_error(&operation, &error)),
            Err(_) => {
                return Err(LogError::Unavailable(format!(
                    "{operation}: no answer within {:?}",
                    config.connect_timeout
                )));
            }
        };
        let log = KafkaLog {
            client,
            config,
            partition_clients: Mutex::default(),
            partition_counts: Mutex::default(),
        };
        log.topic_partitions().await?;
        Ok(log)
    }

    /// [`KafkaLog::connect`], then creates the taskstream topics that are missing: the log
    /// every taskstream process uses.
    pub async fn connect_with_topics(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        let log = KafkaLog::connect(config).await?;
        log.ensure_taskstream_topics().await?;
        Ok(log)
    }

    /// [`KafkaLog::connect_with_topics`], retrying with backoff (200 ms doubling up to 30 s)
    /// while the brokers are unreachable (rows wait in the outbox meanwhile). `Ok(None)` once
    /// `shutdown` is cancelled; an error that retrying cannot fix (bad TLS or SASL settings)
    /// is returned.
    pub async fn connect_with_retry(
        config: &KafkaConfig,
        shutdown: &crate::lifecycle::CancellationToken,
    ) -> Result<Option<KafkaLog>, LogError> {
        crate::log::retry_while_unavailable(shutdown, || {
            KafkaLog::connect_with_topics(config.clone())
        })
        .await
    }

    /// The settings this log was built with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Runs `work` on the partition's client within the operation bound. On any failure but
    /// `OffsetOutOfRange` the cached client is dropped, so the next call starts from fresh
    /// metadata and a new connection instead of trusting a client that just failed.
    async fn on_partition<'a, T, F, Fut>(
        &'a self,
        topic: &'a str,
        partition: i32,
        role: Use,
        operation: &'a str,
        extra: Duration,
        work: F,
    ) -> Result<T, LogError>
    where
        F: FnOnce(Arc<PartitionClient>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, LogError>> + Send + 'a,
        T: Send,
    {
        let result = self
            .bounded(operation, extra, async {
                let client = self.partition_client(topic, partition, role).await?;
                work(client).await
            })
            .await;
        if let Err(error) = &result {
            if !matches!(error, LogError::OffsetOutOfRange { .. }) {
                tracing::debug!(topic, partition, ?role, %error, "dropping the cached partition client");
                lock(&self.partition_clients).remove(&(topic.to_owned(), partition, role));
            }
            if matches!(error, LogError::Fatal(_)) {
                lock(&self.partition_counts).remove(topic);
            }
        }
        result
    }

    /// The cached client of a partition, built on first use. Only partitions listed in the
    /// cluster metadata get one (see the module documentation on auto-creation).
    async fn partition_client(
        &self,
        topic: &str,
        partition: i32,
        role: Use,
    ) -> Result<Arc<PartitionClient>, LogError> {
        let key = (topic.to_owned(), partition, role);
        if let Some(client) = lock(&self.partition_clients).get(&key) {
            return Ok(Arc::clone(client));
        }
        let count = self.partition_count(topic).await?;
        if !(0..count).contains(&partition) {
            return Err(LogError::Fatal(format!(
                "Kafka topic {topic} has {count} partitions: there is no partition {partition}"
            )));
        }
        let client = self
            .client
            .partition_client(topic, partition, UnknownTopicHandling::Error)
            .await
            .map_err(|e| {
                errors::log_error(
                    &format!("connect to the leader of {topic}[{partition}]"),
                    &e,
                )
            })?;
        let client = Arc::new(client);
        // Another task may have built one meanwhile: keep the first, drop ours.
        Ok(Arc::clone(
            lock(&self.partition_clients).entry(key).or_insert(client),
        ))
    }

    async fn bounded<T>(
        &self,
        operation: &str,
        extra: Duration,
        work: impl Future<Output = Result<T, LogError>>,
    ) -> Result<T, LogError> {
        let bound = self.config.operation_bound(extra);
        match tokio::time::timeout(bound, work).await {
            Ok(result) => result,
            Err(_) => Err(LogError::Unavailable(format!(
                "{operation}: no answer within {bound:?}"
            ))),
        }
    }
}

impl LogReader for KafkaLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        self.fetch_batch(topic, partition, offset, max_records, max_wait)
            .await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        KafkaLog::partition_count(self, topic).await
    }
}

impl LogWriter for KafkaLog {
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<i64>, LogError> {
        self.produce_batch(topic, partition, records).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        KafkaLog::partition_count(self, topic).await
    }
}

/// Locks a cache. A panic while holding one cannot leave it inconsistent (single inserts and
/// removals), so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
