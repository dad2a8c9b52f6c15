//! Commit wake-ups between processes on PostgreSQL, so that idle readers of the outbox (the
//! embedded consumers, the relay, the live tail, the reminder scheduler and the webhook
//! dispatcher) wait instead of polling.
//!
//! Within a process, writers call [`crate::outbox::notify_committed`] after each commit that
//! wrote the outbox, and readers wait for it ([`crate::outbox::committed`]). Other processes
//! (gateway replicas, the relay, subscriber binaries) write the same tables, so on PostgreSQL
//! [`run`] bridges processes with `LISTEN`/`NOTIFY` on [`CHANNEL`]:
//! - it announces this process's commits: after a local commit it sends
//!   `SELECT pg_notify('taskstream_outbox', <application_name>)` in a statement of its own, at
//!   most once per [`ANNOUNCE_COALESCE`] (the commits of that moment share one notification);
//! - it listens on one connection and wakes the local readers for every notification whose
//!   payload is another process's `application_name` ([`application_name`], unique per
//!   process, set on every connection by [`crate::db`]), never for its own.
//!
//! Decision: the notification is sent apart from the writing transactions, not by a trigger
//! inside them. PostgreSQL serialises the commits of all transactions that `NOTIFY` (a
//! database-wide lock held through the commit's flush, to keep the queue in commit order), so
//! a `NOTIFY` in every mutation would cap writes at one commit flush at a time. Sent apart and
//! coalesced, it costs at most [`ANNOUNCE_COALESCE`]⁻¹ tiny transactions per second under
//! load and none at idle; the price is up to that much latency for a wake-up across processes.
//!
//! SQLite has no `NOTIFY`, but it counts commits: `PRAGMA data_version` on a connection changes
//! whenever another connection (of any process) has committed to the file. On SQLite [`run`]
//! keeps one pooled connection and reads it every [`SQLITE_WATCH_INTERVAL`], waking the local
//! readers when it changed, so that processes sharing one database file (the gateway's relay
//! and the subscriber binaries in distributed mode on SQLite) see each other's commits within
//! that interval. The pragma reads the WAL index in shared memory, not the database: it is the
//! whole idle cost.
//!
//! Readers keep a slow fallback poll ([`FALLBACK_POLL`]) for what no wake-up covers: a lost
//! listener connection (on listening again, [`run`] wakes everyone once, since notifications
//! sent meanwhile are lost) and a one-shot command that writes and exits.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio_util::sync::CancellationToken;

/// The `NOTIFY` channel of outbox commits.
pub const CHANNEL: &str = "taskstream_outbox";

/// How long [`run`] gathers local commits into one announcement.
pub const ANNOUNCE_COALESCE: Duration = Duration::from_millis(10);

/// How often [`run`] reads `PRAGMA data_version` on SQLite: the latency of a wake-up across
/// processes there.
pub const SQLITE_WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// How long readers wait for a wake-up before they read anyway: the slow fallback poll.
pub const FALLBACK_POLL: Duration = Duration::from_secs(30);

/// The `application_name` of this process's PostgreSQL connections: `taskstream-` and a
/// random id fixed for the process's life (also what `pg_stat_activity` shows). It is the
/// payload of this process's notifications, so [`run`] can tell its own.
pub fn application_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("taskstream-{}", &id[..12])
    })
}

/// Until `shutdown` is cancelled, wakes this process's readers for other processes' commits:
/// on PostgreSQL it also announces this process's commits to them; on SQLite it watches the
/// file's commit counter (module documentation).
pub async fn run(db: DatabaseConnection, shutdown: CancellationToken) {
    match db.get_database_backend() {
        DbBackend::Postgres => {}
        DbBackend::Sqlite => return watch_sqlite(db, shutdown).await,
        _ => return,
    }
    tokio::join!(listen(db.clone(), shutdown.clone()), announce(db, shutdown));
}

/// SQLite: reads `PRAGMA data_version` on one held connection every
/// [`SQLITE_WATCH_INTERVAL`] and wakes the local readers when it changed. A failed read is
/// logged at debug and retried with a new connection (readers still have the fallback poll).
async fn watch_sqlite(db: DatabaseConnection, shutdown: CancellationToken) {
    let pool = db.get_sqlite_connection_pool().clone();
    let mut connection = None;
    let mut last: Option<i64> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SQLITE_WATCH_INTERVAL) => {}
        }
        if connection.is_none() {
            match pool.acquire().await {
                Ok(acquired) => connection = Some(acquired),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot watch the SQLite file for commits");
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let version = sea_orm::sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(&mut **conn)
            .await;
        match version {
            Ok(version) => {
                if last.is_some_and(|last| last != version) {
                    crate::outbox::wake_readers();
                }
                last = Some(version);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the SQLite commit counter; reconnecting");
                connection = None;
                last = None;
            }
        }
    }
}

/// Sends one notification after each local commit, coalescing the commits of
/// [`ANNOUNCE_COALESCE`].
async fn announce(db: DatabaseConnection, shutdown: CancellationToken) {
    let notify = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), application_name().into()],
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = crate::outbox::LOCAL_COMMITS.notified() => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ANNOUNCE_COALESCE) => {}
        }
        if let Err(e) = db.execute_raw(notify.clone()).await {
            tracing::debug!(error = %e, "cannot announce outbox commits; other processes poll");
        }
    }
}

/// Listens on [`CHANNEL`] and wakes the local readers for other processes' commits;
/// reconnects with backoff after an error (logged), waking every reader once it listens again.
async fn listen(db: DatabaseConnection, shutdown: CancellationToken) {
    let pool = db.get_postgres_connection_pool().clone();
    let mut failures: u32 = 0;
    loop {
        let attempt = async {
            let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        let listener = tokio::select! {
            () = shutdown.cancelled() => return,
            attempt = attempt => attempt,
        };
        match listener {
            Ok(mut listener) => {
                if failures > 0 {
                    tracing::info!("listening for outbox commits again");
                }
                failures = 0;
                // Whatever was committed while nobody listened.
                crate::outbox::wake_readers();
                loop {
                    let next = tokio::select! {
                        () = shutdown.cancelled() => return,
                        next = listener.try_recv() => next,
                    };
                    match next {
                        Ok(Some(n)) if n.payload() == application_name() => {}
                        // `None`: the connection was lost and has been replaced; anything sent
                        // meanwhile is lost, so wake everyone.
                        Ok(_) => crate::outbox::wake_readers(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the LISTEN connection for outbox commits; readers fall back to polling until it is back");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt = failures + 1, "cannot LISTEN for outbox commits; readers fall back to polling");
            }
        }
        failures += 1;
        let delay = crate::lifecycle::backoff_delay(
            Duration::from_millis(200),
            Duration::from_secs(30),
            failures,
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
