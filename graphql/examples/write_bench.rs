//! The write path under load: `createTask`, `updateTask` and `completeTask` through the real
//! gateway, next to the floor (the same transactions' SQL replayed without the gateway) and
//! PostGraphile, on PostgreSQL and on SQLite, from one run.
//!
//! ```sh
//! cargo build --release -p graphql --bin taskstream --example write_bench
//! target/release/examples/write_bench [--requests 2000] [--clients 1,16] [--help for the rest]
//! ```
//!
//! PostgreSQL (a throwaway cluster this program initdb's and starts from
//! `/usr/lib/postgresql/*/bin`, as user `postgres` when run as root, like
//! `scripts/lib/postgres.sh`; server defaults, so fsync and synchronous commit are on, unless
//! `--pg-setting` says otherwise; everything below runs on its one `bench` database):
//!
//! 1. Gateway: the `taskstream` binary (beside this program, or `TASKSTREAM_BIN`) in embedded
//!    mode on that database. After a warm-up of every mutation, each case sends REQUESTS
//!    mutations over HTTP from a Rust client loop with 1 and with 16 clients (`--clients`):
//!    `createTask` (2 tags, a due date), `updateTask` (each client renames its own task) and
//!    `completeTask` (each request completes another daily recurring task, created before the
//!    case, so the recurrence subscriber makes a successor). Every response must have no
//!    `errors`; failures are counted and printed. After each case the program waits until the
//!    embedded consumers have caught up (no consumer offset behind its topic's newest outbox
//!    row), so one case's consumer work does not run into the next, and counts successors.
//! 2. Capture: with `log_statement = all` (turned on with `ALTER SYSTEM` and a reload; the
//!    timed cases run with it off), CAPTURE (default 5) mutations of each kind are sent one at
//!    a time and the server's `jsonlog` is read back. The gateway names its connections
//!    `taskstream-<id>` (its `application_name`), so its statements are told apart from this
//!    program's. A
//!    mutation's transaction is the first `BEGIN`…`COMMIT` (one virtual transaction id) that
//!    mentions the mutated task's id (each captured mutation has a task of its own). Its
//!    statements are printed, and so is every other statement the gateway issued while
//!    logging was on (consumers' transactions, pollers), counted per mutation; the last
//!    captured transaction, with the logged `DETAIL: parameters` put in for the `$n`
//!    placeholders, becomes the floor's script.
//! 3. Floor: pgbench (`-n -M prepared`, `-T PGBENCH_SECS`, per-transaction `--log` for p50
//!    and p99) runs the captured transaction of each mutation with the gateway stopped.
//!    Parameters become literals cast to the type PostgreSQL inferred for them (`PREPARE` and
//!    `pg_prepared_statements`); UUIDs that did not exist before the mutation (the new task's
//!    id, the events' ids) are made fresh per transaction (time-ordered like the gateway's
//!    v7 ids, from `now()`, the client id and a pgbench random), also inside JSON payloads;
//!    the task an update or completion targets becomes one copy per pgbench client. Only the
//!    mutation's own transaction is replayed, not the consumers' work it causes.
//! 4. PostGraphile 4.14 (installed with npm once into `~/.cache/taskstream/postgraphile`,
//!    or `--postgraphile-dir`) on the same database, started as a child process with its query
//!    log off: its generated `createTask` inserting one `tasks` row (no tags, no outbox: an
//!    insert-only peer), with the same client loop.
//! 5. Idle: the gateway is left alone for IDLE_SECS (default 20) with statement logging on,
//!    and the statements it issues per second are counted (with the most frequent ones).
//!
//! SQLite: the same gateway cases on a fresh database file (the WAL file's size is printed at
//! the end; `--sqlite-creates 100000` adds a long `createTask` run after the warm-up, for the
//! issue's WAL target). SQLite has no statement log, so its floor replays the *PostgreSQL*
//! capture, translated: `BEGIN IMMEDIATE` (as the gateway's `begin_write`), no `FOR UPDATE`
//! (the gateway locks rows only on PostgreSQL; otherwise sea-orm builds the same statements
//! for both here), and the same parameter values bound as the same Rust types through sea-orm
//! (so they are stored as the gateway stores them), with fresh ids as above and the rows they
//! refer to (user, tags, target tasks) copied from PostgreSQL, on a fresh database opened and
//! migrated as the gateway opens its own (`graphql::db::connect`: WAL, synchronous NORMAL,
//! foreign keys, busy timeout; SQLite's search triggers run as for the gateway), from a tight
//! Rust loop with 1 and 16 tasks through sea-orm and sqlx like the gateway (so the floor
//! includes the driver's cost per statement, and nothing of HTTP, GraphQL or the consumers),
//! twice: through one connection (the tasks queue for it: the floor the ratios use) and
//! through the gateway's pool of 10 (writers then wait for the lock in SQLite's busy handler,
//! which sleeps). A replayed `UPDATE … RETURNING` or `SELECT … FOR
//! UPDATE` that finds no row counts as a failure, and so does a pgbench run that wrote fewer
//! `tasks` rows than it ran transactions (`pg_stat_user_tables`).
//!
//! It prints a table per database (case, clients, req/s, p50, p99, failures; gateway/floor
//! and gateway/PostGraphile ratios), the issue's targets beside the figures, and the captured
//! statements. Nothing is asserted: these machines are shared and noisy, and the load
//! generator shares them with the servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/gateway.rs"]
mod gateway;
#[path = "support/load.rs"]
mod load;
#[path = "support/postgres.rs"]
mod postgres;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use clap::Parser;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use gateway::Gateway;
use load::{Api, Measured, truncate};
use postgres::Cluster;

const SECRET: &str = "a-write-benchmark-secret-long-enough-for-hs256";
/// The gateway's user (the token's subject), also PostGraphile's tasks' owner.
const OWNER: &str = "bench";
/// How the gateway's `application_name` on PostgreSQL starts (`taskstream-<id>`, set by the
/// gateway itself), which tells its statements apart.
const GATEWAY_APP: &str = "taskstream-";
const TAGS: [&str; 2] = ["bench", "write"];

const CREATE: &str =
    "mutation Create($input: CreateTaskInput!) { createTask(input: $input) { id } }";
const UPDATE: &str = "mutation Rename($id: ID!, $input: UpdateTaskInput!) { \
     updateTask(id: $id, input: $input) { id } }";
const COMPLETE: &str = "mutation Complete($id: ID!) { completeTask(id: $id) { id } }";
const POSTGRAPHILE_CREATE: &str =
    "mutation Create($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }";

/// Consumer offsets behind their topic's newest outbox row.
const LAG_SQL: &str = "SELECT COUNT(*) AS n FROM consumer_offsets c WHERE c.next_offset <= \
     (SELECT COALESCE(MAX(o.id), -1) FROM outbox o WHERE o.topic = c.topic)";
const SUCCESSORS_SQL: &str =
    "SELECT COUNT(*) AS n FROM tasks WHERE generated_from_task_id IS NOT NULL";

#[derive(Parser, Debug)]
#[command(
    name = "write_bench",
    about = "createTask, updateTask and completeTask through the real gateway, next to the same \
             SQL replayed without it (pgbench; a Rust loop on SQLite) and PostGraphile, on \
             PostgreSQL (a throwaway cluster) and SQLite. Build the taskstream binary first: \
             cargo build --release -p graphql --bin taskstream --example write_bench"
)]
struct Args {
    /// Measured requests per gateway, SQLite floor and PostGraphile case (one mutation at one
    /// client count).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Warm-up mutations of each kind before anything is measured.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// Seconds per pgbench run (one per mutation and client count).
    #[arg(long, default_value_t = 10)]
    pgbench_secs: u64,
    /// Seconds the PostgreSQL gateway is left idle after the load, counting its statements.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// Mutations of each kind sent one at a time with statement logging on.
    #[arg(long, default_value_t = 5)]
    capture: usize,
    /// A long SQLite createTask run of this many requests at the largest client count, before
    /// the other SQLite cases, for the WAL size (the issue's target: under 64 MB after
    /// 100000). 0: none.
    #[arg(long, default_value_t = 0)]
    sqlite_creates: usize,
    /// The directory with initdb, pg_ctl, postgres and pgbench (default: the newest
    /// /usr/lib/postgresql/*/bin).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// An extra postgresql.conf line for the throwaway cluster, NAME=VALUE (repeatable), e.g.
    /// --pg-setting synchronous_commit=off.
    #[arg(long = "pg-setting", value_name = "NAME=VALUE", value_parser = parse_setting)]
    pg_settings: Vec<(String, String)>,
    /// Leave PostGraphile out.
    #[arg(long)]
    no_postgraphile: bool,
    /// Where PostGraphile 4.14 is (npm-installed there when missing); default
    /// $HOME/.cache/taskstream/postgraphile.
    #[arg(long)]
    postgraphile_dir: Option<PathBuf>,
    /// Copy the generated pgbench scripts into this directory.
    #[arg(long)]
    keep_scripts: Option<PathBuf>,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    let value = value.trim();
    let quoted = if value.parse::<f64>().is_ok() || value.starts_with('\'') {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    };
    Ok((name.trim().to_owned(), quoted))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.requests > 0 && args.capture > 0 && !args.clients.is_empty(),
        "--requests, --capture and --clients must be positive"
    );
    anyhow::ensure!(
        args.clients.iter().all(|c| (1..=100).contains(c)),
        "each client count must be 1 to 100"
    );
    println!(
        "write_bench: {} requests per case at {:?} clients, {} warm-up, pgbench {} s per run, \
         idle {} s, {} captured mutations of each kind",
        args.requests, args.clients, args.warmup, args.pgbench_secs, args.idle_secs, args.capture
    );
    // On Ctrl-C the run is dropped, so the gateway, PostGraphile and the cluster are stopped
    // and their directories removed.
    tokio::select! {
        result = run(&args) => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let pg = postgres_phase(args).await?;
    let sqlite = sqlite_phase(args, &pg).await?;
    print_report(args, &pg, &sqlite);
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
    drop(pg);
    Ok(())
}

/// `1 client`, `16 clients`.
fn clients_label(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn say(line: impl AsRef<str>) {
    println!("==> {}", line.as_ref());
}

// ------------------------------------------------------------------ measurements

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Create,
    Update,
    Complete,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Create, Kind::Update, Kind::Complete];

    fn name(self) -> &'static str {
        match self {
            Kind::Create => "createTask",
            Kind::Update => "updateTask",
            Kind::Complete => "completeTask",
        }
    }

    /// Distinguishes the per-client copies of the tasks updates and completions target.
    fn number(self) -> u8 {
        self as u8 + 1
    }
}

/// One line of a result table.
struct Row {
    kind: Kind,
    clients: usize,
    /// A label for a special run (the long SQLite create run).
    note: Option<String>,
    gateway: Measured,
    /// The floor the ratios are taken against.
    floor: Option<Measured>,
    /// SQLite: the floor again with the gateway's pool of connections.
    pooled_floor: Option<Measured>,
    peer: Option<Measured>,
}

// ------------------------------------------------------------------ GraphQL client loop

/// What one request of a load does.
enum Work {
    /// `createTask` with 2 tags and a due date; `recurring` adds a daily rule.
    Create { recurring: bool },
    /// Worker `w` renames task `w`.
    Update(Vec<String>),
    /// Request `n` renames task `n`.
    UpdateEach(Vec<String>),
    /// Request `n` completes task `n`.
    Complete(Vec<String>),
    /// PostGraphile's generated `createTask`: one `tasks` row.
    PostGraphileCreate,
}

impl Work {
    fn body(&self, worker: usize, n: usize, due: &str) -> Value {
        match self {
            Work::Create { recurring: false } => json!({ "query": CREATE, "variables": {
                "input": { "title": format!("bench {n}"), "tags": TAGS, "dueAt": due } } }),
            Work::Create { recurring: true } => json!({ "query": CREATE, "variables": {
                "input": { "title": format!("recurring {n}"), "dueAt": due,
                           "recurrence": { "rule": "FREQ=DAILY" } } } }),
            Work::Update(ids) => json!({ "query": UPDATE, "variables": {
                "id": ids[worker % ids.len()], "input": { "title": format!("renamed {n}") } } }),
            Work::UpdateEach(ids) => json!({ "query": UPDATE, "variables": {
                "id": ids[n], "input": { "title": format!("renamed {n}") } } }),
            Work::Complete(ids) => json!({ "query": COMPLETE, "variables": { "id": ids[n] } }),
            Work::PostGraphileCreate => {
                let now = Utc::now().to_rfc3339();
                json!({ "query": POSTGRAPHILE_CREATE, "variables": { "input": { "task": {
                    "id": Uuid::now_v7(), "ownerId": OWNER, "title": format!("peer {n}"),
                    "dueAt": due, "createdAt": now, "updatedAt": now } } } })
            }
        }
    }

    /// The id of the task a response is about.
    fn id_of(&self, data: &Value) -> Option<String> {
        let node = match self {
            Work::Create { .. } => &data["createTask"],
            Work::Update(_) | Work::UpdateEach(_) => &data["updateTask"],
            Work::Complete(_) => &data["completeTask"],
            Work::PostGraphileCreate => &data["createTask"]["task"],
        };
        node["id"].as_str().map(str::to_owned)
    }
}

/// Sends `count` requests of `work` from `clients` concurrent loops; each request's latency,
/// and the task ids of the responses (`None` for a failure) in request order.
async fn load(
    api: &Api,
    work: Arc<Work>,
    clients: usize,
    count: usize,
) -> (Measured, Vec<Option<String>>) {
    let due = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..clients.max(1) {
        let (api, work, next, due) = (api.clone(), work.clone(), next.clone(), due.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return done;
                }
                let body = work.body(worker, n, &due);
                let sent = Instant::now();
                let result = api.call(&body).await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                done.push((n, ms, result.map(|data| work.id_of(&data))));
            }
        });
    }
    let mut results = Vec::with_capacity(count);
    while let Some(worker) = workers.join_next().await {
        results.extend(worker.expect("a load worker panicked"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut measured = Measured {
        per_second: count as f64 / elapsed,
        requests: count,
        ..Measured::default()
    };
    let mut ids = vec![None; count];
    for (n, ms, result) in results {
        measured.latencies.push(ms);
        match result {
            Ok(id) => ids[n] = id,
            Err(e) => {
                measured.failed += 1;
                if measured.first_failures.len() < 3 {
                    measured.first_failures.push(e);
                }
            }
        }
    }
    measured.latencies.sort_by(f64::total_cmp);
    (measured, ids)
}

/// Creates `count` tasks (not measured) and returns their ids.
async fn create_tasks(api: &Api, count: usize, recurring: bool) -> anyhow::Result<Vec<String>> {
    let (measured, ids) = load(api, Arc::new(Work::Create { recurring }), 16, count).await;
    measured.shout("creating tasks to work on");
    ids.into_iter()
        .map(|id| id.context("a task to work on could not be created"))
        .collect()
}

// ------------------------------------------------------------------ gateway cases

/// A gateway and a connection of this program's to its database.
struct Target<'a> {
    api: Api,
    db: &'a DatabaseConnection,
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .context("no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Waits (2 minutes at most) until no consumer is behind; how long that took.
async fn settle(db: &DatabaseConnection) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if scalar(db, LAG_SQL).await? == 0 {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}

async fn warm_up(target: &Target<'_>, count: usize, clients: usize) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let create = load(
        &target.api,
        Arc::new(Work::Create { recurring: false }),
        clients,
        count,
    )
    .await
    .0;
    create.shout("warm-up createTask");
    let ids = create_tasks(&target.api, clients, false).await?;
    load(&target.api, Arc::new(Work::Update(ids)), clients, count)
        .await
        .0
        .shout("warm-up updateTask");
    let ids = create_tasks(&target.api, count, true).await?;
    load(&target.api, Arc::new(Work::Complete(ids)), clients, count)
        .await
        .0
        .shout("warm-up completeTask");
    settle(target.db).await?;
    Ok(())
}

/// One timed case: prepares what it works on, sends the load, waits for the consumers.
/// Every mutation at every client count through the gateway, in order.
async fn gateway_cases(target: &Target<'_>, args: &Args) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for kind in Kind::ALL {
        for &clients in &args.clients {
            let gateway = gateway_case(target, kind, clients, args.requests).await?;
            rows.push(Row {
                kind,
                clients,
                note: None,
                gateway,
                floor: None,
                pooled_floor: None,
                peer: None,
            });
        }
    }
    Ok(rows)
}

async fn gateway_case(
    target: &Target<'_>,
    kind: Kind,
    clients: usize,
    count: usize,
) -> anyhow::Result<Measured> {
    let work = match kind {
        Kind::Create => Work::Create { recurring: false },
        Kind::Update => Work::Update(create_tasks(&target.api, clients, false).await?),
        Kind::Complete => Work::Complete(create_tasks(&target.api, count, true).await?),
    };
    settle(target.db).await?;
    let successors = scalar(target.db, SUCCESSORS_SQL).await?;
    let (measured, _) = load(&target.api, Arc::new(work), clients, count).await;
    let caught_up = settle(target.db).await?;
    let mut line = format!(
        "  gateway {} × {}: {}; consumers caught up {}",
        kind.name(),
        clients_label(clients, "client"),
        measured.line(),
        caught_up.map_or("NOT within 120 s".to_owned(), |d| format!(
            "{:.1} s after the last response",
            d.as_secs_f64()
        ))
    );
    if kind == Kind::Complete {
        let made = scalar(target.db, SUCCESSORS_SQL).await? - successors;
        line.push_str(&format!(
            "; {made} of {} successors made{}",
            count - measured.failed,
            if made < (count - measured.failed) as i64 {
                " (MISSING SUCCESSORS)"
            } else {
                ""
            }
        ));
    }
    println!("{line}");
    measured.shout(&format!("gateway {} × {clients}", kind.name()));
    Ok(measured)
}

// ------------------------------------------------------------------ PostgreSQL phase

struct PgPhase {
    /// Kept running until the end: the SQLite floor copies rows from it.
    _cluster: Cluster,
    /// This program's connection to the `bench` database (one connection).
    db: DatabaseConnection,
    settings: String,
    rows: Vec<Row>,
    captures: Vec<Capture>,
    templates: Vec<Template>,
    idle: Option<Idle>,
    /// Whether PostGraphile could not run (why).
    postgraphile_problem: Option<String>,
}

async fn postgres_phase(args: &Args) -> anyhow::Result<PgPhase> {
    say("PostgreSQL: starting a throwaway cluster");
    let cluster = Cluster::start(args.pg_bin.as_deref(), &args.pg_settings)?;
    let admin = sea_orm::Database::connect(cluster.url("postgres")).await?;
    admin.execute_unprepared("CREATE DATABASE bench").await?;
    admin.close().await?;
    let db = harness(&format!(
        "{}?application_name=write_bench",
        cluster.url("bench")
    ))
    .await?;
    let mut settings = Vec::new();
    for name in ["fsync", "synchronous_commit", "shared_buffers"] {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT current_setting('{name}') AS s"),
            ))
            .await?
            .context("no row")?;
        settings.push(format!("{name}={}", row.try_get::<String>("", "s")?));
    }
    let settings = format!(
        "{}, port {}; {}",
        cluster.version,
        cluster.port,
        settings.join(", ")
    );
    say(format!("PostgreSQL: {settings}"));

    let gateway = Gateway::start(SECRET, &[("DATABASE_URL", cluster.url("bench"))]).await?;
    let api = Api {
        http: reqwest::Client::new(),
        url: format!("{}/graphql", gateway.base),
        token: Some(gateway.token.clone()),
    };
    let target = Target { api, db: &db };
    let max_clients = *args.clients.iter().max().unwrap();
    say(format!(
        "PostgreSQL gateway: warm-up ({} of each mutation)",
        args.warmup
    ));
    warm_up(&target, args.warmup, max_clients).await?;

    say(format!(
        "PostgreSQL gateway: capturing {} of each mutation with log_statement = all",
        args.capture
    ));
    let mut captures = Vec::new();
    let mut templates = Vec::new();
    for kind in Kind::ALL {
        let capture = capture(&cluster, &target, kind, args.capture).await?;
        println!(
            "  {}: {} of {} transactions found, {} statements each, {:.1} other gateway \
             statements per mutation",
            kind.name(),
            capture.mutations.len(),
            args.capture,
            capture.template().map_or(0, |t| t.stmts.len()),
            capture.other_statements() as f64 / args.capture as f64
        );
        if let Some(template) = build_template(&db, &capture).await? {
            templates.push(template);
        }
        captures.push(capture);
    }

    let mut rows = Vec::new();
    say("PostgreSQL gateway: timed cases");
    rows.extend(gateway_cases(&target, args).await?);

    say(format!(
        "PostgreSQL gateway: idle for {} s with log_statement = all",
        args.idle_secs
    ));
    let idle = measure_idle(&cluster, &db, args.idle_secs).await?;
    println!(
        "  {} statements in {:.0} s: {:.2}/s",
        idle.statements,
        idle.secs,
        idle.statements as f64 / idle.secs
    );
    gateway.terminate().await?;

    say("PostgreSQL floor: the captured transactions replayed with pgbench, gateway stopped");
    let scripts = cluster.scratch("pgbench")?;
    for template in &templates {
        prepare_pgbench_targets(&db, template, max_clients).await?;
        let script = pgbench_script(template);
        let path = scripts.join(format!("{}.sql", template.kind.name()));
        std::fs::write(&path, &script)?;
        if let Some(keep) = &args.keep_scripts {
            std::fs::create_dir_all(keep)?;
            std::fs::copy(&path, keep.join(path.file_name().unwrap()))?;
        }
        for row in rows.iter_mut().filter(|r| r.kind == template.kind) {
            let before = task_writes(&db, template.kind).await?;
            let mut floor = pgbench(&cluster, &path, row.clients, args.pgbench_secs)?;
            // Each backend reports its counts as it exits, just after pgbench does.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let written = task_writes(&db, template.kind).await? - before;
            if written < floor.latencies.len() as i64 {
                floor.failed += 1;
                floor.first_failures.push(format!(
                    "{} transactions but only {written} task rows written: the replay did not \
                     write what the gateway writes",
                    floor.latencies.len()
                ));
            }
            println!(
                "  pgbench {} × {}: {}",
                template.kind.name(),
                clients_label(row.clients, "client"),
                floor.line()
            );
            floor.shout(&format!(
                "pgbench {} × {}",
                template.kind.name(),
                row.clients
            ));
            row.floor = Some(floor);
        }
    }

    let mut postgraphile_problem = None;
    if args.no_postgraphile {
        postgraphile_problem = Some("left out (--no-postgraphile)".to_owned());
    } else {
        say("PostGraphile 4.14: its generated createTask (insert-only) on the same database");
        match postgraphile(args, &cluster).await {
            Ok(peers) => {
                for (clients, peer) in peers {
                    if let Some(row) = rows
                        .iter_mut()
                        .find(|r| r.kind == Kind::Create && r.clients == clients)
                    {
                        row.peer = Some(peer);
                    }
                }
            }
            Err(e) => {
                println!("!!! PostGraphile could not run: {e:#}");
                postgraphile_problem = Some(format!("could not run: {e:#}"));
            }
        }
    }

    Ok(PgPhase {
        _cluster: cluster,
        db,
        settings,
        rows,
        captures,
        templates,
        idle: Some(idle),
        postgraphile_problem,
    })
}

/// A pool of one connection (so `PREPARE` and its lookup share a session).
async fn harness(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    Ok(sea_orm::Database::connect(opts).await?)
}

// ------------------------------------------------------------------ capture

/// One statement as the server logged it: the text with `$n` placeholders and the
/// parameters (`None` for NULL), as text.
#[derive(Clone, Debug)]
struct Stmt {
    sql: String,
    params: Vec<Option<String>>,
}

/// The statements of one transaction (one virtual transaction id of one backend).
#[derive(Clone, Debug)]
struct Txn {
    stmts: Vec<Stmt>,
}

impl Txn {
    fn is_block(&self) -> bool {
        self.stmts
            .first()
            .is_some_and(|s| s.sql.trim().to_ascii_uppercase().starts_with("BEGIN"))
    }

    fn mentions(&self, id: &str) -> bool {
        self.stmts
            .iter()
            .any(|s| s.sql.contains(id) || s.params.iter().flatten().any(|p| p.contains(id)))
    }
}

struct Capture {
    kind: Kind,
    /// The mutations' own transactions, in the order they were sent.
    mutations: Vec<Txn>,
    /// The task each captured mutation was about.
    ids: Vec<String>,
    /// Every other transaction or autocommit statement of the gateway in the window.
    others: Vec<Txn>,
    /// Error records of the gateway's sessions in the window.
    errors: Vec<String>,
    /// UUIDs in the database (any `uuid` column) before the captured mutations.
    existing: HashSet<String>,
    /// How long statement logging was on.
    window: Duration,
}

impl Capture {
    /// The transaction the floor replays: the last one captured.
    fn template(&self) -> Option<&Txn> {
        self.mutations.last()
    }

    fn other_statements(&self) -> usize {
        self.others.iter().map(|t| t.stmts.len()).sum()
    }
}

/// Sends `count` mutations of `kind` one at a time with statement logging on and picks the
/// gateway's transactions out of the log.
async fn capture(
    cluster: &Cluster,
    target: &Target<'_>,
    kind: Kind,
    count: usize,
) -> anyhow::Result<Capture> {
    let work = match kind {
        Kind::Create => Work::Create { recurring: false },
        // A task of its own for each captured mutation: a mutation's transaction is the first
        // to mention its task, and a consumer's transaction for an earlier change of the same
        // task would come first.
        Kind::Update => Work::UpdateEach(create_tasks(&target.api, count, false).await?),
        Kind::Complete => Work::Complete(create_tasks(&target.api, count, true).await?),
    };
    settle(target.db).await?;
    let existing = existing_uuids(target.db).await?;
    Cluster::set_statement_logging(target.db, "all").await?;
    let from = cluster.log_offset();
    let opened = Instant::now();
    let due = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let mut ids = Vec::new();
    for n in 0..count {
        let data = target
            .api
            .call(&work.body(0, n, &due))
            .await
            .map_err(|e| anyhow::anyhow!("captured {} failed: {e}", kind.name()))?;
        ids.push(work.id_of(&data).context("no id in the response")?);
    }
    settle(target.db).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let window = opened.elapsed();
    Cluster::set_statement_logging(target.db, "none").await?;
    let records = cluster.read_log_settled(from).await?;
    let (txns, errors) = transactions(&records, GATEWAY_APP);
    let mut taken = HashSet::new();
    let mut mutations = Vec::new();
    for id in &ids {
        if let Some(i) = (0..txns.len())
            .find(|i| !taken.contains(i) && txns[*i].is_block() && txns[*i].mentions(id))
        {
            taken.insert(i);
            mutations.push(txns[i].clone());
        }
    }
    let others = (0..txns.len())
        .filter(|i| !taken.contains(i))
        .map(|i| txns[i].clone())
        .collect();
    Ok(Capture {
        kind,
        mutations,
        ids,
        others,
        errors,
        existing,
        window,
    })
}

/// Every value of every `uuid` column of the public schema.
async fn existing_uuids(db: &DatabaseConnection) -> anyhow::Result<HashSet<String>> {
    let columns = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'uuid'",
        ))
        .await?;
    let mut out = HashSet::new();
    for column in columns {
        let (t, c): (String, String) = (column.try_get("", "t")?, column.try_get("", "c")?);
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT DISTINCT \"{c}\"::text AS u FROM \"{t}\" WHERE \"{c}\" IS NOT NULL"
                ),
            ))
            .await?;
        for row in rows {
            out.insert(row.try_get::<String>("", "u")?);
        }
    }
    Ok(out)
}

/// The statements of `application`'s sessions grouped into transactions, in the order each
/// began, and the error messages among them.
fn transactions(records: &[postgres::LogRecord], application: &str) -> (Vec<Txn>, Vec<String>) {
    let mut order: Vec<(i64, String)> = Vec::new();
    let mut by_key: HashMap<(i64, String), Txn> = HashMap::new();
    let mut errors = Vec::new();
    for (i, record) in records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.application.starts_with(application))
    {
        if matches!(record.severity.as_str(), "ERROR" | "FATAL" | "PANIC") {
            errors.push(record.message.clone());
            continue;
        }
        let Some(stmt) = statement_of(record) else {
            continue;
        };
        let vxid = if record.vxid.is_empty() {
            format!("line {i}")
        } else {
            record.vxid.clone()
        };
        let key = (record.pid, vxid);
        by_key
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Txn { stmts: Vec::new() }
            })
            .stmts
            .push(stmt);
    }
    let txns = order
        .into_iter()
        .map(|k| by_key.remove(&k).unwrap())
        .collect();
    (txns, errors)
}

fn statement_of(record: &postgres::LogRecord) -> Option<Stmt> {
    let sql = if let Some(sql) = record.message.strip_prefix("statement: ") {
        sql
    } else {
        record.message.strip_prefix("execute ")?.split_once(": ")?.1
    };
    let params = record
        .detail
        .as_deref()
        .and_then(|d| d.strip_prefix("parameters: "))
        .map(parse_params)
        .unwrap_or_default();
    Some(Stmt {
        sql: sql.to_owned(),
        params,
    })
}

/// `$1 = 'a', $2 = NULL, $3 = 'it''s'` → `[Some("a"), None, Some("it's")]`.
fn parse_params(detail: &str) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = Vec::new();
    let mut rest = detail;
    while let Some(after) = rest.strip_prefix('$') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(n) = after[..digits].parse::<usize>() else {
            break;
        };
        let Some(after) = after[digits..].strip_prefix(" = ") else {
            break;
        };
        let (value, after) = if let Some(after) = after.strip_prefix("NULL") {
            (None, after)
        } else if let Some(body) = after.strip_prefix('\'') {
            let mut value = String::new();
            let mut end = None;
            let mut chars = body.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, c)| *c == '\'') {
                        value.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    value.push(c);
                }
            }
            let Some(end) = end else { break };
            (Some(value), &body[end..])
        } else {
            break;
        };
        if out.len() < n {
            out.resize(n, None);
        }
        out[n - 1] = value;
        rest = after.strip_prefix(", ").unwrap_or(after);
    }
    out
}

// ------------------------------------------------------------------ replay templates

/// A captured transaction made replayable: its statements between `BEGIN` and `COMMIT`, with
/// each parameter's type, and which UUIDs to renew.
struct Template {
    kind: Kind,
    stmts: Vec<TemplateStmt>,
    /// UUIDs that did not exist before the mutation: a new value per replayed transaction.
    fresh: Vec<String>,
    /// The task an update or completion changes: one copy per replaying client.
    target: Option<String>,
}

struct TemplateStmt {
    sql: String,
    /// Value (text, `None` for NULL) and PostgreSQL type of each parameter.
    params: Vec<(Option<String>, String)>,
    returns_rows: bool,
    /// An `UPDATE … RETURNING` or a `SELECT … FOR UPDATE`: the replay checks it found its row.
    must_return_rows: bool,
}

async fn build_template(
    db: &DatabaseConnection,
    capture: &Capture,
) -> anyhow::Result<Option<Template>> {
    let Some(txn) = capture.template() else {
        return Ok(None);
    };
    let mut stmts = txn.stmts.clone();
    let first = stmts.first().map(|s| s.sql.trim().to_ascii_uppercase());
    let last = stmts.last().map(|s| s.sql.trim().to_ascii_uppercase());
    anyhow::ensure!(
        first.as_deref() == Some("BEGIN") && last.as_deref() == Some("COMMIT"),
        "the captured {} transaction is not BEGIN … COMMIT",
        capture.kind.name()
    );
    stmts.remove(0);
    stmts.pop();
    let target = match capture.kind {
        Kind::Create => None,
        _ => capture.ids.last().cloned(),
    };
    let mut fresh = Vec::new();
    let mut out = Vec::new();
    for (i, stmt) in stmts.iter().enumerate() {
        let types = parameter_types(db, &stmt.sql, i).await?;
        anyhow::ensure!(
            types.len() >= stmt.params.len(),
            "{} parameters logged but {} typed for {}",
            stmt.params.len(),
            types.len(),
            stmt.sql
        );
        let mut params: Vec<(Option<String>, String)> = types
            .into_iter()
            .enumerate()
            .map(|(i, ty)| (stmt.params.get(i).cloned().flatten(), ty))
            .collect();
        // The task's history row: replayed as captured, an update or completion would record
        // the same (task, version) every time and hit the primary key. A fresh task id per
        // transaction keeps the insert (the same work: one row, one index entry) unique.
        if stmt
            .sql
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("INSERT INTO \"TASK_VERSIONS\"")
            && let Some(task_id) = params.first_mut()
        {
            task_id.0 = Some(Uuid::new_v4().to_string());
        }
        for text in std::iter::once(&stmt.sql).chain(params.iter().filter_map(|p| p.0.as_ref())) {
            for u in uuids_in(text) {
                if Some(&u) != target.as_ref()
                    && !capture.existing.contains(&u)
                    && !fresh.contains(&u)
                {
                    fresh.push(u);
                }
            }
        }
        let upper = stmt.sql.trim().to_ascii_uppercase();
        out.push(TemplateStmt {
            returns_rows: upper.starts_with("SELECT") || upper.contains(" RETURNING "),
            must_return_rows: (upper.starts_with("UPDATE") && upper.contains(" RETURNING "))
                || (upper.starts_with("SELECT") && upper.ends_with(" FOR UPDATE")),
            sql: stmt.sql.clone(),
            params,
        });
    }
    Ok(Some(Template {
        kind: capture.kind,
        stmts: out,
        fresh,
        target,
    }))
}

/// The types PostgreSQL infers for a statement's parameters.
async fn parameter_types(
    db: &DatabaseConnection,
    sql: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    if !sql.contains('$') {
        return Ok(Vec::new());
    }
    let name = format!("write_bench_probe_{n}");
    db.execute_unprepared(&format!("PREPARE {name} AS {sql}"))
        .await
        .with_context(|| format!("PREPARE of a captured statement failed: {sql}"))?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT array_to_string(parameter_types::text[], '|') AS s FROM \
                 pg_prepared_statements WHERE name = '{name}'"
            ),
        ))
        .await?
        .context("the prepared statement is missing")?;
    db.execute_unprepared(&format!("DEALLOCATE {name}")).await?;
    let types: String = row.try_get("", "s")?;
    Ok(if types.is_empty() {
        Vec::new()
    } else {
        types.split('|').map(str::to_owned).collect()
    })
}

/// The UUIDs (lower case, hyphenated) in `text`.
fn uuids_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 36 <= b.len() {
        let candidate = &b[i..i + 36];
        let shaped = candidate.iter().enumerate().all(|(j, c)| {
            if [8, 13, 18, 23].contains(&j) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
        let bounded = (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && (i + 36 == b.len() || !b[i + 36].is_ascii_alphanumeric());
        if shaped && bounded {
            out.push(String::from_utf8_lossy(candidate).to_ascii_lowercase());
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

/// `sql` with each `$n` outside quotes replaced by `f(n)`.
fn substitute(sql: &str, f: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&f(digits.parse().unwrap()));
            }
            None => out.push(c),
        }
    }
    out
}

// ------------------------------------------------------------------ pgbench

/// The per-client copy of the target task: `00000000-0000-4000-80KK-CCCCCCCCCCCC`.
fn target_prefix(kind: Kind) -> String {
    format!("00000000-0000-4000-80{:02}-", kind.number())
}

/// A SQL string literal pgbench leaves alone: an `E''` string with every colon escaped (a
/// colon followed by a letter would be taken for a pgbench variable).
fn pgbench_literal(value: &str) -> String {
    let mut out = String::from("E'");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            ':' => out.push_str("\\x3a"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The pgbench script of a template: random numbers for the fresh UUIDs, then the
/// transaction with every parameter a literal cast to its type.
fn pgbench_script(template: &Template) -> String {
    let fresh_expr = |i: usize| {
        format!(
            "CAST(lpad(to_hex((extract(epoch from now()) * 1000)::bigint), 12, '0') || \
             lpad(to_hex((:client_id)::int), 4, '0') || lpad(to_hex((:u{i})::bigint), 16, '0') \
             AS uuid)"
        )
    };
    let target_expr = format!(
        "CAST('{}' || lpad((:client_id)::text, 12, '0') AS uuid)",
        target_prefix(template.kind)
    );
    let replacement = |u: &str| -> Option<String> {
        if template.target.as_deref() == Some(u) {
            return Some(target_expr.clone());
        }
        template
            .fresh
            .iter()
            .position(|f| f == u)
            .map(|i| fresh_expr(i + 1))
    };
    let mut script = format!(
        "-- {} as the gateway ran it (captured from the PostgreSQL log by write_bench)\n",
        template.kind.name()
    );
    for i in 1..=template.fresh.len() {
        script.push_str(&format!("\\set u{i} random(0, 4611686018427387903)\n"));
    }
    script.push_str("BEGIN;\n");
    for stmt in &template.stmts {
        let sql = substitute(&stmt.sql, |n| {
            let Some((value, ty)) = stmt.params.get(n - 1) else {
                return format!("${n}");
            };
            let Some(value) = value else {
                return format!("CAST(NULL AS {ty})");
            };
            if let Some(expr) = replacement(value) {
                return format!("CAST({expr} AS {ty})");
            }
            let mut literal = pgbench_literal(value);
            let mut seen = HashSet::new();
            for u in uuids_in(value) {
                if let Some(expr) = replacement(&u)
                    && seen.insert(u.clone())
                {
                    literal = format!("replace({literal}, '{u}', CAST({expr} AS text))");
                }
            }
            format!("CAST({literal} AS {ty})")
        });
        script.push_str(&sql);
        script.push_str(";\n");
    }
    script.push_str("COMMIT;\n");
    script
}

/// Copies of the target task (and its tag links), one per pgbench client.
async fn prepare_pgbench_targets(
    db: &DatabaseConnection,
    template: &Template,
    clients: usize,
) -> anyhow::Result<()> {
    let Some(target) = &template.target else {
        return Ok(());
    };
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = \
             'public' AND table_name = 'tasks' AND is_generated = 'NEVER' AND column_name <> 'id' \
             ORDER BY ordinal_position",
        ))
        .await?;
    let columns: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "c").map(|c| format!("\"{c}\"")))
        .collect::<Result<_, _>>()?;
    let columns = columns.join(", ");
    let id = format!(
        "CAST('{}' || lpad(c::text, 12, '0') AS uuid)",
        target_prefix(template.kind)
    );
    let last = clients.max(1) - 1;
    db.execute_unprepared(&format!(
        "INSERT INTO tasks (id, {columns}) SELECT {id}, {columns} FROM tasks \
         CROSS JOIN generate_series(0, {last}) AS c WHERE tasks.id = '{target}'"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO task_tags (task_id, tag_id) SELECT {id}, tag_id FROM task_tags \
         CROSS JOIN generate_series(0, {last}) AS c WHERE task_id = '{target}'"
    ))
    .await?;
    Ok(())
}

/// Rows inserted into (createTask) or updated in (the others) `tasks` so far, by the
/// statistics collector.
async fn task_writes(db: &DatabaseConnection, kind: Kind) -> anyhow::Result<i64> {
    let column = if kind == Kind::Create {
        "n_tup_ins"
    } else {
        "n_tup_upd"
    };
    scalar(
        db,
        &format!("SELECT {column}::bigint AS n FROM pg_stat_user_tables WHERE relname = 'tasks'"),
    )
    .await
}

/// Runs a pgbench script for `secs` at `clients`; tps from its summary, latencies from its
/// per-transaction log.
fn pgbench(
    cluster: &Cluster,
    script: &Path,
    clients: usize,
    secs: u64,
) -> anyhow::Result<Measured> {
    let dir = cluster.scratch(&format!("pgbench-log-{}", Uuid::new_v4().simple()))?;
    let threads = clients.clamp(1, 2);
    let output = Command::new(cluster.tool("pgbench"))
        .current_dir(&dir)
        .args(["-n", "-M", "prepared", "--log", "--log-prefix=tx"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={threads}"))
        .arg(format!("--time={secs}"))
        .arg(format!("--file={}", script.display()))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            "bench",
        ])
        .env("PGAPPNAME", "pgbench")
        .output()
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            // client_id transaction_no time_us script_no time_epoch time_us
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<f64>().ok())
            {
                latencies.push(us / 1000.0);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort_by(f64::total_cmp);
    let problems: Vec<String> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("aborted") || l.contains("fatal")
        })
        .filter(|l| !l.contains("number of failed transactions: 0"))
        .map(str::to_owned)
        .collect();
    let failed = if !output.status.success() || tps.is_none() {
        problems.len().max(1)
    } else {
        problems.len()
    };
    let mut first_failures: Vec<String> = problems.into_iter().take(3).collect();
    if first_failures.is_empty() && failed > 0 {
        first_failures.push(truncate(&format!("{stdout}{stderr}"), 400));
    }
    Ok(Measured {
        per_second: tps.unwrap_or(0.0),
        requests: latencies.len(),
        latencies,
        failed,
        first_failures,
    })
}

// ------------------------------------------------------------------ PostGraphile

async fn postgraphile(args: &Args, cluster: &Cluster) -> anyhow::Result<Vec<(usize, Measured)>> {
    let dir = match &args.postgraphile_dir {
        Some(d) => d.clone(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned()))
            .join(".cache/taskstream/postgraphile"),
    };
    let log = cluster.scratch("postgraphile")?.join("postgraphile.log");
    let url = format!("{}?application_name=postgraphile", cluster.url("bench"));
    let peer = load::start_postgraphile(&dir, &["postgraphile@4.14"], &url, &log).await?;
    let (api, version, port) = (peer.api.clone(), &peer.version, peer.port);
    say(format!("PostGraphile {version} on port {port}"));
    let work = Arc::new(Work::PostGraphileCreate);
    let max_clients = *args.clients.iter().max().unwrap();
    let (warm, _) = load(&api, work.clone(), max_clients, args.warmup.max(1)).await;
    warm.shout("PostGraphile warm-up");
    anyhow::ensure!(
        warm.failed < warm.requests,
        "every PostGraphile warm-up request failed: {:?}",
        warm.first_failures
    );
    let mut out = Vec::new();
    for &clients in &args.clients {
        let (measured, _) = load(&api, work.clone(), clients, args.requests).await;
        println!(
            "  PostGraphile createTask × {}: {}",
            clients_label(clients, "client"),
            measured.line()
        );
        measured.shout(&format!("PostGraphile createTask × {clients}"));
        out.push((clients, measured));
    }
    drop(peer);
    Ok(out)
}

// ------------------------------------------------------------------ idle

struct Idle {
    secs: f64,
    statements: usize,
    /// Statement text and how many times it ran, most frequent first.
    by_sql: Vec<(String, usize)>,
}

impl Idle {
    /// How often the gateway issued `sql` per second while idle (0 if never).
    fn rate_of(&self, sql: &str) -> f64 {
        self.by_sql
            .iter()
            .find(|(s, _)| s == sql)
            .map_or(0.0, |(_, n)| *n as f64 / self.secs)
    }
}

async fn measure_idle(
    cluster: &Cluster,
    db: &DatabaseConnection,
    secs: u64,
) -> anyhow::Result<Idle> {
    Cluster::set_statement_logging(db, "all").await?;
    let from = cluster.log_offset();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = started.elapsed().as_secs_f64();
    Cluster::set_statement_logging(db, "none").await?;
    let records = cluster.read_log_settled(from).await?;
    let mut by_sql: BTreeMap<String, usize> = BTreeMap::new();
    let mut statements = 0;
    // The window ends where this program turned logging off again.
    let window = records.iter().take_while(|r| {
        !(r.application == "write_bench" && r.message.contains("SET log_statement = 'none'"))
    });
    for record in window.filter(|r| r.application.starts_with(GATEWAY_APP)) {
        if let Some(stmt) = statement_of(record) {
            statements += 1;
            *by_sql.entry(stmt.sql).or_default() += 1;
        }
    }
    let mut by_sql: Vec<(String, usize)> = by_sql.into_iter().collect();
    by_sql.sort_by_key(|b| std::cmp::Reverse(b.1));
    Ok(Idle {
        secs: elapsed,
        statements,
        by_sql,
    })
}

// ------------------------------------------------------------------ SQLite phase

struct SqlitePhase {
    rows: Vec<Row>,
    /// WAL size in bytes at the end of the gateway's load, and the tasks in the database then.
    wal_bytes: u64,
    tasks: i64,
    /// The long create run's size and the WAL size right after it, if there was one.
    long_run: Option<(usize, u64)>,
}

async fn sqlite_phase(args: &Args, pg: &PgPhase) -> anyhow::Result<SqlitePhase> {
    say("SQLite gateway: a fresh database file");
    let gateway = Gateway::start(SECRET, &[]).await?;
    let file = gateway
        .sqlite_file()
        .context("no SQLite file")?
        .to_path_buf();
    let db = harness(&format!("sqlite://{}", file.display())).await?;
    let target = Target {
        api: Api {
            http: reqwest::Client::new(),
            url: format!("{}/graphql", gateway.base),
            token: Some(gateway.token.clone()),
        },
        db: &db,
    };
    let max_clients = *args.clients.iter().max().unwrap();
    say(format!(
        "SQLite gateway: warm-up ({} of each mutation)",
        args.warmup
    ));
    warm_up(&target, args.warmup, max_clients).await?;
    let mut rows = Vec::new();
    let mut long_run = None;
    if args.sqlite_creates > 0 {
        say(format!(
            "SQLite gateway: long run of {} createTask at {max_clients} clients",
            args.sqlite_creates
        ));
        let gateway = gateway_case(&target, Kind::Create, max_clients, args.sqlite_creates).await?;
        let wal = wal_size(&file);
        println!("  WAL after it: {}", mib(wal));
        long_run = Some((args.sqlite_creates, wal));
        rows.push(Row {
            kind: Kind::Create,
            clients: max_clients,
            note: Some(format!("long run, {}", args.sqlite_creates)),
            gateway,
            floor: None,
            pooled_floor: None,
            peer: None,
        });
    }
    say("SQLite gateway: timed cases");
    rows.extend(gateway_cases(&target, args).await?);
    let wal_bytes = wal_size(&file);
    let tasks = scalar(&db, "SELECT COUNT(*) AS n FROM tasks").await?;
    println!(
        "  WAL at the end: {} ({tasks} tasks in the database)",
        mib(wal_bytes)
    );
    db.close().await?;
    gateway.terminate().await?;

    say("SQLite floor: the PostgreSQL capture translated, replayed from a Rust loop");
    let floor = SqliteFloor::create(&pg.db, &pg.templates, max_clients).await?;
    for template in &pg.templates {
        for row in rows
            .iter_mut()
            .filter(|r| r.kind == template.kind && r.note.is_none())
        {
            for pooled in [false, true] {
                let measured = floor
                    .run(template, row.clients, args.requests, pooled)
                    .await;
                let what = format!(
                    "floor {} × {}, {}",
                    template.kind.name(),
                    clients_label(row.clients, "task"),
                    if pooled {
                        "the gateway's pool"
                    } else {
                        "1 connection"
                    }
                );
                println!("  {what}: {}", measured.line());
                measured.shout(&format!("SQLite {what}"));
                if pooled {
                    row.pooled_floor = Some(measured);
                } else {
                    row.floor = Some(measured);
                }
            }
        }
    }
    floor.close().await;
    Ok(SqlitePhase {
        rows,
        wal_bytes,
        tasks,
        long_run,
    })
}

fn wal_size(file: &Path) -> u64 {
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

/// The SQLite floor's database: fresh, migrated, opened as the gateway opens its own, with
/// the rows the captured transactions refer to copied from PostgreSQL.
struct SqliteFloor {
    dir: PathBuf,
    /// The gateway's pool (`MAX_CONNECTIONS`), and a pool of one connection.
    db: DatabaseConnection,
    single: DatabaseConnection,
    /// Per kind: the copies of the target task, one per replaying task.
    targets: HashMap<Kind, Vec<Uuid>>,
}

impl SqliteFloor {
    async fn create(
        pg: &DatabaseConnection,
        templates: &[Template],
        clients: usize,
    ) -> anyhow::Result<SqliteFloor> {
        let dir = std::env::temp_dir().join(format!("taskstream-floor-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("floor.db").display());
        let db = graphql::db::connect(&url).await?;
        graphql::db::migrate(&db).await?;
        let single = stream::db::connect_with(&url, 1).await?;
        // The user, the tags, then per kind the target task's copies and their tag links.
        for user in entities::user::Entity::find().all(pg).await? {
            entities::user::Entity::insert(user.into_active_model())
                .exec(&db)
                .await?;
        }
        for tag in entities::tag::Entity::find().all(pg).await? {
            entities::tag::Entity::insert(tag.into_active_model())
                .exec(&db)
                .await?;
        }
        let mut targets = HashMap::new();
        for template in templates {
            let Some(target) = &template.target else {
                continue;
            };
            let id = Uuid::parse_str(target)?;
            let task = entities::task::Entity::find_by_id(id)
                .one(pg)
                .await?
                .context("the captured target task is gone")?;
            let links = entities::task_tag::Entity::find()
                .all(pg)
                .await?
                .into_iter()
                .filter(|l| l.task_id == id)
                .collect::<Vec<_>>();
            let mut copies = Vec::new();
            for _ in 0..clients.max(1) {
                let copy = entities::task::Model {
                    id: Uuid::now_v7(),
                    ..task.clone()
                };
                entities::task::Entity::insert(copy.clone().into_active_model())
                    .exec(&db)
                    .await?;
                for link in &links {
                    entities::task_tag::Entity::insert(
                        entities::task_tag::Model {
                            task_id: copy.id,
                            ..link.clone()
                        }
                        .into_active_model(),
                    )
                    .exec(&db)
                    .await?;
                }
                copies.push(copy.id);
            }
            targets.insert(template.kind, copies);
        }
        Ok(SqliteFloor {
            dir,
            db,
            single,
            targets,
        })
    }

    /// `count` replays of `template` from `clients` concurrent loops, through the gateway's
    /// pool or through one connection (the loops then queue for it, and no transaction ever
    /// waits in SQLite's busy handler).
    async fn run(
        &self,
        template: &Template,
        clients: usize,
        count: usize,
        pooled: bool,
    ) -> Measured {
        let db = if pooled { &self.db } else { &self.single };
        let statements = Arc::new(sqlite_statements(template));
        let next = Arc::new(AtomicUsize::new(0));
        let targets = self
            .targets
            .get(&template.kind)
            .cloned()
            .unwrap_or_default();
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..clients.max(1) {
            let (db, statements, next) = (db.clone(), statements.clone(), next.clone());
            let fresh = template.fresh.clone();
            let target = template.target.clone().zip(targets.get(worker).copied());
            workers.spawn(async move {
                let mut done = Vec::new();
                loop {
                    if next.fetch_add(1, Ordering::Relaxed) >= count {
                        return done;
                    }
                    let mut renew: Vec<(String, Uuid)> =
                        fresh.iter().map(|u| (u.clone(), Uuid::now_v7())).collect();
                    if let Some((old, new)) = &target {
                        renew.push((old.clone(), *new));
                    }
                    let sent = Instant::now();
                    let result = replay_sqlite(&db, &statements, &renew).await;
                    done.push((sent.elapsed().as_secs_f64() * 1000.0, result));
                }
            });
        }
        let mut measured = Measured {
            requests: count,
            ..Measured::default()
        };
        while let Some(worker) = workers.join_next().await {
            for (ms, result) in worker.expect("a floor worker panicked") {
                measured.latencies.push(ms);
                if let Err(e) = result {
                    measured.failed += 1;
                    if measured.first_failures.len() < 3 {
                        measured.first_failures.push(format!("{e:#}"));
                    }
                }
            }
        }
        measured.per_second = count as f64 / started.elapsed().as_secs_f64();
        measured.latencies.sort_by(f64::total_cmp);
        measured
    }

    async fn close(self) {
        let _ = self.single.close().await;
        let _ = self.db.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A statement translated for SQLite, with its parameters as values (or text to renew).
struct SqliteStmt {
    sql: String,
    params: Vec<SqliteParam>,
    returns_rows: bool,
    must_return_rows: bool,
}

enum SqliteParam {
    Fixed(sea_orm::Value),
    /// Contains a UUID renewed per transaction: converted after the replacement.
    Renew(String, String),
}

fn sqlite_statements(template: &Template) -> Vec<SqliteStmt> {
    let renewed: Vec<&String> = template.fresh.iter().chain(&template.target).collect();
    template
        .stmts
        .iter()
        .map(|stmt| SqliteStmt {
            sql: sqlite_sql(&stmt.sql),
            returns_rows: stmt.returns_rows,
            must_return_rows: stmt.must_return_rows,
            params: stmt
                .params
                .iter()
                .map(|(value, ty)| match value {
                    Some(v) if renewed.iter().any(|u| v.contains(u.as_str())) => {
                        SqliteParam::Renew(v.clone(), ty.clone())
                    }
                    v => SqliteParam::Fixed(
                        sqlite_value(v.as_deref(), ty).unwrap_or_else(|e| panic!("{e:#}")),
                    ),
                })
                .collect(),
        })
        .collect()
}

/// PostgreSQL's text of a statement as SQLite takes it: the gateway takes no row locks there.
fn sqlite_sql(sql: &str) -> String {
    let mut sql = sql.trim_end().to_owned();
    for lock in [
        " FOR UPDATE",
        " FOR NO KEY UPDATE",
        " FOR SHARE",
        " FOR KEY SHARE",
    ] {
        if let Some(stripped) = sql.strip_suffix(lock) {
            sql = stripped.to_owned();
        }
    }
    sql
}

/// A parameter's text as the Rust value the gateway binds for that PostgreSQL type.
fn sqlite_value(text: Option<&str>, ty: &str) -> anyhow::Result<sea_orm::Value> {
    use sea_orm::Value;
    let value: Value = match ty {
        "uuid" => text.map(Uuid::parse_str).transpose()?.into(),
        "timestamp with time zone" => text.map(parse_timestamptz).transpose()?.into(),
        "timestamp without time zone" => text
            .map(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
            .transpose()?
            .into(),
        "boolean" => text.map(|t| t == "t" || t == "true").into(),
        "smallint" => text.map(str::parse::<i16>).transpose()?.into(),
        "integer" => text.map(str::parse::<i32>).transpose()?.into(),
        "bigint" => text.map(str::parse::<i64>).transpose()?.into(),
        "real" | "double precision" => text.map(str::parse::<f64>).transpose()?.into(),
        _ => text.map(str::to_owned).into(),
    };
    Ok(value)
}

fn parse_timestamptz(text: &str) -> anyhow::Result<DateTime<Utc>> {
    let parsed = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .with_context(|| format!("not a timestamp: {text}"))?;
    Ok(parsed.with_timezone(&Utc))
}

/// One transaction of the floor on SQLite: `BEGIN IMMEDIATE`, the statements, `COMMIT`.
async fn replay_sqlite(
    db: &DatabaseConnection,
    statements: &[SqliteStmt],
    renew: &[(String, Uuid)],
) -> anyhow::Result<()> {
    let txn = stream::outbox::begin_write(db).await?;
    for stmt in statements {
        let mut values = Vec::with_capacity(stmt.params.len());
        for param in &stmt.params {
            values.push(match param {
                SqliteParam::Fixed(v) => v.clone(),
                SqliteParam::Renew(text, ty) => {
                    let mut text = text.clone();
                    for (old, new) in renew {
                        text = text.replace(old.as_str(), &new.to_string());
                    }
                    sqlite_value(Some(&text), ty)?
                }
            });
        }
        let statement = Statement::from_sql_and_values(DbBackend::Sqlite, &stmt.sql, values);
        if stmt.returns_rows {
            let rows = txn
                .query_all_raw(statement)
                .await
                .with_context(|| truncate(&stmt.sql, 200))?;
            anyhow::ensure!(
                !(stmt.must_return_rows && rows.is_empty()),
                "no row found: {}",
                truncate(&stmt.sql, 200)
            );
        } else {
            txn.execute_raw(statement)
                .await
                .with_context(|| truncate(&stmt.sql, 200))?;
        }
    }
    txn.commit().await?;
    Ok(())
}

// ------------------------------------------------------------------ report

/// A statement for a one-line listing: long select, insert-column and `RETURNING` lists
/// become `…`, so what tells statements apart (tables, conditions) stays in view.
fn abbreviate(sql: &str) -> String {
    let mut out = sql.trim().to_owned();
    if let Some(rest) = out.strip_prefix("SELECT ")
        && let Some(i) = rest.find(" FROM ")
        && i > 40
    {
        out = format!("SELECT …{}", &rest[i..]);
    }
    if out.starts_with("INSERT INTO ")
        && let (Some(open), Some(close)) = (out.find(" ("), out.find(") VALUES "))
        && open < close
        && close - open > 40
    {
        out = format!("{} (…{}", &out[..open], &out[close..]);
    }
    if let Some(i) = out.find(" RETURNING ")
        && out.len() - i > 30
    {
        out.truncate(i);
        out.push_str(" RETURNING …");
    }
    truncate(&out, 150)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".to_owned()
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn print_table(title: &str, floor: &str, pooled_floor: &str, rows: &[Row]) {
    println!("\n{title}");
    println!(
        "{:<14} {:>7}  {:<20} {:>9} {:>9} {:>9} {:>7}",
        "case", "clients", "system", "req/s", "p50 ms", "p99 ms", "failed"
    );
    for row in rows {
        let case = match &row.note {
            Some(note) => format!("{} ({note})", row.kind.name()),
            None => row.kind.name().to_owned(),
        };
        let systems = [
            Some(("gateway", &row.gateway)),
            row.floor.as_ref().map(|m| (floor, m)),
            row.pooled_floor.as_ref().map(|m| (pooled_floor, m)),
            row.peer.as_ref().map(|m| ("PostGraphile (insert)", m)),
        ];
        for (i, (system, m)) in systems.into_iter().flatten().enumerate() {
            println!(
                "{:<14} {:>7}  {:<20} {:>9.0} {:>9.2} {:>9.2} {:>7}",
                if i == 0 { case.as_str() } else { "" },
                if i == 0 {
                    row.clients.to_string()
                } else {
                    String::new()
                },
                system,
                m.per_second,
                m.p(0.5),
                m.p(0.99),
                m.failed
            );
        }
        let mut ratios = Vec::new();
        if let Some(f) = &row.floor {
            ratios.push(format!(
                "gateway/floor p50 {}, p99 {}, req/s {}",
                ratio(row.gateway.p(0.5), f.p(0.5)),
                ratio(row.gateway.p(0.99), f.p(0.99)),
                ratio(row.gateway.per_second, f.per_second)
            ));
        }
        if let Some(p) = &row.peer {
            ratios.push(format!(
                "gateway/PostGraphile req/s {}, p99 {}",
                ratio(row.gateway.per_second, p.per_second),
                ratio(row.gateway.p(0.99), p.p(0.99))
            ));
        }
        if !ratios.is_empty() {
            println!("{:<24}{}", "", ratios.join("; "));
        }
    }
}

fn print_report(args: &Args, pg: &PgPhase, sqlite: &SqlitePhase) {
    println!("\n================================================================ results");
    print_table(
        &format!("PostgreSQL ({})", pg.settings),
        "floor (pgbench)",
        "",
        &pg.rows,
    );
    if let Some(problem) = &pg.postgraphile_problem {
        println!("PostGraphile: {problem}");
    }
    print_table(
        "SQLite (WAL, synchronous=NORMAL, as the gateway opens it)",
        "floor, 1 connection",
        &format!("floor, pool of {}", graphql::db::MAX_CONNECTIONS),
        &sqlite.rows,
    );
    println!(
        "SQLite WAL at the end of the gateway's load: {} with {} tasks in the database",
        mib(sqlite.wal_bytes),
        sqlite.tasks
    );

    println!("\ntargets (issue 17)");
    let find = |rows: &[Row], kind: Kind, clients: usize| {
        rows.iter()
            .find(|r| r.kind == kind && r.clients == clients && r.note.is_none())
            .map(|r| (r.gateway.clone(), r.floor.clone(), r.peer.clone()))
    };
    match find(&pg.rows, Kind::Create, 1) {
        Some((g, Some(f), _)) => println!(
            "  PostgreSQL 1 client, createTask p50 ≤ 2× floor: {:.2} ms vs 2 × {:.2} ms = {:.2} \
             ms ({:.2}x the floor): {}",
            g.p(0.5),
            f.p(0.5),
            2.0 * f.p(0.5),
            g.p(0.5) / f.p(0.5).max(1e-9),
            met(g.p(0.5) <= 2.0 * f.p(0.5))
        ),
        _ => println!("  PostgreSQL 1 client createTask: not measured (needs --clients with 1)"),
    }
    match find(&pg.rows, Kind::Create, 16) {
        Some((g, _, peer)) => {
            match peer {
                Some(p) => println!(
                    "  PostgreSQL 16 clients, createTask ≥ 1.5× PostGraphile: {:.0}/s vs 1.5 × \
                     {:.0}/s = {:.0}/s ({:.2}x): {}",
                    g.per_second,
                    p.per_second,
                    1.5 * p.per_second,
                    g.per_second / p.per_second.max(1e-9),
                    met(g.per_second >= 1.5 * p.per_second)
                ),
                None => {
                    println!("  PostgreSQL 16 clients vs PostGraphile: PostGraphile not measured")
                }
            }
            println!(
                "  PostgreSQL 16 clients, createTask p99 ≤ 50 ms: {:.2} ms: {}",
                g.p(0.99),
                met(g.p(0.99) <= 50.0)
            );
        }
        None => println!("  PostgreSQL 16 clients: not measured (needs --clients with 16)"),
    }
    match find(&sqlite.rows, Kind::Create, 16) {
        Some((g, _, _)) => println!(
            "  SQLite 16 clients, createTask ≥ 1,500/s and p99 ≤ 50 ms: {:.0}/s ({}), p99 {:.2} ms ({})",
            g.per_second,
            met(g.per_second >= 1500.0),
            g.p(0.99),
            met(g.p(0.99) <= 50.0)
        ),
        None => println!("  SQLite 16 clients: not measured (needs --clients with 16)"),
    }
    match find(&sqlite.rows, Kind::Create, 1) {
        Some((g, _, _)) => println!(
            "  SQLite 1 client, createTask p50 ≤ 3 ms: {:.2} ms: {}",
            g.p(0.5),
            met(g.p(0.5) <= 3.0)
        ),
        None => println!("  SQLite 1 client: not measured (needs --clients with 1)"),
    }
    match sqlite.long_run {
        Some((creates, wal)) => println!(
            "  SQLite WAL < 64 MB after 100,000 creates: {} right after {creates} creates \
             (after the warm-up), {} at the end: {}{}",
            mib(wal),
            mib(sqlite.wal_bytes),
            met(wal < 64 * 1_000_000),
            if creates < 100_000 {
                " (with fewer than 100,000 creates)"
            } else {
                ""
            }
        ),
        None => println!(
            "  SQLite WAL < 64 MB after 100,000 creates: {} with {} tasks in the database ({}; \
             run with --sqlite-creates 100000 to judge)",
            mib(sqlite.wal_bytes),
            sqlite.tasks,
            if sqlite.wal_bytes < 64 * 1_000_000 {
                "under so far"
            } else {
                "NOT met already"
            }
        ),
    }
    if let Some(idle) = &pg.idle {
        let rate = idle.statements as f64 / idle.secs;
        println!(
            "  PostgreSQL idle gateway ≤ 1 query/s: {rate:.2}/s ({} statements in {:.0} s, from \
             the statement log): {}",
            idle.statements,
            idle.secs,
            met(rate <= 1.0)
        );
        for (sql, n) in idle.by_sql.iter().take(8) {
            println!(
                "      {:>6.2}/s  {}",
                *n as f64 / idle.secs,
                abbreviate(sql)
            );
        }
    }

    println!(
        "\ncaptured statements (PostgreSQL, from the server log; the gateway's own transaction of each mutation)"
    );
    for capture in &pg.captures {
        print_capture(args, capture, pg.idle.as_ref());
    }
    let failures: usize = pg
        .rows
        .iter()
        .chain(&sqlite.rows)
        .flat_map(|r| {
            [
                Some(&r.gateway),
                r.floor.as_ref(),
                r.pooled_floor.as_ref(),
                r.peer.as_ref(),
            ]
        })
        .flatten()
        .map(|m| m.failed)
        .sum();
    let capture_errors: usize = pg.captures.iter().map(|c| c.errors.len()).sum();
    if failures > 0 || capture_errors > 0 {
        println!(
            "\n!!! THIS RUN HAD FAILURES: {failures} failed requests/transactions, {capture_errors} \
             errors in the captured log; the figures above are not clean (see the !!! lines)"
        );
    } else {
        println!("\nno failures: every request and transaction succeeded");
    }
}

fn print_capture(args: &Args, capture: &Capture, idle: Option<&Idle>) {
    println!();
    let Some(txn) = capture.template() else {
        println!(
            "{}: NO transaction found in the log for the {} captured mutations",
            capture.kind.name(),
            capture.ids.len()
        );
        return;
    };
    let counts: Vec<usize> = capture.mutations.iter().map(|t| t.stmts.len()).collect();
    let alike = counts.iter().all(|c| *c == counts[0]);
    println!(
        "{}: {} statements in its transaction, BEGIN and COMMIT included ({} of {} captured \
         transactions found, {})",
        capture.kind.name(),
        txn.stmts.len(),
        capture.mutations.len(),
        args.capture,
        if alike {
            "all alike".to_owned()
        } else {
            format!("NOT alike: {counts:?} statements")
        }
    );
    for (i, stmt) in txn.stmts.iter().enumerate() {
        println!("  {:>2}. {}", i + 1, stmt.sql);
    }
    let per = capture.ids.len().max(1) as f64;
    println!(
        "  other gateway statements while capturing: {:.1} per mutation, in {:.1} transactions \
         or autocommit statements per mutation ({} mutations sent one at a time over {:.1} s, \
         the consumers caught up before logging stopped; statements the idle gateway issues \
         too are marked with their idle rate):",
        capture.other_statements() as f64 / per,
        capture.others.len() as f64 / per,
        capture.ids.len(),
        capture.window.as_secs_f64()
    );
    let mut shapes: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for other in &capture.others {
        let key = other.stmts.iter().map(|s| s.sql.clone()).collect();
        *shapes.entry(key).or_default() += 1;
    }
    let mut shapes: Vec<(Vec<String>, usize)> = shapes.into_iter().collect();
    shapes.sort_by(|a, b| {
        (b.1 * b.0.len())
            .cmp(&(a.1 * a.0.len()))
            .then(a.0.cmp(&b.0))
    });
    for (stmts, times) in shapes {
        let idle_rate = match (stmts.len(), idle) {
            (1, Some(idle)) if idle.rate_of(&stmts[0]) > 0.0 => {
                format!("   [idle: {:.2}/s]", idle.rate_of(&stmts[0]))
            }
            _ => String::new(),
        };
        println!(
            "    {:>5.1} statements/mutation = {:.1} × {} statement{}{idle_rate}",
            (times * stmts.len()) as f64 / per,
            times as f64 / per,
            stmts.len(),
            if stmts.len() == 1 { "" } else { "s" }
        );
        for sql in &stmts {
            println!("          {}", abbreviate(sql));
        }
    }
    for error in &capture.errors {
        println!("  !!! error in the log: {error}");
    }
}
