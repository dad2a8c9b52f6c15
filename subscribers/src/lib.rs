//! Taskstream's subscribers: the handlers that consume the event log and react to task changes,
//! each run by the shared consumer runtime of [`stream::consumer`] (offsets, dedupe, retries and
//! dead letters live there, not here).
//!
//! A handler is plain logic over one record and one database transaction, so the same code runs
//! in-process in embedded mode (over the outbox table) and as its own small binary in distributed
//! mode (over Kafka partitions). This crate knows nothing about GraphQL or HTTP and does not
//! depend on the gateway; it writes the rows and outbox events it needs itself.
//!
//! Module map:
//! - [`recurrence`]: on a completed recurring task, creates exactly one next occurrence (the
//!   [`recurrence::RecurrenceHandler`], consumer `recurrence` on `task-events`);
//! - [`next_occurrence`]: the pure rule arithmetic behind it: when the next occurrence is due,
//!   or that the series is over;
//! - [`reminder`]: keeps a task's reminders in step with its events: cancelled on completion
//!   or deletion, re-armed on reopen, fire times moved with the due date (the
//!   [`reminder::ReminderHandler`], consumer `reminder` on `task-events`);
//! - [`reminder_scheduler`]: fires due reminders into `reminders` (the
//!   [`reminder_scheduler::ReminderScheduler`]: not a consumer, it polls the database);
//! - [`notification`]: turns fired reminders into in-app notifications, one per event (the
//!   [`notification::NotificationHandler`], consumer `notification` on `reminders`).
//! - [`webhook`]: POSTs new notifications to users' webhooks, signed, retried, logged in
//!   `webhook_deliveries` and guarded against SSRF (the [`webhook::WebhookHandler`], consumer
//!   `webhook` on `notifications`, queues; the [`webhook::WebhookDispatcher`] sends);
//! - [`registry`]: the one list of subscribers ([`registry::Subscriber`]): consumer, topic,
//!   event types, health component, binary and metrics port, handler and companion loop of
//!   each; everything that runs or replays subscribers iterates it;
//! - [`process`]: what the binaries share (flags, database, Kafka, partitions, signals,
//!   telemetry) and their one runner, [`process::run_binary`];
//! - [`db`]: opening the database as every taskstream process does (the gateway too);
//! - [`metrics_server`]: `GET /metrics` and `GET /healthz` on `METRICS_ADDR` for the binaries
//!   (and `taskstream relay`).
//!
//! Binaries, each its flags and a call to [`process::run_binary`], which runs the subscribers
//! the registry assigns it: `recurrence` (`src/bin/recurrence.rs`) runs the recurrence handler
//! on Kafka; `reminder` (`src/bin/reminder.rs`) runs the reminder handler on Kafka and the
//! scheduler; `notification` (`src/bin/notification.rs`) runs the notification and webhook
//! handlers on Kafka and the webhook dispatcher.

/// The database connection every process opens (moved to [`stream::db`]; re-exported).
pub use stream::db;
mod due_loop;
pub mod metrics_server;
pub mod next_occurrence;
pub mod notification;
pub mod process;
pub mod recurrence;
pub mod registry;
pub mod reminder;
pub mod reminder_scheduler;
pub mod webhook;

use chrono::{DateTime, Utc};

/// Where a handler's "now" comes from: the system clock in production, a fixed instant in tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// [`Utc::now`].
    #[default]
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current time according to this clock.
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => t,
        }
    }
}
