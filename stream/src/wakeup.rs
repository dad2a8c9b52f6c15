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
//! Readers keep a slow fallback poll ([`FALLBACK_POLL`]) for what no wake-up covers: a lost
//! listener connection (on listening again, [`run`] wakes everyone once, since notifications
//! sent meanwhile are lost), a one-shot command that writes and exits, and, on SQLite, writes
//! by other processes (there is no `NOTIFY`; the in-process wake-up covers every writer of a
//! single-process deployment).

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio_util::sync::CancellationToken;

/// The `NOTIFY` channel of outbox commits.
pub const CHANNEL: &str = "taskstream_outbox";

/// How long [`run`] gathers local commits into one announcement.
pub const ANNOUNCE_COALESCE: Duration = Duration::from_millis(10);

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

/// On PostgreSQL, until `shutdown` is cancelled: announces this process's outbox commits to
/// the other processes and wakes this process's readers for theirs (module documentation).
/// Returns at once on SQLite.
pub async fn run(db: DatabaseConnection, shutdown: CancellationToken) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    tokio::join!(listen(db.clone(), shutdown.clone()), announce(db, shutdown));
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
