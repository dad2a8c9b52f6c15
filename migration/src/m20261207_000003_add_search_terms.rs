//! Search and title sort that answer the same on SQLite and PostgreSQL: the application folds
//! and splits text once, in Rust (`entities::search`), and the databases only compare what it
//! stored.
//!
//! - `tasks.search_title`, `tasks.search_body`: the title's and the description's search words,
//!   separated by single spaces; `tasks.title_key`: the folded title that `TITLE` sorts by, by
//!   its bytes (`COLLATE "C"` on PostgreSQL, SQLite's default `BINARY`), indexed as
//!   `(owner_id, title_key, id)`. Existing rows are backfilled here, in Rust; the application
//!   writes the columns with every title and description.
//! - PostgreSQL: `tasks.search_terms`, a generated `tsvector` built from the stored words by
//!   `search_words_tsvector`, which writes each word as a lexeme (title words weighted A,
//!   description words B) without a parser, a dictionary or stop words; GIN-indexed.
//! - SQLite: the FTS5 table `task_terms` over the stored words with the `ascii` tokenizer, which
//!   splits them at the spaces between them and changes nothing else (they are already lower
//!   case). It shares the stable rowids of `task_search_ids`; the insert and delete triggers
//!   now maintain both FTS tables.
//!
//! Expand only (docs/ROLLBACK.md): the previous release's search (`tasks.search`, the `english`
//! tsvector; SQLite's porter `task_search`) and its title index `(owner_id, LOWER(title), id)`
//! stay and stay maintained, so a rollback finds them intact. Tasks that the previous release
//! writes meanwhile (during the rollout, or after a rollback) get empty or stale search columns,
//! since only this release's code derives them: the contract migration of a later release runs
//! [`backfill`] again, then drops the old search column, FTS table, triggers and index.
//!
//! The backfill calls today's `entities::search`: a later change to the folding ships with a
//! migration of its own that recomputes the columns.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::sea_orm::prelude::Uuid;

use crate::m20261127_000002_create_task_search as english;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    Title,
    Description,
    SearchTitle,
    SearchBody,
    TitleKey,
}

/// PostgreSQL, before the backfill.
const POSTGRES_UP_COLUMNS: &[&str] = &["ALTER TABLE tasks
    ADD COLUMN search_title text NOT NULL DEFAULT '',
    ADD COLUMN search_body text NOT NULL DEFAULT '',
    ADD COLUMN title_key text COLLATE \"C\" NOT NULL DEFAULT ''"];

/// PostgreSQL, after the backfill (so that the tsvector is computed once per row).
/// `search_words_tsvector` turns space-separated words into a tsvector literal
/// (`'word':1A 'other':2A`) that `tsvector`'s input function takes verbatim, with positions (so
/// that `ts_rank` counts matches) and the weight given; the quoting makes it total for any text,
/// though stored words are only ever letters, digits and marks.
const POSTGRES_UP_SEARCH: &[&str] = &[
    r#"CREATE FUNCTION search_words_tsvector(words text, weight text) RETURNS tsvector
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$
            SELECT coalesce(
                string_agg(
                    '''' || replace(replace(w, '\', '\\'), '''', '''''') || ''':'
                        || i::text || weight,
                    ' '
                )::tsvector,
                ''::tsvector
            )
            FROM unnest(string_to_array(words, ' ')) WITH ORDINALITY AS t(w, i)
            WHERE w <> ''
        $$"#,
    "ALTER TABLE tasks ADD COLUMN search_terms tsvector GENERATED ALWAYS AS (
        search_words_tsvector(search_title, 'A') || search_words_tsvector(search_body, 'B')
     ) STORED",
    "CREATE INDEX ix_tasks_search_terms ON tasks USING GIN (search_terms)",
    "CREATE INDEX ix_tasks_owner_title_key ON tasks (owner_id, title_key, id)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS ix_tasks_owner_title_key",
    "DROP INDEX IF EXISTS ix_tasks_search_terms",
    "ALTER TABLE tasks DROP COLUMN IF EXISTS search_terms",
    "DROP FUNCTION IF EXISTS search_words_tsvector(text, text)",
    "ALTER TABLE tasks DROP COLUMN search_title, DROP COLUMN search_body, DROP COLUMN title_key",
];

/// SQLite, before the backfill.
const SQLITE_UP_COLUMNS: &[&str] = &[
    "ALTER TABLE tasks ADD COLUMN search_title TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE tasks ADD COLUMN search_body TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE tasks ADD COLUMN title_key TEXT NOT NULL DEFAULT ''",
];

/// SQLite, after the backfill: the FTS table over the stored words, filled once, then kept in
/// step by triggers. The insert and delete triggers are replaced by ones that maintain both FTS
/// tables and the rowid map they share; the previous update trigger stays as it is.
const SQLITE_UP_SEARCH: &[&str] = &[
    "CREATE VIRTUAL TABLE task_terms USING fts5(title, description, tokenize = 'ascii')",
    "INSERT INTO task_terms (rowid, title, description)
        SELECT ids.rowid, tasks.search_title, tasks.search_body
        FROM task_search_ids AS ids JOIN tasks ON tasks.id = ids.task_id",
    "DROP TRIGGER tasks_search_insert",
    "CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN
        INSERT INTO task_search_ids (task_id) VALUES (new.id);
        INSERT INTO task_search (rowid, title, description)
            VALUES (last_insert_rowid(), new.title, new.description);
        INSERT INTO task_terms (rowid, title, description)
            VALUES (last_insert_rowid(), new.search_title, new.search_body);
     END",
    "CREATE TRIGGER tasks_terms_update AFTER UPDATE OF search_title, search_body ON tasks BEGIN
        DELETE FROM task_terms
            WHERE rowid = (SELECT rowid FROM task_search_ids WHERE task_id = old.id);
        INSERT INTO task_terms (rowid, title, description)
            VALUES ((SELECT rowid FROM task_search_ids WHERE task_id = new.id),
                    new.search_title, new.search_body);
     END",
    "DROP TRIGGER tasks_search_delete",
    "CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks BEGIN
        DELETE FROM task_terms
            WHERE rowid = (SELECT rowid FROM task_search_ids WHERE task_id = old.id);
        DELETE FROM task_search
            WHERE rowid = (SELECT rowid FROM task_search_ids WHERE task_id = old.id);
        DELETE FROM task_search_ids WHERE task_id = old.id;
     END",
    "CREATE INDEX ix_tasks_owner_title_key ON tasks (owner_id, title_key, id)",
];

/// SQLite `down`: everything above undone, the previous insert and delete triggers restored.
const SQLITE_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS ix_tasks_owner_title_key",
    "DROP TRIGGER IF EXISTS tasks_search_delete",
    "DROP TRIGGER IF EXISTS tasks_terms_update",
    "DROP TRIGGER IF EXISTS tasks_search_insert",
    "DROP TABLE IF EXISTS task_terms",
    "ALTER TABLE tasks DROP COLUMN search_title",
    "ALTER TABLE tasks DROP COLUMN search_body",
    "ALTER TABLE tasks DROP COLUMN title_key",
    english::SQLITE_INSERT_TRIGGER,
    english::SQLITE_DELETE_TRIGGER,
];

/// Rows read and rewritten per round trip of the backfill.
const BACKFILL_BATCH: u64 = 500;

/// Runs `statements` in order (also used by later migrations).
pub(crate) async fn run<S: AsRef<str>>(
    manager: &SchemaManager<'_>,
    statements: &[S],
) -> Result<(), DbErr> {
    for sql in statements {
        manager
            .get_connection()
            .execute_unprepared(sql.as_ref())
            .await?;
    }
    Ok(())
}

/// Writes every task's search words and title key, in batches in id order. Idempotent: the
/// contract migration runs it again for the tasks that the previous release wrote meanwhile.
pub(crate) async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after: Option<Uuid> = None;
    loop {
        let mut select = Query::select();
        select
            .columns([Tasks::Id, Tasks::Title, Tasks::Description])
            .from(Tasks::Table)
            .order_by(Tasks::Id, Order::Asc)
            .limit(BACKFILL_BATCH);
        if let Some(last) = after {
            select.and_where(Expr::col(Tasks::Id).gt(last));
        }
        let rows = db.query_all(&select).await?;
        for row in &rows {
            let id: Uuid = row.try_get("", "id")?;
            let title: String = row.try_get("", "title")?;
            let description: String = row.try_get("", "description")?;
            let update = Query::update()
                .table(Tasks::Table)
                .values([
                    (
                        Tasks::SearchTitle,
                        entities::search::document(&title).into(),
                    ),
                    (
                        Tasks::SearchBody,
                        entities::search::document(&description).into(),
                    ),
                    (Tasks::TitleKey, entities::search::title_key(&title).into()),
                ])
                .and_where(Expr::col(Tasks::Id).eq(id))
                .to_owned();
            db.execute(&update).await?;
            after = Some(id);
        }
        if (rows.len() as u64) < BACKFILL_BATCH {
            return Ok(());
        }
    }
}

pub(crate) fn unsupported(backend: DbBackend) -> DbErr {
    DbErr::Migration(format!("unsupported database backend {backend:?}"))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on both databases: a failed backfill leaves nothing behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (columns, search) = match manager.get_database_backend() {
            DbBackend::Postgres => (POSTGRES_UP_COLUMNS, POSTGRES_UP_SEARCH),
            DbBackend::Sqlite => (SQLITE_UP_COLUMNS, SQLITE_UP_SEARCH),
            other => return Err(unsupported(other)),
        };
        run(manager, columns).await?;
        backfill(manager).await?;
        run(manager, search).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            DbBackend::Sqlite => run(manager, SQLITE_DOWN).await,
            other => Err(unsupported(other)),
        }
    }
}
