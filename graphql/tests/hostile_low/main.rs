//! Hostile input of low severity, on SQLite and PostgreSQL, mostly through
//! `schema.execute`: JWT subjects that are blank or hold a NUL (`auth`, over HTTP), webhook
//! URLs whose IPv6 literal embeds a private IPv4 address (`ssrf`), NUL characters in free text
//! (`nul`), a failed `updateSettings` that must write nothing (`settings`), and dates outside
//! the accepted range, including the end of a recurring series at its last allowed day
//! (`dates`). The `/dev/token` Host and Origin checks are in `tests/web.rs`.
//!
//! Every rejection is checked for its code and the field it names, and for leaving the
//! database as it was (rows counted directly).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod dates;
mod nul;
mod settings;
mod ssrf;

use serde_json::{Value, json};
use support::{TASK_FIELDS, TestApp};

const ALICE: &str = "alice";

const UPDATE_SETTINGS: &str =
    "mutation($i: SettingsInput!) { updateSettings(input: $i) { id timezone webhookUrl } }";

const CREATE_TASK: &str = "mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }";

/// Asserts a `BAD_USER_INPUT` error whose message contains `expected`.
fn assert_bad_input((code, message): (String, String), expected: &str) {
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    assert!(
        message.contains(expected),
        "{expected:?} not in {message:?}"
    );
}

/// Row counts of the tables a rejected request could have written to.
async fn row_counts(app: &TestApp) -> Value {
    let mut counts = serde_json::Map::new();
    for table in ["users", "tasks", "tags", "task_tags", "reminders", "outbox"] {
        counts.insert(table.to_owned(), json!(app.count(table).await));
    }
    Value::Object(counts)
}
