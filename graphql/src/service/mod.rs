//! Service functions: database work behind the resolvers. Each takes a connection and the
//! caller's user id (or a [`task::TaskChangeContext`]); none knows about GraphQL or HTTP.
//!
//! - [`task`]: create, update, complete, reopen, delete, with their outbox events; its input
//!   types and validation (`task_input`), tagging (`task_tagging`) and reminder rows
//!   (`task_reminders`) are private submodules re-exported through it;
//! - [`task_history`]: every version of a task, a task as of an instant, deleted tasks and
//!   restoring them;
//! - [`task_list`]: the filtered, searched, sorted, keyset-paged task list;
//! - [`tag`]: tags and their counts;
//! - [`notification`]: the in-app inbox, paged, and marking read;
//! - [`user`]: users and settings;
//! - [`calendar_feed`]: iCalendar feed URLs (create, list, revoke) and the tasks a feed serves.

pub mod calendar_feed;
pub mod notification;
pub mod tag;
pub mod task;
pub mod task_history;
pub mod task_list;
pub mod user;

// Internals of `task`: its public API is re-exported there.
mod task_input;
mod task_reminders;
mod task_tagging;

// Internals of `task_list`: its public API is re-exported there.
mod task_cursor;
mod task_filter;

use sea_orm::DbErr;

/// The write transaction every writer of the database opens (`BEGIN IMMEDIATE` on SQLite).
pub use stream::outbox::begin_write;

/// Commits a transaction that may have appended to the outbox, then wakes the relay and the
/// embedded consumers so the events go out at once rather than at the next poll.
pub async fn commit_and_notify<T: sea_orm::TransactionSession>(txn: T) -> Result<(), DbErr> {
    txn.commit().await?;
    stream::outbox::notify_committed();
    Ok(())
}
