//! Taskstream's event log: the wire contract (CloudEvents envelope, topic names, event types and
//! payloads) and the transactional outbox writer.
//!
//! This crate is the only place that knows how an event looks on the log. It deliberately does
//! not decide *when* events happen (the gateway's services do) and, for now, does not talk to a
//! broker: the relay to the Kafka-protocol log and the consumer runtime arrive here later, and
//! only `stream/src/kafka*` will ever import `rskafka`.
//!
//! Module map:
//! - [`envelope`]: the CloudEvents 1.0 structured-mode envelope and its `ce_*` record headers;
//! - [`topics`]: topic names and their dead-letter twins;
//! - [`task_events`]: task event types and the task snapshot carried in their data;
//! - [`outbox`]: appends events to the `outbox` table inside the caller's transaction.

pub mod envelope;
pub mod outbox;
pub mod task_events;
pub mod topics;

pub use envelope::CloudEvent;
