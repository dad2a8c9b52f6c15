//! Connecting to the database: SQLite (embedded default) or PostgreSQL, with a bounded pool,
//! and running migrations.

use std::time::Duration;

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

/// Most connections in the pool. PostgreSQL's default `max_connections` is 100; several gateway
/// replicas and the subscribers share it, so each process stays small.
pub const MAX_CONNECTIONS: u32 = 10;

/// SQLite allows one writer at a time; waiting writers retry for up to this long before
/// failing with "database is locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool for `url` (`sqlite://path?mode=rwc` or `postgres://...`). SQLite runs in WAL
/// mode with a busy timeout and foreign keys on.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(MAX_CONNECTIONS)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                .create_if_missing(true)
        });
    }
    let db = Database::connect(opts)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact_url(url)))?;
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migration::Migrator::up(db, None)
        .await
        .context("running database migrations failed")
}

/// A cheap round trip, for `/readyz`.
pub async fn ping(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared("SELECT 1").await?;
    Ok(())
}

/// Whether `db` is PostgreSQL (otherwise SQLite).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/tasks"),
            "postgres://app:***@db:5432/tasks"
        );
        assert_eq!(
            redact_url("postgres://app@db/tasks"),
            "postgres://app@db/tasks"
        );
        assert_eq!(
            redact_url("sqlite://tasks.db?mode=rwc"),
            "sqlite://tasks.db?mode=rwc"
        );
    }
}
