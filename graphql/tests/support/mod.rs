//! Shared test support: a fresh, migrated database per test, on SQLite or PostgreSQL.
//!
//! PostgreSQL tests connect to the admin URL in `TEST_DATABASE_URL` (provided by
//! `scripts/test`), create a database of their own and drop it afterwards. When the variable
//! is missing the test fails, unless `TASKSTREAM_TEST_SKIP_POSTGRES=1` (the documented opt-out)
//! is set, in which case PostgreSQL tests return early after printing that they were skipped.
#![allow(dead_code, clippy::unwrap_used)]

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

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
                let db = graphql::db::connect(&url).await.unwrap();
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
                let db = graphql::db::connect(&url).await.unwrap();
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
        graphql::db::migrate(&t.db).await.unwrap();
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

            async fn run($db: &support::TestDb) $body

            #[tokio::test]
            async fn sqlite() {
                let t = support::TestDb::migrated(support::Backend::Sqlite).await.unwrap();
                run(&t).await;
                t.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(t) = support::TestDb::migrated(support::Backend::Postgres).await {
                    run(&t).await;
                    t.cleanup().await;
                }
            }
        }
    };
}

/// A schema over a test database, with one method per common operation (zero-to-production's
/// `TestApp`, minus HTTP: transport tests live in `http.rs`).
pub struct TestApp {
    pub schema: graphql::schema::TaskstreamSchema,
    pub db: DatabaseConnection,
}

/// The first error of a response: (extensions.code, message).
pub type GqlError = (String, String);

impl TestApp {
    pub fn on(t: &TestDb) -> TestApp {
        TestApp {
            schema: graphql::schema::build_schema(
                t.db.clone(),
                graphql::schema::Clock::System,
                &graphql::schema::SchemaLimits::default(),
                graphql::live::LiveHub::new(),
            ),
            db: t.db.clone(),
        }
    }

    /// Executes `query` as `user` with `variables`.
    pub async fn exec(
        &self,
        user: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> async_graphql::Response {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        let request = graphql::schema::prepare_request(
            request,
            &self.db,
            graphql::schema::RequestMeta {
                user: graphql::auth::AuthUser {
                    id: user.to_owned(),
                },
                request_id: Some("test-request".to_owned()),
            },
        );
        graphql::schema::execute(&self.schema, request).await
    }

    /// Executes and asserts success; returns `data` as JSON.
    pub async fn ok(
        &self,
        user: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let resp = self.exec(user, query, variables).await;
        assert!(
            resp.errors.is_empty(),
            "unexpected errors: {:?}",
            resp.errors
        );
        resp.data.into_json().unwrap()
    }

    /// Executes and asserts failure; returns the first error's code and message.
    pub async fn err(&self, user: &str, query: &str, variables: serde_json::Value) -> GqlError {
        let resp = self.exec(user, query, variables).await;
        let err = resp
            .errors
            .first()
            .unwrap_or_else(|| panic!("expected an error, got data {:?}", resp.data));
        let code = err
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| {
                v.clone()
                    .into_json()
                    .unwrap()
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        (code, err.message.clone())
    }

    /// Executes `query` (no variables) as `user`, asserts failure and returns the first error's
    /// `extensions.code` and `extensions.field`.
    pub async fn error_field(&self, user: &str, query: &str) -> (String, Option<String>) {
        let response = self.exec(user, query, serde_json::json!({})).await;
        let error = response
            .errors
            .first()
            .unwrap_or_else(|| panic!("no error for {query}"));
        let ext = error.extensions.as_ref().unwrap();
        let text = |key: &str| {
            ext.get(key)
                .map(|v| v.clone().into_json().unwrap().as_str().unwrap().to_owned())
        };
        (text("code").unwrap(), text("field"))
    }

    /// The titles `tasks(<arguments>)` lists for `user`, in list order.
    pub async fn titles(&self, user: &str, arguments: &str) -> Vec<String> {
        let data = self
            .ok(
                user,
                &format!("{{ tasks({arguments}) {{ nodes {{ title }} }} }}"),
                serde_json::json!({}),
            )
            .await;
        data["tasks"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Creates a task from a `CreateTaskInput` JSON and returns it (id, version, tags...).
    pub async fn create_task(&self, user: &str, input: serde_json::Value) -> serde_json::Value {
        let data = self
            .ok(
                user,
                &format!("mutation($input: CreateTaskInput!) {{ createTask(input: $input) {{ {TASK_FIELDS} }} }}"),
                serde_json::json!({ "input": input }),
            )
            .await;
        data["createTask"].clone()
    }

    /// Every outbox row, in id order.
    pub async fn outbox(&self) -> Vec<entities::outbox::Model> {
        use sea_orm::{EntityTrait, QueryOrder};
        entities::outbox::Entity::find()
            .order_by_asc(entities::outbox::Column::Id)
            .all(&self.db)
            .await
            .unwrap()
    }

    /// How many rows a table holds (to check that nothing was written).
    pub async fn count(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

/// The task fields tests select.
pub const TASK_FIELDS: &str = "id title description priority completed completedAt dueAt \
    tags { name color } recurrence { rule timezone anchor } \
    reminders { minutesBeforeDue at fireAt status } seriesId version createdAt updatedAt";

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

/// The real gateway ([`graphql::app::App`], as `main` runs it: HTTP server, in-process
/// subscribers, live tail, retention) on `127.0.0.1:0`; it stops when
/// [`graphql::app::RunningApp::shutdown`] is cancelled (see [`StopOnDrop`]).
pub async fn start_app(config: graphql::config::ServerConfig) -> graphql::app::RunningApp {
    start_built(graphql::app::App::build(config).await.unwrap()).await
}

/// [`start_app`] for an [`graphql::app::App`] already built (and perhaps adjusted).
pub async fn start_built(app: graphql::app::App) -> graphql::app::RunningApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    app.run(listener, graphql::app::CancellationToken::new())
        .unwrap()
}

/// Cancels a test server's shutdown token when dropped.
pub struct StopOnDrop(pub graphql::app::CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
