//! The gateway's database: opened as every taskstream process opens it
//! ([`stream::db`]: SQLite or PostgreSQL, a bounded pool, clear errors for a URL that
//! cannot work), migrated, its role's privileges checked, and pinged for `/readyz`.

use anyhow::Context;
use migration::MigratorTrait;
use migration::app_role::AppRole;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use crate::config::ServerConfig;
pub use stream::db::{
    ACCEPTED_FORMS, MAX_CONNECTIONS, POSTGRES_REACH_TIMEOUT, SQLITE_BUSY_TIMEOUT, connect,
    connect_existing, redact_url,
};

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migrate_and_grant(db, None).await
}

/// Applies every pending migration, then grants `grant_to`, the application's login role,
/// its privileges ([`migration::app_role`]; PostgreSQL only, and the role must exist: both
/// are checked before migrating).
async fn migrate_and_grant(db: &DatabaseConnection, grant_to: Option<&str>) -> anyhow::Result<()> {
    let role = match grant_to {
        Some(name) => Some(AppRole::find(db, name).await?),
        None => None,
    };
    migration::Migrator::up(db, None).await.context(
        "running database migrations failed (they run as the schema's owner; a role that \
             only reads and writes rows needs TASKSTREAM_NO_MIGRATE=true)",
    )?;
    if let Some(role) = role {
        role.grant(db).await?;
    }
    Ok(())
}

/// Readies the database for this process: migrates (granting `--grant-to`'s role) unless
/// `TASKSTREAM_NO_MIGRATE`, then checks that this process's role may read and write every
/// table, so a role without the grants fails at start-up, naming what it lacks, instead of
/// in every request and background task.
pub async fn prepare(db: &DatabaseConnection, config: &ServerConfig) -> anyhow::Result<()> {
    if !config.no_migrate {
        migrate_and_grant(db, config.grant_to.as_deref()).await?;
    }
    migration::app_role::ensure_privileges(db).await?;
    Ok(())
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
