//! Taskstream's test support, shared by every crate's tests: a fresh, migrated database per
//! test on SQLite or PostgreSQL ([`TestDb`], [`on_both_databases!`]), a consumer running over
//! the embedded log ([`RunningConsumer`], [`wait_caught_up`]), [`wait_until`] and
//! [`CapturedLogs`].
//!
//! PostgreSQL tests connect to the admin URL in `TEST_DATABASE_URL` (provided by
//! `scripts/test`), create a database of their own and drop it afterwards. When the variable
//! is missing the test fails, unless `TASKSTREAM_TEST_SKIP_POSTGRES=1` (the documented opt-out)
//! is set, in which case PostgreSQL tests return early after printing that they were skipped.
//!
//! It sits below `subscribers` and `graphql` (it depends on `entities`, `migration` and
//! `stream` only) so that `stream` and `subscribers` can dev-depend on it; the GraphQL-level
//! `TestApp` and the gateway test server stay in `graphql/tests/support`.
// Test support: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// Opens a test pool exactly as every process does ([`stream::db::connect`]), creating a
/// SQLite file that does not exist yet.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    stream::db::connect(url).await
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test. Dropping it removes the SQLite file; PostgreSQL databases are
/// dropped by [`TestDb::cleanup`] (and named `ts_test_*` so stragglers are easy to find).
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub db: DatabaseConnection,
    admin_url: Option<String>,
    pg_name: Option<String>,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop (no extra dependency for one helper).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("taskstream-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether PostgreSQL tests were explicitly opted out of.
pub fn postgres_skipped() -> bool {
    std::env::var("TASKSTREAM_TEST_SKIP_POSTGRES").as_deref() == Ok("1")
}

impl TestDb {
    /// A fresh database on `backend`, not yet migrated. `None` only when PostgreSQL is
    /// explicitly skipped.
    pub async fn empty(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new();
                let url = format!("sqlite://{}?mode=rwc", dir.0.join("test.db").display());
                let db = connect(&url).await.unwrap();
                Some(TestDb {
                    backend,
                    url,
                    db,
                    admin_url: None,
                    pg_name: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
                    if postgres_skipped() {
                        eprintln!("SKIPPED (TASKSTREAM_TEST_SKIP_POSTGRES=1): PostgreSQL test");
                        return None;
                    }
                    panic!(
                        "TEST_DATABASE_URL is not set: run the tests with scripts/test, which \
                         provisions PostgreSQL, or set TASKSTREAM_TEST_SKIP_POSTGRES=1 to skip"
                    );
                };
                let name = format!("ts_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url).await.unwrap();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                let url = replace_database(&admin_url, &name);
                let db = connect(&url).await.unwrap();
                Some(TestDb {
                    backend,
                    url,
                    db,
                    admin_url: Some(admin_url),
                    pg_name: Some(name),
                    _dir: None,
                })
            }
        }
    }

    /// A fresh, fully migrated database on `backend`.
    pub async fn migrated(backend: Backend) -> Option<TestDb> {
        let t = TestDb::empty(backend).await?;
        migration::Migrator::up(&t.db, None).await.unwrap();
        Some(t)
    }

    /// Closes the pool and drops the PostgreSQL database.
    pub async fn cleanup(self) {
        let TestDb {
            db,
            admin_url,
            pg_name,
            ..
        } = self;
        db.close().await.unwrap();
        if let (Some(admin_url), Some(name)) = (admin_url, pg_name) {
            let admin = Database::connect(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs `body` once per backend (SQLite, then PostgreSQL unless explicitly skipped) with a
/// fresh migrated database, cleaning up afterwards.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run($db: &$crate::TestDb) $body

            #[tokio::test]
            async fn sqlite() {
                let t = $crate::TestDb::migrated($crate::Backend::Sqlite).await.unwrap();
                run(&t).await;
                t.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(t) = $crate::TestDb::migrated($crate::Backend::Postgres).await {
                    run(&t).await;
                    t.cleanup().await;
                }
            }
        }
    };
}

/// Waits (with a 60 s deadline) until `cond` holds, polling every 20 ms.
pub async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A subscriber's consumer running over the embedded log (the outbox table) in the background,
/// with short backoffs for tests, until stopped.
pub struct RunningConsumer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), stream::consumer::ConsumerError>>,
}

impl RunningConsumer {
    /// Starts `handler` (consumer name = its `name()`) on partition 0 of `topic`.
    pub fn start<H: stream::consumer::Handler + 'static>(
        db: &DatabaseConnection,
        handler: H,
        topic: &str,
    ) -> RunningConsumer {
        use std::time::Duration;
        let config = stream::consumer::ConsumerConfig {
            max_attempts: 3,
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
            fetch_max_wait: Duration::from_millis(200),
            ..stream::consumer::ConsumerConfig::new(handler.name().to_owned(), topic)
        };
        let consumer = stream::consumer::Consumer::new(
            db.clone(),
            stream::embedded::EmbeddedLog::new(db.clone()),
            handler,
            config,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(consumer.run(async {
            let _ = stopped.await;
        }));
        RunningConsumer {
            stop: Some(stop),
            task,
        }
    }

    /// Stops it and checks it ended cleanly (within 30 s).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(30), self.task)
            .await
            .expect("the consumer did not stop within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// Waits until `consumer` has handled every record of partition 0 of `topic` on the embedded
/// log (including records it wrote itself).
pub async fn wait_caught_up(db: &DatabaseConnection, consumer: &str, topic: &str) {
    use sea_orm::EntityTrait;
    use stream::log::LogReader;
    wait_until(
        &format!("{consumer} reaches the end of {topic}"),
        || async {
            let stored = entities::consumer_offset::Entity::find_by_id((
                consumer.to_owned(),
                topic.to_owned(),
                0,
            ))
            .one(db)
            .await
            .unwrap()
            .map(|row| row.next_offset);
            let end = stream::embedded::EmbeddedLog::new(db.clone())
                .fetch(topic, 0, 0, 1, std::time::Duration::ZERO)
                .await
                .unwrap()
                .high_watermark;
            stored == Some(end)
        },
    )
    .await;
}

/// Inserts a raw, unpublished outbox row on `topic` (a redelivered copy or a malformed record)
/// and wakes the embedded log's readers; returns its row id.
pub async fn insert_raw(
    db: &DatabaseConnection,
    topic: &str,
    key: &str,
    headers: &str,
    payload: &str,
) -> i64 {
    use sea_orm::{ActiveModelTrait, Set};
    let row = entities::outbox::ActiveModel {
        event_id: Set(uuid::Uuid::now_v7()),
        topic: Set(topic.to_owned()),
        key: Set(key.to_owned()),
        payload: Set(payload.to_owned()),
        headers: Set(headers.to_owned()),
        created_at: Set(entities::to_db_precision(chrono::Utc::now())),
        published_at: Set(None),
        partition: Set(None),
        offset: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    stream::outbox::notify_committed();
    row.id
}

/// A `tracing` writer into memory, for checking log lines: install it with
/// `tracing_subscriber::fmt().with_writer(move || logs.clone())` and `set_default`.
#[derive(Clone, Default)]
pub struct CapturedLogs(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
