//! The write transaction every writer of the database opens ([`begin_write`]), and, on SQLite,
//! the in-process queue of writers in front of it.
//!
//! SQLite allows one writer at a time. Without a queue, writers that find the database locked
//! wait in SQLite's busy handler, which sleeps between retries (up to 100 ms per sleep) and
//! wakes nobody when the writer before it commits: under 16 concurrent writers that gave a
//! p99 above one second. So on SQLite each process hands out write turns itself: one
//! [`tokio::sync::Semaphore`] permit per database file, taken before `BEGIN IMMEDIATE` and given
//! back when the transaction commits, rolls back or is dropped. Waiting writers queue in FIFO
//! order and start the moment the previous one finishes. The busy timeout stays as the
//! fallback for what the queue cannot see: other processes on the same file, and writes made
//! outside [`begin_write`] (single autocommit statements). A writer that waits longer than
//! [`crate::db::SQLITE_BUSY_TIMEOUT`] for its turn goes ahead without one and leaves the
//! decision to SQLite, so the queue can never make a writer fail that SQLite would have let
//! through.
//!
//! PostgreSQL needs none of this: it takes row locks, and its transactions run concurrently.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An open write transaction, holding the process's write turn on SQLite. Use it wherever a
/// connection is expected (`&txn`); [`WriteTxn::commit`] or [`WriteTxn::rollback`] ends it,
/// and dropping it rolls back.
pub struct WriteTxn {
    // Declared before `turn`, so that on drop the rollback is started before the turn passes.
    txn: DatabaseTransaction,
    turn: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("queued", &self.turn.is_some())
            .finish_non_exhaustive()
    }
}

/// Begins a transaction that will write. On SQLite it waits for the process's write turn
/// (module documentation), then runs `BEGIN IMMEDIATE`, taking the write lock up front: a
/// deferred transaction that reads and then writes fails with SQLITE_BUSY (not retried by the
/// busy timeout) when another writer committed in between. PostgreSQL ignores the option and
/// relies on row locks.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    let turn = match db.get_database_backend() {
        DbBackend::Sqlite => write_turn(db).await,
        _ => None,
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTxn { txn, turn })
}

/// Waits for this process's write turn on the SQLite file behind `db`; `None` after
/// [`crate::db::SQLITE_BUSY_TIMEOUT`] (then SQLite's busy handler decides).
async fn write_turn(db: &DatabaseConnection) -> Option<OwnedSemaphorePermit> {
    let queue = queue_of(db);
    match tokio::time::timeout(crate::db::SQLITE_BUSY_TIMEOUT, queue.acquire_owned()).await {
        Ok(Ok(permit)) => Some(permit),
        Ok(Err(_closed)) => None,
        Err(_elapsed) => {
            tracing::warn!(
                "waited {:?} for the SQLite write turn; writing without it",
                crate::db::SQLITE_BUSY_TIMEOUT
            );
            None
        }
    }
}

/// The writers' queue of the SQLite file behind `db`: one per file in the process, shared by
/// every pool opened on it.
fn queue_of(db: &DatabaseConnection) -> Arc<Semaphore> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> = OnceLock::new();
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut queues = QUEUES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    queues
        .entry(file)
        .or_insert_with(|| Arc::new(Semaphore::new(1)))
        .clone()
}

/// How often [`checkpoint_loop`] checkpoints the SQLite WAL.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// On SQLite, until `shutdown` is cancelled: every [`CHECKPOINT_INTERVAL`], with the write
/// turn held, copies the WAL into the database and truncates it (`PRAGMA
/// wal_checkpoint(TRUNCATE)`), so readers that keep the automatic (passive) checkpoints from
/// reaching the WAL's end cannot make it grow without bound. A checkpoint that readers still
/// block is logged at debug and tried again next time; `journal_size_limit` (see
/// [`crate::db`]) bounds what is left on disk after the automatic ones. Returns at once on
/// PostgreSQL.
pub async fn checkpoint_loop(
    db: DatabaseConnection,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
        }
        let turn = write_turn(&db).await;
        let result = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA wal_checkpoint(TRUNCATE)",
            ))
            .await;
        drop(turn);
        match result {
            Ok(Some(row)) if row.try_get_by_index::<i64>(0).unwrap_or(0) != 0 => {
                tracing::debug!("WAL checkpoint blocked by readers; trying again later");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; trying again later"),
        }
    }
}

impl WriteTxn {
    /// Commits, then passes the write turn on.
    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTxn { txn, turn } = self;
        let result = txn.commit().await;
        drop(turn);
        result
    }

    /// Rolls back, then passes the write turn on.
    pub async fn rollback(self) -> Result<(), DbErr> {
        let WriteTxn { txn, turn } = self;
        let result = txn.rollback().await;
        drop(turn);
        result
    }

    /// The transaction itself, for APIs that take a `&DatabaseTransaction` (consumer handlers).
    pub fn transaction(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl sea_orm::TransactionSession for WriteTxn {
    async fn commit(self) -> Result<(), DbErr> {
        WriteTxn::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        WriteTxn::rollback(self).await
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.txn.is_mock_connection()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(dir: &std::path::Path) -> DatabaseConnection {
        let url = format!("sqlite://{}?mode=rwc", dir.join("w.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (n INTEGER NOT NULL)")
            .await
            .unwrap();
        db
    }

    #[tokio::test]
    async fn sqlite_writers_queue_for_their_turn_and_all_commit() {
        let dir = tempfile_dir();
        let db = sqlite(&dir).await;
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..32 {
            let db = db.clone();
            writers.spawn(async move {
                let txn = begin_write(&db).await.unwrap();
                txn.execute_unprepared(&format!("INSERT INTO t (n) VALUES ({n})"))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
                txn.commit().await.unwrap();
            });
        }
        while let Some(joined) = writers.join_next().await {
            joined.unwrap();
        }
        let rows = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS c, SUM(n) AS s FROM t",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows.try_get::<i64>("", "c").unwrap(), 32);
        assert_eq!(rows.try_get::<i64>("", "s").unwrap(), (0..32).sum::<i64>());
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn the_turn_passes_on_commit_rollback_and_drop() {
        let dir = tempfile_dir();
        let db = sqlite(&dir).await;
        let queue = queue_of(&db);
        let txn = begin_write(&db).await.unwrap();
        assert_eq!(queue.available_permits(), 0, "a writer holds the turn");
        txn.rollback().await.unwrap();
        assert_eq!(queue.available_permits(), 1, "rollback passes it on");
        let txn = begin_write(&db).await.unwrap();
        txn.execute_unprepared("INSERT INTO t (n) VALUES (1)")
            .await
            .unwrap();
        drop(txn);
        assert_eq!(queue.available_permits(), 1, "drop passes it on");
        let txn = begin_write(&db).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(queue.available_permits(), 1, "commit passes it on");
        let count = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS c FROM t",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            count.try_get::<i64>("", "c").unwrap(),
            0,
            "the dropped transaction was rolled back"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("write-txn-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
