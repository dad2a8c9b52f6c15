//! Taskstream's data model: sea-orm entities (one module per table) and the pure domain value
//! types stored in their columns ([`priority::Priority`], [`recurrence::RecurrenceRule`],
//! [`reminder_offset::ReminderSpec`]) with their validation and arithmetic.
//!
//! This crate deliberately does no IO: it never opens a connection, reads a clock it was not
//! given, or talks to the broker. Everything here is a pure function with unit tests, so the
//! gateway and the subscribers share one definition of every rule.
//!
//! Module map:
//! - tables: [`user`], [`task`], [`tag`], [`task_tag`], [`reminder`], [`outbox`],
//!   [`consumer_offset`], [`processed_event`], [`dead_letter`], [`notification`],
//!   [`idempotency_key`];
//! - domain values: [`priority`], [`recurrence`], [`reminder_offset`], [`limits`].

pub mod consumer_offset;
pub mod dead_letter;
pub mod idempotency_key;
pub mod limits;
pub mod notification;
pub mod outbox;
pub mod priority;
pub mod processed_event;
pub mod recurrence;
pub mod reminder;
pub mod reminder_offset;
pub mod tag;
pub mod task;
pub mod task_tag;
pub mod user;
pub mod webhook_delivery;

/// Truncates a timestamp to whole microseconds, the precision PostgreSQL stores. Every
/// timestamp is truncated before it is written so that a value read back (and a keyset cursor
/// built from it) compares equal to the stored one on both databases.
pub fn to_db_precision(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}
