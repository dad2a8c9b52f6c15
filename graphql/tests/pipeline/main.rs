//! The event backbone under faults, end to end: mutations through the GraphQL schema write the
//! outbox, the relay publishes it to a real broker, and consumers of the shared runtime apply
//! `task-events` from every partition, each over a log of its own. Every test runs four times:
//! on both brokers (a Kafka-protocol broker, tansu 0.6.0, and NATS JetStream, nats-server; one
//! per test) and on both application databases (SQLite and PostgreSQL). The tests
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

/// `on_both_databases!` times both brokers: a module `$name` with one test per (broker,
/// database), the body taking the test database and the [`Transport`] to start.
macro_rules! on_every_log {
    ($name:ident, |$t:ident, $transport:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run($t: &testkit::TestDb, $transport: Transport) $body

            async fn on(backend: testkit::Backend, transport: Transport) {
                if let Some(t) = testkit::TestDb::migrated(backend).await {
                    run(&t, transport).await;
                    t.cleanup().await;
                }
            }

            #[tokio::test]
            async fn kafka_sqlite() {
                on(testkit::Backend::Sqlite, Transport::Kafka).await;
            }

            #[tokio::test]
            async fn kafka_postgres() {
                on(testkit::Backend::Postgres, Transport::Kafka).await;
            }

            #[tokio::test]
            async fn nats_sqlite() {
                on(testkit::Backend::Sqlite, Transport::Nats).await;
            }

            #[tokio::test]
            async fn nats_postgres() {
                on(testkit::Backend::Postgres, Transport::Nats).await;
            }
        }
    };
}

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
use stream::broker::BrokerLog;
use stream::consumer::{
    Consumer, ConsumerConfig, ConsumerError, Handler, HandlerError, HandlerOutcome,
};
use stream::dead_letters::{self, DeadLetterError, DeadLetterStatus, ReplayOutcome};
use stream::log::{LogReader, LogRecord, LogWriter, OutgoingRecord};
use stream::relay::{Relay, RelayConfig};
use support::{TestApp, TestBroker, Transport};
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
