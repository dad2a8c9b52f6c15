//! Task, tag and settings behaviour through `schema.execute`, on SQLite and PostgreSQL.
//!
//! Modules: `tasks` (create, update, complete and their events), `conflicts` (stale versions,
//! other users' and deleted tasks), `validation` (bad task input), `tags`, `settings` (user
//! settings and recurrence previews) and `queries` (batched loading, limits, internal errors).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod conflicts;
mod queries;
mod settings;
mod tags;
mod tasks;
mod validation;

use serde_json::{Value, json};
use support::{TASK_FIELDS, TestApp};

const ALICE: &str = "alice";
const BOB: &str = "bob";

fn update_mutation() -> String {
    format!(
        "mutation($id: ID!, $input: UpdateTaskInput!) {{ updateTask(id: $id, input: $input) {{ {TASK_FIELDS} }} }}"
    )
}
