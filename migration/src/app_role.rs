//! The application's database role on PostgreSQL: the login role the gateway, the relay and
//! the subscriber binaries connect as, which reads and writes rows but owns nothing, so it
//! cannot create, alter or drop anything.
//!
//! The migration step (the `migration` binary's `--grant-to`, or `taskstream` migrating at
//! start-up) runs as the schema's owner and grants the role what the code needs on every run,
//! after migrating: every table a migration added since is covered without a second step. The
//! grants are idempotent. Rejected: `ALTER DEFAULT PRIVILEGES`, which covers only objects that
//! the role named in it creates later (another admin running a migration would silently
//! leave a table out), and leaves existing objects to a separate `GRANT`.
//!
//! What the role gets, in the schema the migrations create their tables in (the connection's
//! `current_schema()`, `public` by default):
//! - `USAGE` on the schema;
//! - `SELECT, INSERT, UPDATE, DELETE` on every table but `seaql_migrations` (the migration
//!   history is the migration step's: the role gets nothing on it);
//! - `USAGE, SELECT` on every sequence (`nextval` for ids, and `pg_sequence_last_value`,
//!   which the embedded log reads for its horizon);
//! - `EXECUTE` on every function (`search_words_tsvector`, which the generated search column
//!   calls; PostgreSQL grants it to `PUBLIC` by default, unless a hardened server revoked that).
//!
//! The rest of what the processes do needs no grant: `LISTEN`/`NOTIFY`, session advisory
//! locks (the relay's leader lock) and reading `pg_locks` (the embedded log's horizon).
//! Nothing truncates, vacuums or creates temporary tables.
//!
//! [`missing_privileges`] is the other side: what the connecting role lacks of all this, which
//! the gateway checks at start-up.

use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait,
};

/// The flag (and its environment variable) that names the role, for error messages: the
/// `migration` binary and `taskstream` spell it the same way.
pub const FLAG: &str = "--grant-to (TASKSTREAM_APP_DB_ROLE)";

/// The table sea-orm-migration records applied migrations in.
const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// Why the application role cannot be granted its privileges.
#[derive(Debug, thiserror::Error)]
pub enum AppRoleError {
    #[error("{FLAG} is for PostgreSQL only: SQLite has no roles; leave it unset")]
    NotPostgres,
    #[error(
        "{FLAG}: the database role {0:?} does not exist; create it first as the server's admin \
         (CREATE ROLE {0} LOGIN PASSWORD '...'; see docs/DEPLOYMENT.md, Database roles)"
    )]
    Missing(String),
    #[error("{FLAG}: granting the database role {role:?} its privileges failed: {source}")]
    Database { role: String, source: DbErr },
}

/// A login role that exists on the server, to be granted the application's privileges.
#[derive(Debug, Clone)]
pub struct AppRole {
    name: String,
}

impl AppRole {
    /// Checks that `db` is PostgreSQL and that a role named exactly `name` exists (names are
    /// case-sensitive here: `CREATE ROLE App` creates `app`).
    pub async fn find(db: &DatabaseConnection, name: &str) -> Result<AppRole, AppRoleError> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Err(AppRoleError::NotPostgres);
        }
        let failed = |source| AppRoleError::Database {
            role: name.to_owned(),
            source,
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 AS found FROM pg_roles WHERE rolname = $1",
                [name.into()],
            ))
            .await
            .map_err(failed)?;
        match row {
            Some(_) => Ok(AppRole {
                name: name.to_owned(),
            }),
            None => Err(AppRoleError::Missing(name.to_owned())),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Grants the role the application's privileges on everything in the current schema (see
    /// the module documentation), in one transaction.
    pub async fn grant(&self, db: &DatabaseConnection) -> Result<(), AppRoleError> {
        self.grant_all(db)
            .await
            .map_err(|source| AppRoleError::Database {
                role: self.name.clone(),
                source,
            })
    }

    async fn grant_all(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let txn = db.begin().await?;
        let schema: Option<String> = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_schema() AS name",
            ))
            .await?
            .map(|row| row.try_get("", "name"))
            .transpose()?
            .flatten();
        let schema = schema.ok_or_else(|| {
            DbErr::Custom("no schema is on the search path (current_schema() is null)".into())
        })?;
        let (schema, role) = (quote_identifier(&schema), quote_identifier(&self.name));
        for statement in [
            format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
            ),
            format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
            format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}"),
        ] {
            txn.execute_unprepared(&statement).await?;
        }
        let migrations_table = format!("{schema}.{}", quote_identifier(MIGRATIONS_TABLE));
        let has_history = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT to_regclass($1) IS NOT NULL AS found",
                [migrations_table.clone().into()],
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "found"))
            .transpose()?
            .unwrap_or(false);
        if has_history {
            txn.execute_unprepared(&format!("REVOKE ALL ON {migrations_table} FROM {role}"))
                .await?;
        }
        txn.commit().await
    }
}

/// Why a process may not run as the role it connected as.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "permission denied: the database role {role:?} may not read and write {missing}; as the \
         schema's owner, run `migration up --grant-to {role}` (docs/DEPLOYMENT.md, Database roles)"
    )]
    Missing { role: String, missing: String },
    #[error("checking the database role's privileges failed: {0}")]
    Check(#[from] DbErr),
}

/// Refuses a connection whose role lacks what the application needs ([`missing_privileges`]),
/// naming the role, what it lacks and the fix, so that a process fails at start-up instead of
/// in every request and background task. Every process that reads and writes rows (the
/// gateway, the relay, the subscriber binaries) checks it after connecting.
pub async fn ensure_privileges(db: &impl ConnectionTrait) -> Result<(), PrivilegeError> {
    let missing = missing_privileges(db).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let role = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user AS name",
        ))
        .await?
        .map(|row| row.try_get::<String>("", "name"))
        .transpose()?
        .unwrap_or_default();
    Err(PrivilegeError::Missing {
        role,
        missing: missing.join(", "),
    })
}

/// What the connection's own role lacks of the application's privileges in the current
/// schema, by object name (`public` for the schema itself; tables and sequences sorted): empty
/// when it has them all, as the schema's owner always does. Only on PostgreSQL; SQLite has no
/// privileges, so the list is empty there.
pub async fn missing_privileges(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Vec::new());
    }
    // has_table_privilege('SELECT, INSERT') is true if *any* of the listed privileges is held:
    // one call per privilege.
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT current_schema() AS name \
             WHERE NOT has_schema_privilege(current_schema(), 'USAGE') \
             UNION ALL \
             (SELECT c.relname::text FROM pg_class c \
                JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() AND c.relname <> $1 AND ( \
                (c.relkind IN ('r', 'p') AND NOT ( \
                   has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') \
                   AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))) \
                OR (c.relkind = 'S' AND NOT ( \
                   has_sequence_privilege(c.oid, 'USAGE') AND has_sequence_privilege(c.oid, 'SELECT')))) \
              ORDER BY 1)",
            [MIGRATIONS_TABLE.into()],
        ))
        .await?;
    rows.iter().map(|row| row.try_get("", "name")).collect()
}

/// `name` as a PostgreSQL quoted identifier: in double quotes, inner ones doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_identifier("taskstream_app"), "\"taskstream_app\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
