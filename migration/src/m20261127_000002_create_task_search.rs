//! Full-text search over task titles and descriptions, with stemming, on both databases.
//!
//! - PostgreSQL: a stored generated `tsvector` column (`english` configuration, title weighted
//!   above description) with a GIN index.
//! - SQLite: an FTS5 table (`porter unicode61` tokenizer) kept in step by triggers. FTS5 rows
//!   are keyed by an integer rowid, and a table without an INTEGER PRIMARY KEY (tasks has a
//!   UUID key) may renumber its rowids on VACUUM, so a small map table gives every task a
//!   stable integer `rowid` that the FTS table uses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE tasks ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'B')
     ) STORED",
    "CREATE INDEX ix_tasks_search ON tasks USING GIN (search)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS ix_tasks_search",
    "ALTER TABLE tasks DROP COLUMN IF EXISTS search",
];

/// The stable rowid map (see the module documentation).
const SQLITE_MAP_TABLE: &str =
    "CREATE TABLE task_search_ids (rowid INTEGER PRIMARY KEY, task_id BLOB NOT NULL UNIQUE)";

/// The FTS table and its triggers (the insert and delete triggers are restored by
/// `m20261207_000003_add_search_terms`'s `down`).
const SQLITE_FTS_TABLE: &str = "CREATE VIRTUAL TABLE task_search USING fts5(title, description, tokenize = 'porter unicode61')";
pub(crate) const SQLITE_INSERT_TRIGGER: &str =
    "CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN
        INSERT INTO task_search_ids (task_id) VALUES (new.id);
        INSERT INTO task_search (rowid, title, description)
            VALUES (last_insert_rowid(), new.title, new.description);
     END";
const SQLITE_UPDATE_TRIGGER: &str =
    "CREATE TRIGGER tasks_search_update AFTER UPDATE OF title, description ON tasks BEGIN
        DELETE FROM task_search
            WHERE rowid = (SELECT rowid FROM task_search_ids WHERE task_id = old.id);
        INSERT INTO task_search (rowid, title, description)
            VALUES ((SELECT rowid FROM task_search_ids WHERE task_id = new.id),
                    new.title, new.description);
     END";
pub(crate) const SQLITE_DELETE_TRIGGER: &str =
    "CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks BEGIN
        DELETE FROM task_search
            WHERE rowid = (SELECT rowid FROM task_search_ids WHERE task_id = old.id);
        DELETE FROM task_search_ids WHERE task_id = old.id;
     END";

const SQLITE_UP: &[&str] = &[
    SQLITE_MAP_TABLE,
    SQLITE_FTS_TABLE,
    SQLITE_INSERT_TRIGGER,
    SQLITE_UPDATE_TRIGGER,
    SQLITE_DELETE_TRIGGER,
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS tasks_search_delete",
    "DROP TRIGGER IF EXISTS tasks_search_update",
    "DROP TRIGGER IF EXISTS tasks_search_insert",
    "DROP TABLE IF EXISTS task_search",
    "DROP TABLE IF EXISTS task_search_ids",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for sql in statements {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run(manager, POSTGRES_UP).await,
            DbBackend::Sqlite => run(manager, SQLITE_UP).await,
            other => Err(DbErr::Migration(format!(
                "unsupported database backend {other:?}"
            ))),
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            DbBackend::Sqlite => run(manager, SQLITE_DOWN).await,
            other => Err(DbErr::Migration(format!(
                "unsupported database backend {other:?}"
            ))),
        }
    }
}
