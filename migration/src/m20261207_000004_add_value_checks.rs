//! CHECK constraints on the enumerated text columns, so that the database refuses any value the
//! application's enums do not name (the application already refuses to read one: a row with an
//! unknown value fails to load). Each is named `ck_<table>_<column>`:
//!
//! | constraint | values |
//! |---|---|
//! | `ck_tasks_recurrence_anchor` | `SCHEDULE`, `COMPLETION` (or NULL) |
//! | `ck_reminders_status` | `PENDING`, `FIRED`, `CANCELLED`, `MISSED` |
//! | `ck_notifications_kind` | `REMINDER_DUE`, `REMINDER_MISSED` |
//! | `ck_webhook_deliveries_status` | `PENDING`, `DELIVERED`, `FAILED` |
//! | `ck_dead_letters_status` | `PARKED`, `REPLAYED`, `DISCARDED` |
//!
//! `tasks.priority` (`ck_tasks_priority`, 0 to 4) and `idempotency_keys.state`
//! (`ck_idempotency_keys_state`) have had theirs since their tables were created.
//!
//! - PostgreSQL: `ALTER TABLE ... ADD CONSTRAINT ... CHECK`, which validates the existing rows.
//! - SQLite cannot add a CHECK to an existing table. Each check is two triggers,
//!   `<name>_insert` (BEFORE INSERT) and `<name>_update` (BEFORE UPDATE OF the column), that
//!   `RAISE(ABORT, '<name>')`, so the error carries the constraint's name as PostgreSQL's does.
//!   The existing rows are validated first, as PostgreSQL does.
//!
//! The stored representation does not change (same strings), so no data is rewritten. The
//! value lists are written out here, as they are on this migration's day (the enums in
//! `entities`; `graphql/tests/typed_values.rs` writes every value of each enum through its
//! check); a later value needs a migration that replaces its check.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261207_000003_add_search_terms::{run, unsupported};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One check: `column` of `table` holds one of `values`, or NULL when `nullable`.
struct ValueCheck {
    table: &'static str,
    column: &'static str,
    values: &'static [&'static str],
    nullable: bool,
}

const CHECKS: &[ValueCheck] = &[
    ValueCheck {
        table: "tasks",
        column: "recurrence_anchor",
        values: &["SCHEDULE", "COMPLETION"],
        nullable: true,
    },
    ValueCheck {
        table: "reminders",
        column: "status",
        values: &["PENDING", "FIRED", "CANCELLED", "MISSED"],
        nullable: false,
    },
    ValueCheck {
        table: "notifications",
        column: "kind",
        values: &["REMINDER_DUE", "REMINDER_MISSED"],
        nullable: false,
    },
    ValueCheck {
        table: "webhook_deliveries",
        column: "status",
        values: &["PENDING", "DELIVERED", "FAILED"],
        nullable: false,
    },
    ValueCheck {
        table: "dead_letters",
        column: "status",
        values: &["PARKED", "REPLAYED", "DISCARDED"],
        nullable: false,
    },
];

impl ValueCheck {
    /// `ck_<table>_<column>`.
    fn name(&self) -> String {
        format!("ck_{}_{}", self.table, self.column)
    }

    /// `'A', 'B'`. The values are constants without quotes.
    fn list(&self) -> String {
        self.values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The condition a row must meet, on the column as `prefix.column`.
    fn condition(&self, prefix: &str) -> String {
        let column = format!("{prefix}{}", self.column);
        let allowed = format!("{column} IN ({})", self.list());
        if self.nullable {
            format!("{column} IS NULL OR {allowed}")
        } else {
            // NOT NULL columns: NULL never reaches the check.
            allowed
        }
    }

    fn postgres_up(&self) -> String {
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})",
            self.table,
            self.name(),
            self.condition("")
        )
    }

    fn postgres_down(&self) -> String {
        format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            self.table,
            self.name()
        )
    }

    /// The insert and update triggers.
    fn sqlite_up(&self) -> [String; 2] {
        let name = self.name();
        let when = format!("NOT ({})", self.condition("NEW."));
        let body = format!("BEGIN SELECT RAISE(ABORT, '{name}'); END");
        [
            format!(
                "CREATE TRIGGER {name}_insert BEFORE INSERT ON {} WHEN {when} {body}",
                self.table
            ),
            format!(
                "CREATE TRIGGER {name}_update BEFORE UPDATE OF {} ON {} WHEN {when} {body}",
                self.column, self.table
            ),
        ]
    }

    fn sqlite_down(&self) -> [String; 2] {
        let name = self.name();
        [
            format!("DROP TRIGGER IF EXISTS {name}_update"),
            format!("DROP TRIGGER IF EXISTS {name}_insert"),
        ]
    }

    /// Fails when an existing row breaks the check (SQLite; PostgreSQL's `ADD CONSTRAINT` does
    /// this itself).
    async fn validate_existing(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let sql = format!(
            "SELECT {column} AS value FROM {table} WHERE NOT ({condition}) LIMIT 1",
            column = self.column,
            table = self.table,
            condition = self.condition(""),
        );
        let db = manager.get_connection();
        let found = db
            .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await?;
        match found {
            None => Ok(()),
            Some(row) => {
                let value: Option<String> = row.try_get("", "value").ok();
                Err(DbErr::Migration(format!(
                    "{}: {}.{} holds {value:?}, which is not one of {}; fix the row first",
                    self.name(),
                    self.table,
                    self.column,
                    self.list()
                )))
            }
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on both databases: a check that fails leaves none behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                let statements: Vec<String> = CHECKS.iter().map(ValueCheck::postgres_up).collect();
                run(manager, &statements).await
            }
            DbBackend::Sqlite => {
                for check in CHECKS {
                    check.validate_existing(manager).await?;
                    run(manager, &check.sqlite_up()).await?;
                }
                Ok(())
            }
            other => Err(unsupported(other)),
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: Vec<String> = match manager.get_database_backend() {
            DbBackend::Postgres => CHECKS.iter().rev().map(ValueCheck::postgres_down).collect(),
            DbBackend::Sqlite => CHECKS
                .iter()
                .rev()
                .flat_map(ValueCheck::sqlite_down)
                .collect(),
            other => return Err(unsupported(other)),
        };
        run(manager, &statements).await
    }
}

#[cfg(test)]
mod tests {
    use super::CHECKS;

    #[test]
    fn sqlite_triggers_raise_the_constraint_name() {
        let [insert, update] = CHECKS[0].sqlite_up();
        assert_eq!(
            insert,
            "CREATE TRIGGER ck_tasks_recurrence_anchor_insert BEFORE INSERT ON tasks \
             WHEN NOT (NEW.recurrence_anchor IS NULL OR NEW.recurrence_anchor IN \
             ('SCHEDULE', 'COMPLETION')) BEGIN SELECT RAISE(ABORT, 'ck_tasks_recurrence_anchor'); END"
        );
        assert!(
            update.starts_with(
                "CREATE TRIGGER ck_tasks_recurrence_anchor_update BEFORE UPDATE OF \
                 recurrence_anchor ON tasks WHEN"
            ),
            "{update}"
        );
    }
}
