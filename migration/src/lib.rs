//! Taskstream's database migrations, run by the gateway at start-up (unless disabled), by the
//! Helm hook Job, and by hand with `cargo run -p migration -- up|down|status`.
//!
//! Migrations are append-only and never use `entities`' table models: each describes the
//! schema as it was on its day. The one import is `entities::search`, the pure text function
//! whose results `m20261207_000003_add_search_terms` backfills. Every migration has a `down`. Constraints and indexes are named so that
//! errors can be mapped by name (`uq_tags_owner_name`, `uq_tasks_generated_from`, ...).
//!
//! On PostgreSQL the migration step also grants the application's login role, which owns
//! nothing, its privileges on every run ([`app_role`]; `--grant-to ROLE`).
//!
//! Module map: one module per migration, named `mYYYYMMDD_HHMMSS_verb_object`; `app_role`, the
//! application role's grants.

pub use sea_orm_migration::prelude::*;

pub mod app_role;

mod m20261127_000001_create_core_tables;
mod m20261127_000002_create_task_search;
mod m20261127_000003_create_notifications;
mod m20261127_000004_create_webhook_deliveries;
mod m20261206_000001_create_idempotency_keys;
mod m20261206_000002_add_retention_indexes;
mod m20261207_000002_add_occurrence_times;
mod m20261207_000003_add_search_terms;
mod m20261207_000004_add_value_checks;
mod m20261208_000001_create_consumer_leases;
mod m20261208_000002_create_task_versions;
mod m20261208_000003_create_calendar_feeds;
mod m20261208_000004_add_notification_times;
mod m20261209_000001_extend_open_due_index;

/// The ordered list of Taskstream's migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_core_tables::Migration),
            Box::new(m20261127_000002_create_task_search::Migration),
            Box::new(m20261127_000003_create_notifications::Migration),
            Box::new(m20261127_000004_create_webhook_deliveries::Migration),
            Box::new(m20261206_000001_create_idempotency_keys::Migration),
            Box::new(m20261206_000002_add_retention_indexes::Migration),
            Box::new(m20261207_000002_add_occurrence_times::Migration),
            Box::new(m20261207_000003_add_search_terms::Migration),
            Box::new(m20261207_000004_add_value_checks::Migration),
            Box::new(m20261208_000001_create_consumer_leases::Migration),
            Box::new(m20261208_000002_create_task_versions::Migration),
            Box::new(m20261208_000003_create_calendar_feeds::Migration),
            Box::new(m20261208_000004_add_notification_times::Migration),
            Box::new(m20261209_000001_extend_open_due_index::Migration),
        ]
    }
}
