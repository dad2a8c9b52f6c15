//! Soak: the real gateway under steady load for minutes, to show that retention keeps the
//! database and the process flat.
//!
//! ```sh
//! cargo build --release -p graphql --bin taskstream --example soak
//! target/release/examples/soak [MINUTES] [WRITES_PER_SEC] [POSTGRES_ADMIN_URL]
//! ```
//!
//! The `taskstream` binary (beside this program, or `TASKSTREAM_BIN`) runs in embedded mode on
//! a fresh SQLite file, or, given a PostgreSQL admin URL, on a fresh database it creates there
//! and drops afterwards. Retention is shortened so that it prunes during the run (events and
//! processed ids are kept for a sixth of the run, at least 20 s; a pass every 10 s). Load,
//! all on 127.0.0.1, for MINUTES (default 10):
//! - writes at WRITES_PER_SEC (default 20) over HTTP: daily recurring tasks are created,
//!   renamed (`updateTask`) and completed (`completeTask`, so the recurrence subscriber
//!   creates each successor), and completed tasks are deleted, so the live data stays about
//!   the same size and any growth is the event tables';
//! - reads: two pages of `tasks` per second (open and completed tasks, 50 each);
//! - 200 WebSocket clients (graphql-transport-ws) subscribed to `taskChanged`.
//!
//! Every 30 s it prints elapsed time, database size (SQLite: the `.db` file; PostgreSQL:
//! `pg_database_size`), WAL size (SQLite: the `-wal` file; PostgreSQL: the sum of
//! `pg_ls_waldir()`, which is the whole cluster's), gateway RSS (VmRSS), outbox and
//! processed_events rows, and errors so far. At the end, a verdict: database size and RSS are
//! flat if the mean of the last third of the samples is within 10% (or 2 MiB) of the middle
//! third's (the first third is warm-up). Every loop ends by itself when the time is up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/gateway.rs"]
mod gateway;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use gateway::Gateway;

const SECRET: &str = "a-soak-benchmark-secret-long-enough-for-hs256";
/// Live subscribers held open for the whole run.
const SOCKETS: usize = 200;
/// Open tasks the writer keeps in play; completing one makes its successor the next in play.
const OPEN_TASKS: usize = 50;
/// How often a line is printed.
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// Reads per second (pages of `tasks`).
const READS_PER_SEC: u64 = 2;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let minutes: f64 = args.next().map_or(Ok(10.0), |a| a.parse())?;
    let writes_per_sec: f64 = args.next().map_or(Ok(20.0), |a| a.parse())?;
    let postgres_admin = args.next();
    anyhow::ensure!(
        minutes > 0.0 && writes_per_sec > 0.0,
        "MINUTES and WRITES_PER_SEC must be positive"
    );
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let retention = (duration / 6).max(Duration::from_secs(20));
    let hours = retention.as_secs_f64() / 3_600.0;
    let days = hours / 24.0;

    let database = Database::create(postgres_admin.as_deref()).await?;
    println!(
        "soak: {minutes} min, {writes_per_sec} writes/s, {READS_PER_SEC} reads/s, {SOCKETS} \
         sockets on {}; outbox and processed ids kept {:.0} s, a pass every 10 s",
        database.describe(),
        retention.as_secs_f64()
    );
    let gateway = Gateway::start(
        SECRET,
        &[
            ("DATABASE_URL", database.url.clone()),
            ("RETENTION_OUTBOX_HOURS", hours.to_string()),
            ("RETENTION_PROCESSED_EVENTS_HOURS", hours.to_string()),
            ("RETENTION_WEBHOOK_DELIVERIES_DAYS", days.to_string()),
            ("RETENTION_DEAD_LETTERS_DAYS", days.to_string()),
            ("RETENTION_READ_NOTIFICATIONS_DAYS", days.to_string()),
            ("RETENTION_INTERVAL_SECS", "10".to_owned()),
        ],
    )
    .await?;
    let db = sea_orm::Database::connect(&database.url).await?;
    if database.postgres.is_some() {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT current_setting('autovacuum') AS autovacuum",
            ))
            .await?;
        let autovacuum: String = row.map_or(Ok(String::new()), |r| r.try_get("", "autovacuum"))?;
        if autovacuum != "on" {
            println!(
                "note: autovacuum is {autovacuum:?} on this server: dead rows are never reclaimed, \
                 so the database size grows with every update and delete whatever retention does"
            );
        }
    }
    let client = Client {
        http: reqwest::Client::new(),
        url: format!("{}/graphql", gateway.base),
        token: gateway.token.clone(),
        errors: Arc::new(AtomicU64::new(0)),
    };
    client
        .send("mutation { updateSettings(input: { timezone: \"UTC\" }) { id } }")
        .await;

    let started = Instant::now();
    let deadline = started + duration;
    let received = Arc::new(AtomicU64::new(0));
    let sockets = connect_sockets(&gateway, &client, &received, deadline).await?;
    let state = Arc::new(Mutex::new(Workload::default()));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_loop(
        client.clone(),
        Arc::clone(&state),
        Arc::clone(&writes),
        writes_per_sec,
        deadline,
    ));
    let reader = tokio::spawn(read_loop(client.clone(), Arc::clone(&state), deadline));

    println!(
        "{:>7} {:>10} {:>10} {:>9} {:>8} {:>10} {:>7} {:>8} {:>9}",
        "elapsed",
        "db MiB",
        "wal MiB",
        "rss MiB",
        "outbox",
        "processed",
        "errors",
        "writes",
        "ws msgs"
    );
    let mut samples = Vec::new();
    let mut next = started + SAMPLE_EVERY;
    while next <= deadline + Duration::from_secs(1) {
        tokio::time::sleep_until(next.into()).await;
        let sample = Sample {
            elapsed: started.elapsed(),
            db_bytes: database.size(&db).await,
            wal_bytes: database.wal_size(&db).await,
            rss_kib: rss_kib(gateway.pid()),
            outbox: count(&db, "outbox").await,
            processed: count(&db, "processed_events").await,
        };
        println!(
            "{:>6.0}s {:>10} {:>10} {:>9.1} {:>8} {:>10} {:>7} {:>8} {:>9}",
            sample.elapsed.as_secs_f64(),
            mib(sample.db_bytes),
            mib(sample.wal_bytes),
            sample.rss_kib as f64 / 1024.0,
            sample.outbox,
            sample.processed,
            client.errors.load(Ordering::Relaxed),
            writes.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
        );
        samples.push(sample);
        next += SAMPLE_EVERY;
    }
    writer.await?;
    reader.await?;
    for socket in sockets {
        let _ = tokio::time::timeout(Duration::from_secs(5), socket).await;
    }

    println!();
    verdict("database size", samples.iter().filter_map(|s| s.db_bytes));
    verdict("gateway RSS", samples.iter().map(|s| s.rss_kib * 1024));
    println!(
        "errors: {} (HTTP, GraphQL and WebSocket)",
        client.errors.load(Ordering::Relaxed)
    );
    gateway.terminate().await?;
    db.close().await?;
    database.drop().await?;
    Ok(())
}

/// One 30-second measurement.
struct Sample {
    elapsed: Duration,
    db_bytes: Option<u64>,
    wal_bytes: Option<u64>,
    rss_kib: u64,
    outbox: i64,
    processed: i64,
}

/// Prints whether `values` (one per sample) were flat after warm-up.
fn verdict(what: &str, values: impl Iterator<Item = u64>) {
    let values: Vec<f64> = values.map(|v| v as f64).collect();
    let third = values.len() / 3;
    if third == 0 {
        println!("{what}: too few samples for a verdict (run at least 90 s)");
        return;
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let middle = mean(&values[third..2 * third]);
    let last = mean(&values[values.len() - third..]);
    let growth = last - middle;
    let flat = growth <= (middle * 0.10).max(2.0 * 1024.0 * 1024.0);
    println!(
        "{what}: middle third {:.1} MiB, last third {:.1} MiB ({:+.1} MiB): {}",
        middle / 1048576.0,
        last / 1048576.0,
        growth / 1048576.0,
        if flat { "FLAT" } else { "GROWING" }
    );
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.2}", b as f64 / 1048576.0),
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    match db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
    {
        Ok(Some(row)) => row.try_get::<i64>("", "n").unwrap_or(-1),
        _ => -1,
    }
}

// ------------------------------------------------------------------ database

/// The soak's database: a SQLite file, or a PostgreSQL database created for the run.
struct Database {
    url: String,
    sqlite_file: Option<PathBuf>,
    postgres: Option<(String, String)>,
}

impl Database {
    async fn create(postgres_admin: Option<&str>) -> anyhow::Result<Database> {
        let Some(admin) = postgres_admin else {
            let dir =
                std::env::temp_dir().join(format!("taskstream-soak-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir)?;
            let file = dir.join("soak.db");
            return Ok(Database {
                url: format!("sqlite://{}?mode=rwc", file.display()),
                sqlite_file: Some(file),
                postgres: None,
            });
        };
        let name = format!("ts_soak_{}", uuid::Uuid::new_v4().simple());
        let conn = sea_orm::Database::connect(admin)
            .await
            .context("cannot connect to the PostgreSQL admin URL")?;
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        conn.close().await?;
        let (base, _) = admin
            .rsplit_once('/')
            .context("the admin URL has no database")?;
        Ok(Database {
            url: format!("{base}/{name}"),
            sqlite_file: None,
            postgres: Some((admin.to_owned(), name)),
        })
    }

    fn describe(&self) -> String {
        match (&self.sqlite_file, &self.postgres) {
            (Some(file), _) => format!("SQLite {}", file.display()),
            (_, Some((_, name))) => format!("PostgreSQL database {name}"),
            _ => "?".to_owned(),
        }
    }

    async fn size(&self, db: &DatabaseConnection) -> Option<u64> {
        match &self.sqlite_file {
            Some(file) => std::fs::metadata(file).ok().map(|m| m.len()),
            None => {
                scalar(
                    db,
                    "SELECT pg_database_size(current_database())::BIGINT AS n",
                )
                .await
            }
        }
    }

    async fn wal_size(&self, db: &DatabaseConnection) -> Option<u64> {
        match &self.sqlite_file {
            Some(file) => {
                let mut wal = file.clone().into_os_string();
                wal.push("-wal");
                Some(std::fs::metadata(wal).map_or(0, |m| m.len()))
            }
            // Needs superuser or pg_monitor; n/a otherwise.
            None => {
                scalar(
                    db,
                    "SELECT COALESCE(SUM(size), 0)::BIGINT AS n FROM pg_ls_waldir()",
                )
                .await
            }
        }
    }

    /// Removes the SQLite directory or drops the PostgreSQL database.
    async fn drop(self) -> anyhow::Result<()> {
        if let Some(file) = &self.sqlite_file
            && let Some(dir) = file.parent()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = &self.postgres {
            let conn = sea_orm::Database::connect(admin.as_str()).await?;
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> Option<u64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .ok()??;
    row.try_get::<i64>("", "n")
        .ok()
        .and_then(|n| u64::try_from(n).ok())
}

// ------------------------------------------------------------------ load

/// GraphQL over HTTP as user `bench`, counting every failure.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    errors: Arc<AtomicU64>,
}

impl Client {
    /// Runs `query`; `None` (and one more error) on a transport or GraphQL error.
    async fn send(&self, query: &str) -> Option<Value> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({ "query": query }))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let body: Option<Value> = match response {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            _ => None,
        };
        match body {
            Some(body) if body["errors"].is_null() => Some(body["data"].clone()),
            other => {
                let n = self.errors.fetch_add(1, Ordering::Relaxed);
                if n < 5 {
                    eprintln!("request failed: {query:.60}… → {other:?}");
                }
                None
            }
        }
    }
}

/// What the writer works on: open tasks in play, and completed tasks to delete. The reader
/// fills both from its pages (successors appear as open tasks the writer has not seen);
/// `retired` remembers what the writer completed (`false`) or deleted (`true`) lately, so a
/// page read just before that change does not bring it back.
#[derive(Default)]
struct Workload {
    open: Vec<String>,
    completed: Vec<String>,
    retired: std::collections::VecDeque<(String, bool)>,
    step: u64,
}

impl Workload {
    fn retire(&mut self, id: &str, deleted: bool) {
        if self.retired.len() >= 4 * OPEN_TASKS {
            self.retired.pop_front();
        }
        self.retired.push_back((id.to_owned(), deleted));
    }

    /// Whether the writer completed (or, with `deleted_only`, deleted) `id` lately.
    fn retired(&self, id: &str, deleted_only: bool) -> bool {
        self.retired
            .iter()
            .any(|(r, deleted)| r == id && (*deleted || !deleted_only))
    }
}

async fn write_loop(
    client: Client,
    state: Arc<Mutex<Workload>>,
    writes: Arc<AtomicU64>,
    per_sec: f64,
    deadline: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        tick.tick().await;
        let action = {
            let mut s = state.lock().unwrap();
            s.step += 1;
            if let Some(id) = s.completed.pop() {
                s.retire(&id, true);
                Action::Delete(id)
            } else if s.open.len() < OPEN_TASKS {
                Action::Create
            } else {
                let i = (s.step as usize) % s.open.len();
                if s.step.is_multiple_of(3) {
                    let id = s.open.swap_remove(i);
                    s.retire(&id, false);
                    Action::Complete(id)
                } else {
                    Action::Rename(s.open[i].clone(), s.step)
                }
            }
        };
        let query = match &action {
            Action::Create => {
                let due = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
                format!(
                    r#"mutation {{ createTask(input: {{ title: "soak", dueAt: "{due}",
                    recurrence: {{ rule: "FREQ=DAILY" }} }}) {{ id }} }}"#
                )
            }
            Action::Rename(id, n) => format!(
                r#"mutation {{ updateTask(id: "{id}", input: {{ title: "soak {n}" }}) {{ id }} }}"#
            ),
            Action::Complete(id) => format!(r#"mutation {{ completeTask(id: "{id}") {{ id }} }}"#),
            Action::Delete(id) => format!(r#"mutation {{ deleteTask(id: "{id}") }}"#),
        };
        let data = client.send(&query).await;
        writes.fetch_add(1, Ordering::Relaxed);
        if let (Action::Create, Some(data)) = (&action, data)
            && let Some(id) = data["createTask"]["id"].as_str()
        {
            state.lock().unwrap().open.push(id.to_owned());
        }
    }
}

enum Action {
    Create,
    Rename(String, u64),
    Complete(String),
    Delete(String),
}

async fn read_loop(client: Client, state: Arc<Mutex<Workload>>, deadline: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(1_000 / READS_PER_SEC));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut completed = false;
    while Instant::now() < deadline {
        tick.tick().await;
        completed = !completed;
        let query = format!(
            "{{ tasks(filter: {{ completed: {completed} }}, first: 50) {{ edges {{ node {{ id }} }} }} }}"
        );
        let Some(data) = client.send(&query).await else {
            continue;
        };
        let ids: Vec<String> = data["tasks"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
            .collect();
        let mut s = state.lock().unwrap();
        for id in ids {
            if s.open.contains(&id) || s.completed.contains(&id) {
                continue;
            }
            if completed && !s.retired(&id, true) {
                s.completed.push(id);
            } else if !completed && !s.retired(&id, false) && s.open.len() < 2 * OPEN_TASKS {
                s.open.push(id);
            }
        }
    }
}

/// Opens the sockets; each counts `next` messages until the deadline and counts an error,
/// a close or an end as an error.
async fn connect_sockets(
    gateway: &Gateway,
    client: &Client,
    received: &Arc<AtomicU64>,
    deadline: Instant,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let url = format!("ws://127.0.0.1:{}/graphql/ws", gateway.port);
    let mut tasks = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        let mut request = url.clone().into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let init = json!({ "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {}", gateway.token) } });
        socket.send(Message::Text(init.to_string().into())).await?;
        let subscribe = json!({ "id": "1", "type": "subscribe",
            "payload": { "query": "subscription { taskChanged { kind task { id title } } }" } });
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await?;
        let (received, errors) = (Arc::clone(received), Arc::clone(&client.errors));
        tasks.push(tokio::spawn(async move {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, socket.next()).await {
                    Err(_) => break,
                    Ok(Some(Ok(Message::Text(text)))) => {
                        if text.contains("\"next\"") {
                            received.fetch_add(1, Ordering::Relaxed);
                        } else if text.contains("\"error\"") || text.contains("\"complete\"") {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("socket: {text}");
                            break;
                        }
                    }
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_)))) => {}
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            let _ = socket.close(None).await;
        }));
    }
    Ok(tasks)
}
