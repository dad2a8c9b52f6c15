//! Taskstream's event log: the wire contract (CloudEvents envelope, topic names, event types and
//! payloads), the transactional outbox writer, the transports (a Kafka-protocol broker through
//! rskafka, NATS JetStream through async-nats, or the outbox table itself in embedded mode), the
//! outbox relay and the consumer runtime shared by every subscriber.
//!
//! It deliberately knows nothing of GraphQL or HTTP, and nothing of what subscribers do with an
//! event: handlers are plugged into the consumer runtime.
//!
//! Architecture invariants: only `stream/src/kafka*` imports `rskafka`; only `stream/src/nats/`
//! imports `async-nats`.
//!
//! Layering, one way: the contract (`envelope`, `topics`, `*_events`), `log` and `lifecycle` at
//! the bottom; `db`, `wakeup`, then `write_txn` and `outbox` on them; the transports, `relay`, `consumer`,
//! `dead_letters` and `retention` on those. The transports, the relay and the consumer runtime
//! do not import one another.
//!
//! Module map:
//! - [`envelope`]: the CloudEvents 1.0 structured-mode envelope;
//! - [`topics`]: topic names and their dead-letter twins;
//! - [`task_events`]: task event types and the task snapshot carried in their data;
//! - [`reminder_events`], [`notification_events`]: the event types and data of fired reminders
//!   and new notifications;
//! - [`log`]: the transport-independent log interface (records, offsets, errors);
//! - [`outbox`]: the outbox's shape on both sides: the write transaction, appending events
//!   (one, or the two of a task change) inside the caller's transaction, header names, and
//!   rows as records and back;
//! - [`wakeup`]: commit wake-ups between processes on PostgreSQL (LISTEN/NOTIFY);
//! - [`write_txn`]: the write transaction every writer opens, behind an in-process queue of
//!   writers on SQLite;
//! - [`partitioner`]: murmur2 key partitioning, identical to Kafka's Java client;
//! - [`kafka`]: the Kafka-protocol transport (rskafka) and the `KAFKA_*` flags;
//! - [`nats`]: the NATS JetStream transport (async-nats) and the `NATS_*` flags;
//! - [`embedded`]: the embedded transport: the `outbox` table read as the log;
//! - [`consumer`]: the consumer runtime (offsets, dedupe, batching, retry, dead letters);
//! - [`db`]: opening the database (SQLite or PostgreSQL, one pool configuration for every
//!   process and the tests);
//! - [`dead_letters`]: list, show, replay and discard parked records;
//! - [`relay`]: publishes pending outbox rows to the log, one active relay per database;
//! - [`retention`]: deletes outbox rows, processed event ids and finished dead letters no
//!   reader needs any more, in bounded batches;
//! - [`lifecycle`]: the process's cancellation token and task tracker, the shutdown signal and
//!   the retry schedule, shared by the gateway and the subscriber binaries;
//! - [`broker`]: the broker of distributed mode, Kafka or NATS, chosen by configuration;
//! - [`broker_process`], [`nats_process`]: start a local tansu broker or nats-server for tests and
//!   benchmarks, on the process handling of `server_process`.

pub mod broker;
pub mod broker_process;
pub mod consumer;
pub mod db;
pub mod dead_letters;
pub mod embedded;
pub mod envelope;
pub mod kafka;
pub mod lifecycle;
pub mod log;
pub mod nats;
pub mod nats_process;
pub mod notification_events;
pub mod outbox;
pub mod partitioner;
pub mod relay;
pub mod reminder_events;
pub mod retention;
mod server_process;
pub mod task_events;
pub mod topics;
pub mod wakeup;
pub mod write_txn;

pub use envelope::CloudEvent;
