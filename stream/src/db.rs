//! Opening the database every taskstream process uses: SQLite (embedded default) or
//! PostgreSQL, with a bounded pool; a URL that cannot work fails at once with an error naming
//! it (an unsupported scheme, a SQLite directory that does not exist, a PostgreSQL host that
//! does not answer). The gateway (`graphql::db`), the subscriber binaries
//! (`subscribers::process::connect_db`) and the tests (`testkit`) all open it here, so their
//! pools and pragmas cannot drift apart.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// Most connections in the pool of every process (gateway, relay, subscriber binaries, CLI):
/// one setting, so a subscriber binary opens the database exactly as the gateway does.
/// PostgreSQL's default `max_connections` is 100; several gateway replicas and the subscribers
/// share it, so each process stays small. The pool keeps one connection open when idle and
/// opens the others as load needs them.
pub const MAX_CONNECTIONS: u32 = 10;

/// SQLite allows one writer at a time; waiting writers retry for up to this long before
/// failing with "database is locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes a SQLite WAL file keeps on disk after a checkpoint reset it (64 MiB).
pub const SQLITE_JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// How long start-up waits for PostgreSQL to accept a TCP connection before saying it is
/// unreachable (instead of the pool's silent wait).
pub const POSTGRES_REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// The accepted forms of `DATABASE_URL`, for error messages.
pub const ACCEPTED_FORMS: &str = "sqlite://FILE?mode=rwc (embedded, e.g. \
     sqlite://taskstream.db?mode=rwc) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

/// Opens a pool for `url` (`sqlite://path?mode=rwc` or `postgres://...`), creating a SQLite
/// file that does not exist yet. SQLite runs in WAL mode with a busy timeout, foreign keys on
/// and a WAL size limit.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    open(url, true, MAX_CONNECTIONS).await
}

/// As [`connect`], with at most `max_connections` in the pool: for benchmarks that compare
/// against one connection. Taskstream's processes all use [`connect`].
pub async fn connect_with(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    open(url, true, max_connections).await
}

/// As [`connect`], but a SQLite file must exist already (for commands that only read, such
/// as `events tail`: they must never leave an empty database behind).
pub async fn connect_existing(url: &str) -> anyhow::Result<DatabaseConnection> {
    open(url, false, MAX_CONNECTIONS).await
}

async fn open(url: &str, create: bool, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    match Target::of(url)? {
        Target::Sqlite(Some(path)) => check_sqlite_file(&path, create)?,
        Target::Sqlite(None) => {}
        Target::Postgres { host, port } => check_postgres_reachable(&host, port).await?,
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("postgres") {
        // Tells this process's commits apart in outbox notifications (`crate::wakeup`).
        opts.map_sqlx_postgres_opts(|o| o.application_name(crate::wakeup::application_name()));
    }
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // After a checkpoint resets the WAL, truncate the file to this size instead of
                // keeping it at its largest (see `write_txn::checkpoint_loop`).
                .pragma("journal_size_limit", SQLITE_JOURNAL_SIZE_LIMIT.to_string())
                .create_if_missing(create)
        });
    }
    let db = Database::connect(opts)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact_url(url)))?;
    Ok(db)
}

/// What a database URL points at, as far as start-up can check before connecting.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A SQLite file (its path), or an in-memory database.
    Sqlite(Option<std::path::PathBuf>),
    Postgres {
        host: String,
        port: u16,
    },
}

impl Target {
    fn of(url: &str) -> anyhow::Result<Target> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.trim_start_matches("//");
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
                return Ok(Target::Sqlite(None));
            }
            return Ok(Target::Sqlite(Some(std::path::PathBuf::from(path))));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).map_err(|e| {
                anyhow::anyhow!(
                    "DATABASE_URL {} is not a valid URL ({e}); use {ACCEPTED_FORMS}",
                    redact_url(url)
                )
            })?;
            let host = parsed.host_str().unwrap_or("localhost").to_owned();
            return Ok(Target::Postgres {
                host,
                port: parsed.port().unwrap_or(5432),
            });
        }
        anyhow::bail!(
            "DATABASE_URL {} is not a database Taskstream supports; use {ACCEPTED_FORMS}",
            redact_url(url)
        )
    }
}

/// A SQLite file must be creatable (its directory exists and is writable) or, with `create`
/// off, exist.
fn check_sqlite_file(path: &std::path::Path, create: bool) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if !create {
        anyhow::bail!(
            "there is no database at {}; start Taskstream there first, or pass the right \
             --database-url (DATABASE_URL)",
            path.display()
        );
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let metadata = std::fs::metadata(&dir).map_err(|_| {
        anyhow::anyhow!(
            "cannot create the SQLite database {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )
    })?;
    if !metadata.is_dir() || metadata.permissions().readonly() {
        anyhow::bail!(
            "cannot create the SQLite database {}: {} is not a writable directory",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Fails within [`POSTGRES_REACH_TIMEOUT`], naming host and port, when nothing accepts a TCP
/// connection there.
async fn check_postgres_reachable(host: &str, port: u16) -> anyhow::Result<()> {
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(
        POSTGRES_REACH_TIMEOUT,
        tokio::net::TcpStream::connect(&target),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => anyhow::bail!(
            "cannot reach PostgreSQL at {target}: {e}; is the server running, and is \
             DATABASE_URL's host and port right?"
        ),
        Err(_) => anyhow::bail!(
            "cannot reach PostgreSQL at {target}: no answer within {} s; is the server running, \
             and is DATABASE_URL's host and port right?",
            POSTGRES_REACH_TIMEOUT.as_secs()
        ),
    }
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
    use super::{Target, check_sqlite_file, redact_url};

    #[test]
    fn database_urls_are_classified_or_refused_with_the_accepted_forms() {
        assert_eq!(
            Target::of("sqlite://taskstream.db?mode=rwc").unwrap(),
            Target::Sqlite(Some("taskstream.db".into()))
        );
        assert_eq!(Target::of("sqlite::memory:").unwrap(), Target::Sqlite(None));
        assert_eq!(
            Target::of("postgres://app:pw@db.internal/tasks").unwrap(),
            Target::Postgres {
                host: "db.internal".into(),
                port: 5432
            }
        );
        let err = Target::of("mysql://root:pw@db/tasks")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("postgres://USER") && err.contains("sqlite://"),
            "{err}"
        );
        assert!(!err.contains("pw"), "the password is redacted: {err}");
    }

    #[test]
    fn a_sqlite_file_in_a_missing_directory_is_refused_naming_it() {
        let err = check_sqlite_file("/no/such/dir/t.db".as_ref(), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/dir"), "{err}");
        let err = check_sqlite_file("/no/such/dir/t.db".as_ref(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no database at"), "{err}");
    }

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
