//! Database constraint violations, mapped by the constraint's name.
//!
//! [`CONSTRAINTS`] is the one table of the schema's constraints (`migration/src/*.rs` names
//! them; PostgreSQL names an unnamed primary key `<table>_pkey`): each with its table, its
//! columns and what a violation means to a client. The two databases report a violation
//! differently, and both resolve to the same entry:
//!
//! - PostgreSQL reports the constraint's name (`uq_tags_owner_name`), looked up as is.
//! - SQLite reports the columns of a unique or primary key (`UNIQUE constraint failed:
//!   tags.owner_id, tags.name_key`), looked up by table and columns, an index on expressions
//!   by name (`UNIQUE constraint failed: index 'ix'`), and a CHECK by name (`CHECK constraint
//!   failed: ck_tasks_priority`). It does not identify a foreign key at all (`FOREIGN KEY
//!   constraint failed`): such a violation stays unidentified there.
//!
//! A constraint with a [`Conflict`] becomes `CONFLICT` with its message; every other violation,
//! of a known constraint (that no request can violate: validation, fresh ids and `ON CONFLICT`
//! keep them) or of one the table does not know, is `INTERNAL`, logged with what the database
//! reported. Nothing is guessed from the message beyond extracting the name or the columns.

use std::fmt;

use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
use sea_orm::{DbErr, RuntimeErr};

use super::ApiError;

/// What kind of constraint an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
}

/// What a client is told when a request violates a constraint: `CONFLICT` with the message
/// `"{field} {problem}"` (messages start with the field they name).
#[derive(Debug)]
pub struct Conflict {
    /// The input path (argument or input field) the conflict concerns.
    pub field: &'static str,
    pub problem: &'static str,
}

impl Conflict {
    pub fn message(&self) -> String {
        format!("{} {}", self.field, self.problem)
    }
}

/// One constraint of the schema.
#[derive(Debug)]
pub struct Constraint {
    /// The name PostgreSQL reports.
    pub name: &'static str,
    pub table: &'static str,
    /// The key's columns in order (what SQLite reports for a primary key or unique index); the
    /// referencing columns of a foreign key; the columns a CHECK reads.
    pub columns: &'static [&'static str],
    pub kind: ConstraintKind,
    /// `None`: no request can violate it, so a violation is a fault (`INTERNAL`).
    pub conflict: Option<Conflict>,
}

const fn internal(
    name: &'static str,
    table: &'static str,
    kind: ConstraintKind,
    columns: &'static [&'static str],
) -> Constraint {
    Constraint {
        name,
        table,
        columns,
        kind,
        conflict: None,
    }
}

use ConstraintKind::{Check, ForeignKey, PrimaryKey, Unique};

/// Every constraint of the migrated schema (a test compares this with both databases'
/// catalogs), except those of SQLite-only search tables (FTS5 tables and their rowid maps,
/// written only by triggers). Only `uq_tags_owner_name` can be violated by a request:
/// `createTag` or `updateTag` with a name (any case) another of the user's tags has.
pub const CONSTRAINTS: &[Constraint] = &[
    internal("users_pkey", "users", PrimaryKey, &["id"]),
    internal("tasks_pkey", "tasks", PrimaryKey, &["id"]),
    internal(
        "uq_tasks_generated_from",
        "tasks",
        Unique,
        &["generated_from_task_id"],
    ),
    internal("fk_tasks_owner", "tasks", ForeignKey, &["owner_id"]),
    internal("ck_tasks_priority", "tasks", Check, &["priority"]),
    internal(
        "ck_tasks_recurrence_needs_due",
        "tasks",
        Check,
        &["recurrence_rule", "due_at"],
    ),
    internal("tags_pkey", "tags", PrimaryKey, &["id"]),
    Constraint {
        name: "uq_tags_owner_name",
        table: "tags",
        columns: &["owner_id", "name_key"],
        kind: Unique,
        conflict: Some(Conflict {
            field: "name",
            problem: "is already the name of another of your tags (tag names ignore case)",
        }),
    },
    internal("fk_tags_owner", "tags", ForeignKey, &["owner_id"]),
    internal(
        "pk_task_tags",
        "task_tags",
        PrimaryKey,
        &["task_id", "tag_id"],
    ),
    internal("fk_task_tags_task", "task_tags", ForeignKey, &["task_id"]),
    internal("fk_task_tags_tag", "task_tags", ForeignKey, &["tag_id"]),
    internal("reminders_pkey", "reminders", PrimaryKey, &["id"]),
    internal("fk_reminders_task", "reminders", ForeignKey, &["task_id"]),
    internal(
        "ck_reminders_one_kind",
        "reminders",
        Check,
        &["minutes_before_due", "at"],
    ),
    internal("outbox_pkey", "outbox", PrimaryKey, &["id"]),
    internal("uq_outbox_event_id", "outbox", Unique, &["event_id"]),
    internal(
        "pk_consumer_offsets",
        "consumer_offsets",
        PrimaryKey,
        &["consumer", "topic", "partition"],
    ),
    internal(
        "pk_processed_events",
        "processed_events",
        PrimaryKey,
        &["consumer", "event_id"],
    ),
    internal("dead_letters_pkey", "dead_letters", PrimaryKey, &["id"]),
    internal("notifications_pkey", "notifications", PrimaryKey, &["id"]),
    internal(
        "uq_notifications_event",
        "notifications",
        Unique,
        &["event_id"],
    ),
    internal(
        "fk_notifications_owner",
        "notifications",
        ForeignKey,
        &["owner_id"],
    ),
    internal(
        "webhook_deliveries_pkey",
        "webhook_deliveries",
        PrimaryKey,
        &["id"],
    ),
    internal(
        "uq_webhook_deliveries_event",
        "webhook_deliveries",
        Unique,
        &["event_id"],
    ),
    internal(
        "fk_webhook_deliveries_owner",
        "webhook_deliveries",
        ForeignKey,
        &["owner_id"],
    ),
    internal(
        "pk_idempotency_keys",
        "idempotency_keys",
        PrimaryKey,
        &["owner_id", "key"],
    ),
    internal(
        "ck_idempotency_keys_state",
        "idempotency_keys",
        Check,
        &["state"],
    ),
    internal(
        "pk_consumer_members",
        "consumer_members",
        PrimaryKey,
        &["consumer", "topic", "instance"],
    ),
    internal(
        "pk_consumer_leases",
        "consumer_leases",
        PrimaryKey,
        &["consumer", "topic", "partition"],
    ),
    internal(
        "ck_consumer_leases_partition",
        "consumer_leases",
        Check,
        &["partition"],
    ),
    // Each change locks its task first and records the next version; a restore inserts the
    // task row first (`ON CONFLICT DO NOTHING`), so two changes never meet here.
    internal(
        "pk_task_versions",
        "task_versions",
        PrimaryKey,
        &["task_id", "version"],
    ),
    internal("ck_task_versions_kind", "task_versions", Check, &["kind"]),
    // The checks on enumerated text columns (m20261207_000004_add_value_checks); on SQLite they
    // are triggers that abort with the constraint's name.
    internal(
        "ck_tasks_recurrence_anchor",
        "tasks",
        Check,
        &["recurrence_anchor"],
    ),
    internal("ck_reminders_status", "reminders", Check, &["status"]),
    internal("ck_notifications_kind", "notifications", Check, &["kind"]),
    internal(
        "ck_webhook_deliveries_status",
        "webhook_deliveries",
        Check,
        &["status"],
    ),
    internal("ck_dead_letters_status", "dead_letters", Check, &["status"]),
    // Calendar feeds (m20261208_000003_create_calendar_feeds). The secret is 256 random bits,
    // so its hash never collides: a violation of the unique hash is a fault.
    internal("pk_calendar_feeds", "calendar_feeds", PrimaryKey, &["id"]),
    internal(
        "uq_calendar_feeds_secret_hash",
        "calendar_feeds",
        Unique,
        &["secret_hash"],
    ),
    internal(
        "fk_calendar_feeds_owner",
        "calendar_feeds",
        ForeignKey,
        &["owner_id"],
    ),
];

/// SQLite's extended result code for `RAISE(ABORT, ...)` in a trigger
/// (`SQLITE_CONSTRAINT_TRIGGER`): the checks that SQLite cannot add to an existing table are
/// such triggers, and their message is the constraint's name.
const SQLITE_CONSTRAINT_TRIGGER: &str = "1811";

/// The entry named `name`.
pub fn by_name(name: &str) -> Option<&'static Constraint> {
    CONSTRAINTS.iter().find(|c| c.name == name)
}

/// The primary key or unique constraint on exactly these columns of `table`, in this order.
pub fn by_key(table: &str, columns: &[&str]) -> Option<&'static Constraint> {
    CONSTRAINTS
        .iter()
        .find(|c| matches!(c.kind, PrimaryKey | Unique) && c.table == table && c.columns == columns)
}

/// The kind of violation a database reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    Unique,
    ForeignKey,
    Check,
    NotNull,
    Exclusion,
}

impl ViolationKind {
    fn of(kind: ErrorKind) -> Option<ViolationKind> {
        Some(match kind {
            ErrorKind::UniqueViolation => ViolationKind::Unique,
            ErrorKind::ForeignKeyViolation => ViolationKind::ForeignKey,
            ErrorKind::CheckViolation => ViolationKind::Check,
            ErrorKind::NotNullViolation => ViolationKind::NotNull,
            ErrorKind::ExclusionViolation => ViolationKind::Exclusion,
            _ => return None,
        })
    }

    /// Whether a violation of this kind can be one of a `kind` constraint.
    fn fits(self, kind: ConstraintKind) -> bool {
        match kind {
            PrimaryKey | Unique => self == ViolationKind::Unique,
            ForeignKey => self == ViolationKind::ForeignKey,
            Check => self == ViolationKind::Check,
        }
    }
}

/// A constraint violation a database reported.
#[derive(Debug)]
pub enum Violation {
    /// An entry of [`CONSTRAINTS`].
    Known(&'static Constraint),
    /// A violation the table cannot name: a constraint it does not have, a NOT NULL column, or
    /// a foreign key on SQLite. `reported` is the database's message (and constraint name).
    Unidentified {
        kind: ViolationKind,
        reported: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Known(c) => write!(
                f,
                "constraint {} ({}: {}) violated",
                c.name,
                c.table,
                c.columns.join(", ")
            ),
            Violation::Unidentified { kind, reported } => write!(
                f,
                "{kind:?} violation of a constraint not in the constraint table: {reported}"
            ),
        }
    }
}

/// The constraint violation `err` is, if it is one.
pub fn violation(err: &DbErr) -> Option<Violation> {
    let db_err = database_error(err)?;
    if db_err.code().as_deref() == Some(SQLITE_CONSTRAINT_TRIGGER) {
        let reported = db_err.message().trim();
        return Some(match by_name(reported) {
            Some(c) if c.kind == Check => Violation::Known(c),
            _ => Violation::Unidentified {
                kind: ViolationKind::Check,
                reported: reported.to_owned(),
            },
        });
    }
    let kind = ViolationKind::of(db_err.kind())?;
    let known = match db_err.constraint() {
        // PostgreSQL names it.
        Some(name) => by_name(name),
        // SQLite describes it.
        None => match parse_sqlite_message(db_err.message()) {
            Some(SqliteReport::Named(name)) => by_name(name),
            Some(SqliteReport::Columns { table, columns }) if kind == ViolationKind::Unique => {
                by_key(table, &columns)
            }
            _ => None,
        },
    };
    Some(match known {
        // A report of one kind never resolves to an entry of another.
        Some(c) if kind.fits(c.kind) => Violation::Known(c),
        _ => Violation::Unidentified {
            kind,
            reported: match db_err.constraint() {
                Some(name) => format!("{} ({name})", db_err.message()),
                None => db_err.message().to_owned(),
            },
        },
    })
}

fn database_error(err: &DbErr) -> Option<&dyn DatabaseError> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Database(db_err) => Some(db_err.as_ref()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What a SQLite constraint message identifies.
#[derive(Debug, PartialEq, Eq)]
pub enum SqliteReport<'a> {
    /// A named CHECK, or a unique index on expressions.
    Named(&'a str),
    /// The columns of one table (a primary key or unique index, or a NOT NULL column).
    Columns {
        table: &'a str,
        columns: Vec<&'a str>,
    },
}

/// Parses SQLite's `<KIND> constraint failed: <detail>` messages: `detail` is
/// `t.a, t.b` (one table's columns), `index 'name'`, or a CHECK's name. `None` when there is
/// no detail (`FOREIGN KEY constraint failed`) or the columns span tables.
pub fn parse_sqlite_message(message: &str) -> Option<SqliteReport<'_>> {
    let (_, detail) = message.split_once(" constraint failed: ")?;
    let detail = detail.trim();
    if let Some(index) = detail
        .strip_prefix("index '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Some(SqliteReport::Named(index));
    }
    if !detail.contains('.') {
        return (!detail.is_empty() && !detail.contains(char::is_whitespace))
            .then_some(SqliteReport::Named(detail));
    }
    let mut table = None;
    let mut columns = Vec::new();
    for qualified in detail.split(", ") {
        let (t, column) = qualified.split_once('.')?;
        if *table.get_or_insert(t) != t || column.is_empty() {
            return None;
        }
        columns.push(column);
    }
    Some(SqliteReport::Columns {
        table: table?,
        columns,
    })
}

/// The API error for a database error: a constraint's [`Conflict`], else `INTERNAL` with the
/// violation (or just the error) as its logged cause.
pub fn api_error(err: DbErr) -> ApiError {
    match violation(&err) {
        Some(Violation::Known(Constraint {
            conflict: Some(conflict),
            ..
        })) => ApiError::Conflict {
            message: conflict.message(),
            field: Some(conflict.field.to_owned()),
        },
        Some(v) => ApiError::Internal(anyhow::Error::new(err).context(v.to_string())),
        None => ApiError::Internal(anyhow::Error::new(err).context("database error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_unique_messages_give_the_table_and_columns_in_order() {
        assert_eq!(
            parse_sqlite_message("UNIQUE constraint failed: tags.owner_id, tags.name_key"),
            Some(SqliteReport::Columns {
                table: "tags",
                columns: vec!["owner_id", "name_key"]
            })
        );
        assert_eq!(
            parse_sqlite_message("UNIQUE constraint failed: tasks.id"),
            Some(SqliteReport::Columns {
                table: "tasks",
                columns: vec!["id"]
            })
        );
        assert_eq!(
            parse_sqlite_message("NOT NULL constraint failed: tasks.title"),
            Some(SqliteReport::Columns {
                table: "tasks",
                columns: vec!["title"]
            })
        );
    }

    #[test]
    fn sqlite_named_reports_are_checks_and_expression_indexes() {
        assert_eq!(
            parse_sqlite_message("CHECK constraint failed: ck_tasks_priority"),
            Some(SqliteReport::Named("ck_tasks_priority"))
        );
        assert_eq!(
            parse_sqlite_message("UNIQUE constraint failed: index 'ix_lower_name'"),
            Some(SqliteReport::Named("ix_lower_name"))
        );
    }

    #[test]
    fn sqlite_messages_without_an_identity_give_nothing() {
        for message in [
            "FOREIGN KEY constraint failed",
            // An unnamed CHECK is reported by its expression.
            "CHECK constraint failed: priority BETWEEN 0 AND 4",
            // Columns of two tables cannot be one key.
            "UNIQUE constraint failed: tags.owner_id, tasks.name_key",
            "UNIQUE constraint failed: tags.",
            "UNIQUE constraint failed: ",
            "database is locked",
        ] {
            assert_eq!(parse_sqlite_message(message), None, "{message}");
        }
    }

    #[test]
    fn parsed_columns_resolve_to_the_entry_postgresql_names() {
        let Some(SqliteReport::Columns { table, columns }) =
            parse_sqlite_message("UNIQUE constraint failed: tags.owner_id, tags.name_key")
        else {
            panic!("not parsed as columns");
        };
        assert_eq!(
            by_key(table, &columns).map(|c| c.name),
            Some("uq_tags_owner_name")
        );
        // The same columns in another order are another key.
        assert!(by_key("tags", &["name_key", "owner_id"]).is_none());
        // A foreign key's columns are not a key.
        assert!(by_key("tags", &["owner_id"]).is_none());
    }

    #[test]
    fn the_table_is_unambiguous_on_both_backends() {
        for (i, a) in CONSTRAINTS.iter().enumerate() {
            assert!(!a.columns.is_empty(), "{} has no columns", a.name);
            for b in &CONSTRAINTS[i + 1..] {
                assert_ne!(a.name, b.name, "two entries named {}", a.name);
                let both_keys =
                    matches!(a.kind, PrimaryKey | Unique) && matches!(b.kind, PrimaryKey | Unique);
                assert!(
                    !(both_keys && a.table == b.table && a.columns == b.columns),
                    "{} and {} have the same columns: SQLite could not tell them apart",
                    a.name,
                    b.name
                );
            }
        }
    }

    #[test]
    fn only_the_tag_name_is_a_conflict_and_its_message_names_the_field() {
        let conflicts: Vec<_> = CONSTRAINTS
            .iter()
            .filter_map(|c| c.conflict.as_ref().map(|m| (c.name, m.message())))
            .collect();
        assert_eq!(
            conflicts,
            vec![(
                "uq_tags_owner_name",
                "name is already the name of another of your tags (tag names ignore case)"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn errors_that_are_not_violations_stay_internal_without_a_guess() {
        let err = api_error(DbErr::Custom("UNIQUE constraint failed: tags.id".into()));
        assert_eq!(err.code(), "INTERNAL");
        assert!(violation(&DbErr::RecordNotFound("x".into())).is_none());
    }
}
