//! The event backbone under faults, end to end: mutations through the GraphQL schema write the
//! outbox, the relay publishes it to a real Kafka-protocol broker (tansu 0.6.0, one per test),
//! and consumers of the shared runtime apply `task-events` from every partition, each over a
//! `KafkaLog` of its own, with the application database on SQLite and PostgreSQL. The tests
//! kill and restart the broker, crash the relay between produce and mark, abort consumers
//! mid-stream, run two instances at once, park a poison record, and point a consumer past the
//! log's end.
//!
//! The test handler writes one row per application into a scratch `effects` table that has no
//! unique constraint on the event id, so a double application shows up as a count of two:
//! exactly-once is checked, not assumed. "Quiescent" means no outbox row is pending and every
//! stored offset of every consumer equals its partition's high watermark.
//!
//! Modules: `handler` (the test handler and its effects) and `harness` (outbox, log, offsets,
//! running pieces) are shared; the tests are grouped by what is faulted: `flow` (nothing),
//! `broker`, `relay`, `consumers`, `offsets` and `poison`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod handler;
mod harness;

mod broker;
mod consumers;
mod flow;
mod offsets;
mod poison;
mod relay;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, Set, Statement, TransactionTrait,
};
use serde_json::json;
use stream::CloudEvent;
use stream::broker_process::TansuBroker;
use stream::consumer::{
    Consumer, ConsumerConfig, ConsumerError, Handler, HandlerError, HandlerOutcome,
};
use stream::dead_letters::{self, DeadLetterError, DeadLetterStatus, ReplayOutcome};
use stream::kafka::{KafkaConfig, KafkaLog};
use stream::log::{LogReader, LogRecord, LogWriter, OutgoingRecord};
use stream::relay::{Relay, RelayConfig};
use support::TestApp;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use handler::*;
use harness::*;

const ALICE: &str = "alice";
const TOPIC: &str = stream::topics::TASK_EVENTS;
const CONSUMER: &str = "pipeline-test";
/// How long a healthy pipeline may take to become quiescent on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// The same after broker restarts: each costs a reconnection and the relay's backoff.
const RESTART_DEADLINE: Duration = Duration::from_secs(120);
