//! The gateway's database: opened as every taskstream process opens it
//! ([`stream::db`]: SQLite or PostgreSQL, a bounded pool, clear errors for a URL that
//! cannot work), migrated, and pinged for `/readyz`.

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
pub use stream::db::{
    ACCEPTED_FORMS, MAX_CONNECTIONS, POSTGRES_REACH_TIMEOUT, SQLITE_BUSY_TIMEOUT, connect,
    connect_existing, redact_url,
};

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
