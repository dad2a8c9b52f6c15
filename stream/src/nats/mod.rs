//! The NATS JetStream transport of the event log, on the official `async-nats` client:
//! [`NatsLog`] implements [`LogReader`] and [`LogWriter`] against a NATS server or cluster with
//! JetStream (2.9 or newer).
//!
//! The mapping, chosen so that a partition's position is the same dense, monotonic offset the
//! consumer runtime stores and compare-and-sets on the other transports:
//! - **one stream per topic partition**: partition `p` of `topic` is stream
//!   `<prefix>-<topic>-<p>` (dots in the topic become underscores) bound to the one subject
//!   `<prefix>.<topic>.<p>`; `<prefix>` is `NATS_STREAM_PREFIX` (`taskstream`);
//! - **offset = stream sequence − 1**: JetStream numbers a stream's messages 1, 2, 3, … without
//!   gaps (nothing deletes single messages), so offsets run 0, 1, 2, … as in Kafka, and a
//!   partition's end is the stream's last sequence;
//! - a topic's partition count is the number of its streams, numbered from 0 (created at
//!   start-up when missing, `NATS_PARTITIONS`, 3 by default); keys are partitioned with the same
//!   murmur2 as on Kafka ([`crate::partitioner`]);
//! - records carry the same `ce_*` headers and JSON CloudEvent body as on Kafka; the key, the
//!   tombstone mark and the timestamp travel in headers of their own ([`records`]);
//! - streams have limits retention (`NATS_MAX_AGE_HOURS`, `NATS_MAX_BYTES`), file storage and
//!   `NATS_REPLICAS` replicas.
//!
//! Delivery:
//! - The relay publishes with JetStream acknowledgements (the stream has stored the message on a
//!   majority of its replicas) and `Nats-Msg-Id` = the CloudEvent id, so a relay that dies
//!   between publishing and marking its rows publishes them again as duplicates the server drops
//!   if they come within the stream's duplicate window (`NATS_DUPLICATE_WINDOW_SECS`, 2 minutes);
//!   its acknowledgement then names the first copy's sequence, which the relay records. A
//!   republish after the window appends a second copy, which consumers skip by event id (the
//!   same at-least-once as Kafka).
//! - Reads use one ordered pull consumer per partition (ephemeral, unacknowledged, created at the
//!   requested offset and kept while fetches continue from where the previous one ended), so a
//!   fetch is a read from a buffer the server keeps filled. No consumer state lives on the
//!   server: offsets stay in the application database, as on Kafka.
//! - Every operation is bounded (`connect_timeout`, `request_timeout`, plus a fetch's
//!   `max_wait`): a dead server yields [`LogError::Unavailable`], never a hang. The client
//!   reconnects in the background.
//! - A fetch below the oldest kept message or past the end is [`LogError::OffsetOutOfRange`].
//!
//! Modules: [`config`] (settings and URL parsing), `args` ([`NatsArgs`], the `NATS_*` flags),
//! `records` (record ↔ message), `streams` (stream creation, partition counts, watermarks),
//! `reader` (ordered consumers behind [`LogReader::fetch`]).

mod args;
pub mod config;
mod reader;
pub mod records;
mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::{ConnectErrorKind, ConnectOptions};

pub use args::NatsArgs;
pub use config::{NatsAuth, NatsConfig, NatsConfigError, NatsTls, parse_servers};

use crate::log::{Fetched, LogError, LogReader, LogWriter, OutgoingRecord};

/// A partition's ordered consumer, if one is open, behind the lock its fetches take in turn.
type CursorSlot = Arc<tokio::sync::Mutex<Option<reader::Cursor>>>;

/// A NATS JetStream event log. Cheap to share (`Arc<NatsLog>`); all methods take `&self`.
pub struct NatsLog {
    client: async_nats::Client,
    js: jetstream::Context,
    config: NatsConfig,
    /// Partition count per topic, from the last stream listing.
    partition_counts: Mutex<HashMap<String, i32>>,
    /// The ordered consumer of each partition this log reads, with the offset it continues at.
    cursors: Mutex<HashMap<(String, i32), CursorSlot>>,
}

impl std::fmt::Debug for NatsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLog")
            .field("servers", &self.config.servers)
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl NatsLog {
    /// Connects (bounded by `connect_timeout`) and checks that the account has JetStream. A
    /// server that cannot be reached is [`LogError::Unavailable`]; refused credentials, bad TLS
    /// settings or a server without JetStream are [`LogError::Fatal`].
    pub async fn connect(config: NatsConfig) -> Result<NatsLog, LogError> {
        config
            .validate()
            .map_err(|e| LogError::Fatal(e.to_string()))?;
        let servers = config.servers.join(",");
        let options = connect_options(&config).await?;
        let addresses = config
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LogError::Fatal(format!("NATS_URL {servers:?}: {e}")))?;
        let operation = format!("connect to NATS servers {servers}");
        let client = match tokio::time::timeout(
            config.connect_timeout + Duration::from_secs(1),
            options.connect(addresses),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                let message = format!("{operation}: {error}");
                if tls_refused(&error) {
                    return Err(LogError::Fatal(format!(
                        "{message}: the TLS handshake failed (check NATS_TLS_CA_FILE, the CA of \
                         the servers' certificates, and for servers that verify clients \
                         NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE)"
                    )));
                }
                return Err(match error.kind() {
                    ConnectErrorKind::Authentication
                    | ConnectErrorKind::AuthorizationViolation
                    | ConnectErrorKind::Tls
                    | ConnectErrorKind::ServerParse => LogError::Fatal(message),
                    _ => LogError::Unavailable(message),
                });
            }
            Err(_) => {
                return Err(LogError::Unavailable(format!(
                    "{operation}: no answer within {:?}",
                    config.connect_timeout
                )));
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let log = NatsLog {
            client,
            js,
            config,
            partition_counts: Mutex::default(),
            cursors: Mutex::default(),
        };
        log.check_jetstream().await?;
        Ok(log)
    }

    /// [`NatsLog::connect`], then creates the streams of the taskstream topics that are missing:
    /// the log every taskstream process uses.
    pub async fn connect_with_topics(config: NatsConfig) -> Result<NatsLog, LogError> {
        let log = NatsLog::connect(config).await?;
        log.ensure_taskstream_topics().await?;
        Ok(log)
    }

    /// [`NatsLog::connect_with_topics`], retrying with backoff (200 ms doubling up to 30 s)
    /// while the servers are unreachable (rows wait in the outbox meanwhile). `Ok(None)` once
    /// `shutdown` is cancelled; an error that retrying cannot fix is returned.
    pub async fn connect_with_retry(
        config: &NatsConfig,
        shutdown: &crate::lifecycle::CancellationToken,
    ) -> Result<Option<NatsLog>, LogError> {
        crate::log::retry_while_unavailable(shutdown, || {
            NatsLog::connect_with_topics(config.clone())
        })
        .await
    }

    /// The settings this log was built with.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// Whether the client is connected right now (it reconnects in the background).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn bounded<T>(
        &self,
        operation: &str,
        extra: Duration,
        work: impl Future<Output = Result<T, LogError>>,
    ) -> Result<T, LogError> {
        let bound = self.config.request_timeout + extra;
        match tokio::time::timeout(bound, work).await {
            Ok(result) => result,
            Err(_) => Err(LogError::Unavailable(format!(
                "{operation}: no answer within {bound:?}"
            ))),
        }
    }

    /// Publishes `records` in order to partition `partition` of `topic` and waits for every
    /// acknowledgement (the publishes are pipelined).
    async fn publish(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<i64>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let count = self.partition_count(topic).await?;
        if !(0..count).contains(&partition) {
            return Err(LogError::Fatal(format!(
                "NATS topic {topic} has {count} partitions: there is no partition {partition}"
            )));
        }
        let subject = self.config.subject(topic, partition);
        let stream = self.config.stream_name(topic, partition);
        let operation = format!("publish {} records to {subject}", records.len());
        self.bounded(&operation, self.config.request_timeout, async {
            let mut acks = Vec::with_capacity(records.len());
            for record in records {
                let (headers, payload) = records::to_message(record);
                let publish = PublishMessage::build()
                    .payload(payload)
                    .headers(headers)
                    .expected_stream(&stream);
                let ack = self
                    .js
                    .send_publish(subject.clone(), publish)
                    .await
                    .map_err(|e| publish_error(&operation, &e))?;
                acks.push(ack);
            }
            let mut offsets = Vec::with_capacity(acks.len());
            for ack in acks {
                let ack = ack.await.map_err(|e| publish_error(&operation, &e))?;
                if ack.stream != stream {
                    return Err(LogError::Fatal(format!(
                        "{operation}: stored by stream {} instead of {stream}: another stream \
                         binds the subject",
                        ack.stream
                    )));
                }
                offsets.push(records::sequence_to_offset(ack.sequence)?);
            }
            Ok(offsets)
        })
        .await
    }
}

/// The client options for `config`: name, timeouts, credentials and TLS.
async fn connect_options(config: &NatsConfig) -> Result<ConnectOptions, LogError> {
    let mut options = ConnectOptions::new()
        .name(&config.client_name)
        .connection_timeout(config.connect_timeout)
        .request_timeout(Some(config.request_timeout));
    options = match &config.auth {
        NatsAuth::None => options,
        NatsAuth::CredentialsFile(path) => options.credentials_file(path).await.map_err(|e| {
            LogError::Fatal(format!(
                "NATS_CREDS_FILE {}: cannot be read as a credentials file: {e}",
                path.display()
            ))
        })?,
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => options.token(token.clone()),
    };
    if let Some(tls) = &config.tls {
        options = options.require_tls(true);
        if let Some(ca) = &tls.ca_file {
            if !ca.is_file() {
                return Err(LogError::Fatal(format!(
                    "NATS_TLS_CA_FILE {} does not exist",
                    ca.display()
                )));
            }
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &tls.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(options)
}

/// Whether connecting failed in the TLS handshake (a server certificate from an untrusted CA or
/// for another name, a client certificate missing or refused): async-nats reports these as I/O
/// errors, but retrying cannot fix them.
fn tls_refused(error: &async_nats::ConnectError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// A publish failure as a [`LogError`]: a missing stream is a configuration error, everything
/// else (timeouts, a broken connection) may pass.
fn publish_error(operation: &str, error: &jetstream::context::PublishError) -> LogError {
    use jetstream::context::PublishErrorKind as Kind;
    let message = format!("{operation}: {error}");
    match error.kind() {
        Kind::StreamNotFound | Kind::MaxPayloadExceeded | Kind::WrongLastMessageId => {
            LogError::Fatal(message)
        }
        _ => LogError::Unavailable(message),
    }
}

impl LogReader for NatsLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        self.fetch_from(topic, partition, offset, max_records, max_wait)
            .await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        NatsLog::partition_count(self, topic).await
    }
}

impl LogWriter for NatsLog {
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<i64>, LogError> {
        self.publish(topic, partition, records).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        NatsLog::partition_count(self, topic).await
    }
}

/// Locks a cache. A panic while holding one cannot leave it inconsistent (single inserts and
/// removals), so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
