//! The read path under load: task list pages through the real gateway, next to PostGraphile
//! (with `postgraphile-plugin-connection-filter`) on the same PostgreSQL tables and the floor
//! (the SQL the gateway issued for the same page, replayed without it), from one run.
//!
//! ```sh
//! cargo build --release -p graphql --bin taskstream --example list_bench
//! target/release/examples/list_bench [--tasks 100000] [--clients 16] [--secs 10] [--help]
//! ```
//!
//! Data: TASKS tasks over USERS users (`bench`, whose token the gateway is called with, and
//! `user-1`…), TAGS tags per user, about two tags per task (`home` on about half of them, one
//! other tag each), titles of four words from a skewed vocabulary (`weekly` and `report` each
//! in about 40% of the titles, so a two-word search has thousands of matches per user), 20%
//! completed, 70% with a due date, priorities spread over all five. Rows are written through
//! SQL into the migrated schema, with the search columns computed as the gateway computes them
//! (`entities::search`), so the databases' own search structures (PostgreSQL's generated
//! `tsvector` columns, SQLite's FTS triggers) are built as for real tasks.
//!
//! Cases (each CLIENTS concurrent loops for SECS seconds, every response checked for `errors`):
//! - `page`: the first 20 open tasks with priority ≥ MEDIUM sorted by due date, with their
//!   tag names and `pageInfo`;
//! - `search`: `search: "weekly report"` in relevance order, same selection;
//! - `tags`: `tags: { all: ["home", "errand"] }` and `not: { completed: true }`;
//! - `count`: `totalCount` of the open tasks with priority ≥ MEDIUM;
//! - `deep`: five pages of `page` in a row, each after the previous `endCursor` (per request).
//!
//! PostgreSQL (a throwaway cluster, as `write_bench` starts it):
//! 1. Gateway: the `taskstream` binary (beside this program, or `TASKSTREAM_BIN`) in embedded
//!    mode on the `bench` database; its RSS is sampled at idle and during the cases.
//! 2. PostGraphile 4.14 with postgraphile-plugin-connection-filter 2 (npm-installed once into
//!    `~/.cache/taskstream/postgraphile-list`, or `--postgraphile-dir`; `connectionFilterRelations`
//!    on, for the tag filter), its query log off, asked for the same pages of `bench`'s tasks
//!    (the owner as an explicit filter: PostGraphile has no login here). It has no full-text
//!    search, so `search` has no peer (the issue's rule: compare with the floor instead).
//! 3. Floor: with `log_statement = all`, one request of each case is sent and the statements
//!    the gateway issued for it are read back from the server's log (its connections are named
//!    `taskstream-<id>`) with the logged parameter values put in; pgbench (`-M prepared`, the
//!    same number of clients) replays each case's statements without the gateway.
//!
//! SQLite: the same gateway cases on a seeded database file; its floor is the same page read
//! in-process through the gateway's own service functions (`list_tasks`, then `tags_of_tasks`)
//! on a pool opened like the gateway's (`graphql::db::connect`), so it holds the statements and
//! the driver and nothing of HTTP or GraphQL.
//!
//! It prints a table per database with the ratios and the issue's targets beside them, and the
//! captured statements. Nothing is asserted: these machines are shared and noisy, and the load
//! generator shares them with the servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/gateway.rs"]
mod gateway;
#[path = "support/load.rs"]
mod load;
#[path = "support/postgres.rs"]
mod postgres;

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Parser;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use gateway::Gateway;
use load::{Api, Measured, truncate};
use postgres::Cluster;

const SECRET: &str = "a-list-benchmark-secret-long-enough-for-hs256";
/// The gateway's user (the token's subject); PostGraphile is asked for this owner's tasks.
const OWNER: &str = "bench";
const GATEWAY_APP: &str = "taskstream-";

const NODE: &str = "id title priority dueAt tags { name }";
const PG_NODE: &str = "id title priority dueAt taskTagsByTaskId { nodes { tagByTagId { name } } }";

#[derive(Parser, Debug)]
#[command(about = "Task list pages: the gateway vs PostGraphile vs the SQL floor, from one run")]
struct Args {
    /// Tasks to seed, over all users.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Users the tasks are spread over (`bench` is the measured one).
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Tags per user.
    #[arg(long, default_value_t = 20)]
    tags: usize,
    /// Concurrent client loops per case.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per case and target.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Cases to run, comma-separated: page,search,tags,count,deep.
    #[arg(
        long,
        default_value = "page,search,tags,count,deep",
        value_delimiter = ','
    )]
    cases: Vec<String>,
    /// Leave PostGraphile out.
    #[arg(long)]
    no_postgraphile: bool,
    /// Where PostGraphile and the filter plugin are (installed there with npm when missing);
    /// default $HOME/.cache/taskstream/postgraphile-list.
    #[arg(long)]
    postgraphile_dir: Option<PathBuf>,
    /// Leave SQLite out.
    #[arg(long)]
    no_sqlite: bool,
    /// Leave PostgreSQL out.
    #[arg(long)]
    no_postgres: bool,
    /// Also print PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) of every captured statement.
    #[arg(long)]
    explain: bool,
    /// Directory with initdb, pg_ctl and postgres (default: newest /usr/lib/postgresql/*/bin).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
}

fn say(line: impl AsRef<str>) {
    println!("==> {}", line.as_ref());
}

// ------------------------------------------------------------------ cases

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Page,
    Search,
    Tags,
    Count,
    Deep,
}

impl Case {
    fn parse(name: &str) -> anyhow::Result<Case> {
        Ok(match name.trim() {
            "page" => Case::Page,
            "search" => Case::Search,
            "tags" => Case::Tags,
            "count" => Case::Count,
            "deep" => Case::Deep,
            other => {
                anyhow::bail!("--cases: unknown case {other:?} (page, search, tags, count, deep)")
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Case::Page => "page",
            Case::Search => "search",
            Case::Tags => "tags",
            Case::Count => "count",
            Case::Deep => "deep (5 pages)",
        }
    }

    /// Pages a chain of requests walks (the later ones after the previous `endCursor`).
    fn chain(self) -> usize {
        if self == Case::Deep { 5 } else { 1 }
    }

    fn gateway_query(self) -> String {
        let args = match self {
            Case::Page | Case::Count | Case::Deep => {
                "filter: { completed: false, minPriority: MEDIUM }, sort: [{ field: DUE_AT }]"
            }
            Case::Search => "search: \"weekly report\"",
            Case::Tags => {
                "filter: { tags: { all: [\"home\", \"errand\"] }, not: { completed: true } }"
            }
        };
        if self == Case::Count {
            return format!("query Count {{ tasks({args}) {{ totalCount }} }}");
        }
        format!(
            "query List($after: String) {{ tasks({args}, first: 20, after: $after) {{ \
             edges {{ cursor node {{ {NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        )
    }

    /// PostGraphile's nearest equivalent, `None` where it has none (search).
    fn postgraphile_query(self) -> Option<String> {
        let owner = format!("ownerId: {{ equalTo: \"{OWNER}\" }}");
        let (filter, order) = match self {
            Case::Page | Case::Count | Case::Deep => (
                format!(
                    "{owner}, completed: {{ equalTo: false }}, \
                     priority: {{ greaterThanOrEqualTo: 2 }}"
                ),
                "[DUE_AT_ASC, ID_ASC]",
            ),
            Case::Search => return None,
            Case::Tags => {
                let has = |name: &str| {
                    format!(
                        "{{ taskTagsByTaskId: {{ some: {{ tagByTagId: \
                         {{ nameKey: {{ equalTo: \"{name}\" }} }} }} }} }}"
                    )
                };
                (
                    format!(
                        "{owner}, and: [{}, {}], not: {{ completed: {{ equalTo: true }} }}",
                        has("home"),
                        has("errand")
                    ),
                    "[CREATED_AT_DESC, ID_DESC]",
                )
            }
        };
        Some(if self == Case::Count {
            format!("query Count {{ allTasks(filter: {{ {filter} }}) {{ totalCount }} }}")
        } else {
            format!(
                "query List($after: Cursor) {{ allTasks(filter: {{ {filter} }}, orderBy: {order}, \
                 first: 20, after: $after) {{ edges {{ cursor node {{ {PG_NODE} }} }} \
                 pageInfo {{ hasNextPage endCursor }} }} }}"
            )
        })
    }
}

// ------------------------------------------------------------------ measurements

/// The connection in a response (`tasks` or `allTasks`), with a check that a list page has
/// rows: an empty page would make a fast, meaningless benchmark.
fn connection(data: &Value) -> Result<&Value, String> {
    let conn = if data["tasks"].is_null() {
        &data["allTasks"]
    } else {
        &data["tasks"]
    };
    if conn.get("totalCount").is_some() {
        return if conn["totalCount"].as_i64().unwrap_or(0) > 0 {
            Ok(conn)
        } else {
            Err(format!("totalCount is 0: {conn}"))
        };
    }
    match conn["edges"].as_array() {
        Some(edges) if !edges.is_empty() => Ok(conn),
        _ => Err(format!(
            "an empty page: {}",
            truncate(&conn.to_string(), 200)
        )),
    }
}

/// One request's latency (ms) and whether it failed.
type Timed = (f64, Result<(), String>);

/// CLIENTS loops for SECS seconds, each running `round` (one or more requests) again and again.
async fn timed<F, Fut>(clients: usize, secs: u64, round: F) -> Measured
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Vec<Timed>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let round = round.clone();
        workers.spawn(async move {
            let mut done = Vec::new();
            while Instant::now() < deadline {
                done.extend(round().await);
            }
            done
        });
    }
    let mut measured = Measured::default();
    while let Some(worker) = workers.join_next().await {
        for (ms, result) in worker.expect("a load worker panicked") {
            measured.latencies.push(ms);
            if let Err(e) = result {
                measured.failed += 1;
                if measured.first_failures.len() < 3 {
                    measured.first_failures.push(e);
                }
            }
        }
    }
    measured.requests = measured.latencies.len();
    measured.per_second = measured.requests as f64 / started.elapsed().as_secs_f64();
    measured.latencies.sort_by(f64::total_cmp);
    measured
}

/// CLIENTS loops for SECS seconds, each walking `chain` pages per round (the first without a
/// cursor, a failed page ends the round).
async fn load(api: &Api, query: &str, clients: usize, secs: u64, chain: usize) -> Measured {
    let (api, query) = (api.clone(), Arc::new(query.to_owned()));
    timed(clients, secs, move || {
        let (api, query) = (api.clone(), query.clone());
        async move {
            let mut done = Vec::new();
            let mut after = Value::Null;
            for _ in 0..chain {
                let body = json!({ "query": *query, "variables": { "after": after } });
                let sent = Instant::now();
                let result = api
                    .call(&body)
                    .await
                    .and_then(|data| connection(&data).map(|c| c["pageInfo"]["endCursor"].clone()));
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                match result {
                    Ok(cursor) => {
                        after = cursor;
                        done.push((ms, Ok(())));
                    }
                    Err(e) => {
                        done.push((ms, Err(e)));
                        break;
                    }
                }
            }
            done
        }
    })
    .await
}

/// The resident set size of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples a process's RSS every 100 ms until dropped; the largest reading.
struct RssSampler {
    max_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let max_kib = Arc::new(AtomicU64::new(0));
        let max = max_kib.clone();
        let task = tokio::spawn(async move {
            loop {
                let kib = (rss_mib(pid) * 1024.0) as u64;
                max.fetch_max(kib, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { max_kib, task }
    }

    fn max_mib(&self) -> f64 {
        self.max_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ------------------------------------------------------------------ data

/// A small deterministic generator (xorshift64*), so every run seeds the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const WORDS: [&str; 40] = [
    "call",
    "email",
    "plan",
    "review",
    "draft",
    "fix",
    "order",
    "book",
    "clean",
    "pay",
    "send",
    "write",
    "read",
    "buy",
    "check",
    "update",
    "prepare",
    "schedule",
    "organise",
    "water",
    "garden",
    "invoice",
    "meeting",
    "budget",
    "kitchen",
    "car",
    "dentist",
    "groceries",
    "slides",
    "client",
    "team",
    "notes",
    "taxes",
    "flight",
    "hotel",
    "backup",
    "server",
    "release",
    "bug",
    "design",
];
const TAG_NAMES: [&str; 8] = [
    "home", "errand", "work", "health", "finance", "travel", "family", "urgent",
];

fn owner(user: usize) -> String {
    if user == 0 {
        OWNER.to_owned()
    } else {
        format!("user-{user}")
    }
}

fn tag_name(index: usize) -> String {
    TAG_NAMES
        .get(index)
        .map_or_else(|| format!("tag-{index}"), |n| (*n).to_owned())
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A timestamp as the drivers bind one (RFC 3339, microseconds, `+00:00`), so seeded rows
/// compare with the gateway's parameters exactly as its own rows do (SQLite compares text).
fn sql_time(t: DateTime<Utc>) -> String {
    let t = entities::to_db_precision(t);
    format!(
        "'{}'",
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    )
}

/// A UUID as each database stores it: PostgreSQL's `uuid` type, SQLite's 16-byte blob.
fn sql_uuid(id: Uuid, backend: sea_orm::DbBackend) -> String {
    match backend {
        sea_orm::DbBackend::Sqlite => format!("X'{}'", id.simple()),
        _ => format!("'{id}'"),
    }
}

/// Writes the data set into a migrated, empty database with multi-row inserts.
async fn seed(db: &DatabaseConnection, args: &Args) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let uuid = |id: Uuid| sql_uuid(id, backend);
    let started = Instant::now();
    let now = Utc::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let time = sql_time;
    let mut tag_ids: Vec<Vec<Uuid>> = Vec::new();
    for user in 0..args.users {
        db.execute_unprepared(&format!(
            "INSERT INTO users (id, timezone, created_at, updated_at) VALUES ({}, 'UTC', {}, {})",
            sql_text(&owner(user)),
            time(now),
            time(now)
        ))
        .await?;
        let ids: Vec<Uuid> = (0..args.tags).map(|_| Uuid::now_v7()).collect();
        let values: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let name = tag_name(i);
                format!(
                    "({}, {}, {}, {}, NULL, {})",
                    uuid(*id),
                    sql_text(&owner(user)),
                    sql_text(&name),
                    sql_text(&entities::tag::name_key(&name)),
                    time(now)
                )
            })
            .collect();
        db.execute_unprepared(&format!(
            "INSERT INTO tags (id, owner_id, name, name_key, color, created_at) VALUES {}",
            values.join(", ")
        ))
        .await?;
        tag_ids.push(ids);
    }
    let mut written = 0;
    while written < args.tasks {
        let n = (args.tasks - written).min(1000);
        let mut tasks = Vec::with_capacity(n);
        let mut links = Vec::with_capacity(2 * n);
        for i in written..written + n {
            let user = i % args.users;
            let mut words = Vec::new();
            if rng.chance(40) {
                words.push("weekly");
            }
            if rng.chance(40) {
                words.push("report");
            }
            while words.len() < 4 {
                words.push(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
            let title = words.join(" ");
            let description = format!("{} for the {}", WORDS[i % 40], WORDS[(i / 40) % 40]);
            let id = Uuid::now_v7();
            let created = now - chrono::Duration::minutes(rng.below(525_600) as i64);
            let completed = rng.chance(20);
            let due = rng
                .chance(70)
                .then(|| now + chrono::Duration::minutes(rng.below(172_800) as i64 - 86_400));
            tasks.push(format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, 1, {}, {}, {}, {}, {})",
                uuid(id),
                sql_text(&owner(user)),
                sql_text(&title),
                sql_text(&description),
                rng.below(5),
                if completed { "TRUE" } else { "FALSE" },
                if completed {
                    time(created)
                } else {
                    "NULL".to_owned()
                },
                due.map_or("NULL".to_owned(), time),
                time(created),
                time(created),
                sql_text(&entities::search::document(&title)),
                sql_text(&entities::search::document(&description)),
                sql_text(&entities::search::title_key(&title)),
            ));
            let user_tags = &tag_ids[user];
            if rng.chance(50) {
                links.push(format!("({}, {})", uuid(id), uuid(user_tags[0])));
            }
            let other = user_tags[1 + rng.below(user_tags.len() as u64 - 1) as usize];
            links.push(format!("({}, {})", uuid(id), uuid(other)));
        }
        db.execute_unprepared(&format!(
            "INSERT INTO tasks (id, owner_id, title, description, priority, completed, \
             completed_at, due_at, version, created_at, updated_at, search_title, search_body, \
             title_key) VALUES {}",
            tasks.join(", ")
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO task_tags (task_id, tag_id) VALUES {}",
            links.join(", ")
        ))
        .await?;
        written += n;
    }
    db.execute_unprepared("ANALYZE").await?;
    let count = entities::task::Entity::find().count(db).await?;
    say(format!(
        "seeded {count} tasks over {} users, {} tags each, in {:.1} s",
        args.users,
        args.tags,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

// ------------------------------------------------------------------ PostgreSQL floor

/// A statement the gateway issued, with its parameter values put in as literals.
fn with_parameters(statement: &str, detail: Option<&str>) -> String {
    let Some(detail) = detail.and_then(|d| d.strip_prefix("parameters: ")) else {
        return statement.to_owned();
    };
    // `$1 = 'a', $2 = NULL, …`: values are quoted with '' escapes, or NULL.
    let mut values = Vec::new();
    let mut rest = detail;
    while let Some(eq) = rest.find(" = ") {
        rest = &rest[eq + 3..];
        if let Some(tail) = rest.strip_prefix("NULL") {
            values.push("NULL".to_owned());
            rest = tail;
        } else {
            let bytes = rest.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            values.push(rest[..=i.min(rest.len() - 1)].to_owned());
            rest = &rest[(i + 1).min(rest.len())..];
        }
    }
    let mut sql = statement.to_owned();
    for (n, value) in values.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", n + 1), value);
    }
    sql
}

/// The statements the gateway issued for one request of `case` (its `chain` pages).
async fn capture(
    cluster: &Cluster,
    admin: &DatabaseConnection,
    api: &Api,
    case: Case,
) -> anyhow::Result<Vec<String>> {
    Cluster::set_statement_logging(admin, "all").await?;
    let from = cluster.log_offset();
    let query = case.gateway_query();
    let mut after = Value::Null;
    for _ in 0..case.chain() {
        let data = api
            .call(&json!({ "query": query, "variables": { "after": after } }))
            .await
            .map_err(|e| anyhow::anyhow!("capture request failed: {e}"))?;
        after = connection(&data).map_err(anyhow::Error::msg)?["pageInfo"]["endCursor"].clone();
    }
    Cluster::set_statement_logging(admin, "none").await?;
    let records = cluster.read_log_settled(from).await?;
    let statements: Vec<String> = records
        .iter()
        .filter(|r| r.application.starts_with(GATEWAY_APP))
        .filter_map(|r| {
            let text = r
                .message
                .strip_prefix("statement: ")
                .or_else(|| r.message.split_once(": ").map(|(_, s)| s))?;
            let head = text.trim_start().to_ascii_uppercase();
            (head.starts_with("SELECT") && !text.contains("consumer_"))
                .then(|| with_parameters(text, r.detail.as_deref()))
        })
        .collect();
    anyhow::ensure!(
        !statements.is_empty(),
        "no statements of the gateway captured for {}",
        case.name()
    );
    Ok(statements)
}

/// pgbench replaying `statements` as one transaction from `clients` clients; requests per
/// second count each of the case's `chain` pages.
fn pgbench(
    cluster: &Cluster,
    statements: &[String],
    clients: usize,
    secs: u64,
    chain: usize,
) -> anyhow::Result<Measured> {
    let dir = cluster.scratch(&format!("pgbench-{}", Uuid::new_v4().simple()))?;
    let script = dir.join("script.sql");
    let body: String = statements
        .iter()
        .map(|s| format!("{};\n", s.trim_end_matches(';')))
        .collect();
    std::fs::write(&script, body)?;
    let output = Command::new(cluster.tool("pgbench"))
        .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &cluster.port.to_string()])
        .args(["-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &secs.to_string(), "--log"])
        .arg(format!("--log-prefix={}", dir.join("log").display()))
        .arg("-f")
        .arg(&script)
        .arg("bench")
        .current_dir(&dir)
        .output()
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .context("no tps in pgbench's output")?;
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("log"))
        {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(us) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    latencies.push(us / 1000.0 / chain as f64);
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Measured {
        per_second: tps * chain as f64,
        requests: latencies.len(),
        latencies,
        failed,
        first_failures: Vec::new(),
    })
}

// ------------------------------------------------------------------ PostGraphile

async fn start_postgraphile(args: &Args, cluster: &Cluster) -> anyhow::Result<load::PostGraphile> {
    let dir = match &args.postgraphile_dir {
        Some(d) => d.clone(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned()))
            .join(".cache/taskstream/postgraphile-list"),
    };
    std::fs::create_dir_all(&dir)?;
    // The relations option (filters across task_tags) is only settable from the rc file.
    std::fs::write(
        dir.join(".postgraphilerc.js"),
        "module.exports = { options: { appendPlugins: \
         [require('postgraphile-plugin-connection-filter')], graphileBuildOptions: \
         { connectionFilterRelations: true } } };\n",
    )?;
    let log = cluster.scratch("postgraphile")?.join("postgraphile.log");
    let url = format!("{}?application_name=postgraphile", cluster.url("bench"));
    let peer = load::start_postgraphile(
        &dir,
        &[
            "postgraphile@4.14",
            "postgraphile-plugin-connection-filter@2",
        ],
        &url,
        &log,
    )
    .await?;
    say(format!(
        "PostGraphile {} with the connection filter plugin on port {}",
        peer.version, peer.port
    ));
    Ok(peer)
}

// ------------------------------------------------------------------ runs

struct CaseResult {
    case: Case,
    gateway: Measured,
    peer: Result<Measured, String>,
    floor: Result<Measured, String>,
}

struct DbResult {
    title: String,
    peer_name: &'static str,
    floor_name: &'static str,
    cases: Vec<CaseResult>,
    rss: Option<(f64, f64, f64)>,
    statements: Vec<(Case, Vec<String>)>,
    /// EXPLAIN ANALYZE of each captured statement (with `--explain`).
    plans: Vec<String>,
}

/// PostgreSQL's plan of each statement, run for real (`EXPLAIN (ANALYZE, BUFFERS)`).
async fn explain(db: &DatabaseConnection, statements: &[String]) -> anyhow::Result<Vec<String>> {
    let mut plans = Vec::new();
    for statement in statements {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("EXPLAIN (ANALYZE, BUFFERS) {statement}"),
            ))
            .await?;
        let mut plan = String::new();
        for row in rows {
            let line: String = row.try_get("", "QUERY PLAN")?;
            plan.push_str(&line);
            plan.push('\n');
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// The gateway on the seeded database (migrations off: the benchmark migrated it), and a
/// client with the token of `bench`.
async fn start_gateway(database_url: String) -> anyhow::Result<(Gateway, Api)> {
    let gateway = Gateway::start(
        SECRET,
        &[
            ("DATABASE_URL", database_url),
            ("TASKSTREAM_NO_MIGRATE", "true".to_owned()),
        ],
    )
    .await?;
    let api = Api {
        http: reqwest::Client::new(),
        url: format!("{}/graphql", gateway.base),
        token: Some(gateway.token.clone()),
    };
    Ok((gateway, api))
}

/// The gateway's figure for `case`: a warm-up that must not fail, then the measured run.
async fn gateway_case(api: &Api, case: Case, args: &Args, label: &str) -> anyhow::Result<Measured> {
    warm(api, case, args.clients).await?;
    let measured = load(
        api,
        &case.gateway_query(),
        args.clients,
        args.secs,
        case.chain(),
    )
    .await;
    measured.shout(&format!("{label} {}", case.name()));
    say(format!("{label} {}: {}", case.name(), measured.cells()));
    Ok(measured)
}

async fn warm(api: &Api, case: Case, clients: usize) -> anyhow::Result<()> {
    let warm = load(api, &case.gateway_query(), clients, 2, case.chain()).await;
    warm.shout(&format!("{} warm-up", case.name()));
    anyhow::ensure!(
        warm.failed == 0,
        "{} failed in the warm-up: {:?}",
        case.name(),
        warm.first_failures
    );
    Ok(())
}

async fn run_postgres(args: &Args, cases: &[Case]) -> anyhow::Result<DbResult> {
    let cluster = Cluster::start(args.pg_bin.as_deref(), &[])?;
    let admin = sea_orm::Database::connect(cluster.url("postgres")).await?;
    admin.execute_unprepared("CREATE DATABASE bench").await?;
    let db = graphql::db::connect(&cluster.url("bench")).await?;
    graphql::db::migrate(&db).await?;
    seed(&db, args).await?;

    let (gateway, api) = start_gateway(cluster.url("bench")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_before = rss_mib(gateway.pid());

    let mut statements = Vec::new();
    let mut gateway_results = Vec::new();
    let sampler = RssSampler::start(gateway.pid());
    for &case in cases {
        // Captured before the measured run, so that the statements are those of a warm gateway.
        warm(&api, case, args.clients).await?;
        let captured = capture(&cluster, &admin, &api, case).await?;
        let measured = gateway_case(&api, case, args, "gateway").await?;
        gateway_results.push((case, measured));
        statements.push((case, captured));
    }
    let mut plans = Vec::new();
    if args.explain {
        for (_, captured) in &statements {
            plans.extend(explain(&db, captured).await?);
        }
    }
    let under_load = sampler.max_mib();
    drop(sampler);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_after = rss_mib(gateway.pid());
    gateway.terminate().await?;

    let mut peers = Vec::new();
    let postgraphile = if args.no_postgraphile {
        Err("left out (--no-postgraphile)".to_owned())
    } else {
        start_postgraphile(args, &cluster)
            .await
            .map_err(|e| format!("could not run: {e:#}"))
    };
    for &case in cases {
        let peer = match (&postgraphile, case.postgraphile_query()) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), None) => Err("no equivalent".to_owned()),
            (Ok(peer), Some(query)) => {
                let api = &peer.api;
                let warm = load(api, &query, args.clients, 2, case.chain()).await;
                if warm.failed > 0 {
                    Err(format!("failed: {:?}", warm.first_failures))
                } else {
                    let m = load(api, &query, args.clients, args.secs, case.chain()).await;
                    m.shout(&format!("PostGraphile {}", case.name()));
                    say(format!("PostGraphile {}: {}", case.name(), m.cells()));
                    Ok(m)
                }
            }
        };
        peers.push(peer);
    }
    drop(postgraphile);

    let mut results = Vec::new();
    for (((case, gateway), peer), (_, captured)) in
        gateway_results.into_iter().zip(peers).zip(&statements)
    {
        let floor = pgbench(&cluster, captured, args.clients, args.secs, case.chain())
            .map_err(|e| format!("{e:#}"));
        if let Ok(m) = &floor {
            say(format!("floor {}: {}", case.name(), m.cells()));
        }
        results.push(CaseResult {
            case,
            gateway,
            peer,
            floor,
        });
    }
    Ok(DbResult {
        title: format!(
            "{}, {} tasks over {} users, {} clients, {} s per case",
            cluster.version, args.tasks, args.users, args.clients, args.secs
        ),
        peer_name: "PostGraphile",
        floor_name: "pgbench",
        cases: results,
        rss: Some((idle_before, under_load, idle_after)),
        statements,
        plans,
    })
}

/// The gateway's `page`/`search` read in-process: the service functions, no HTTP or GraphQL.
async fn sqlite_floor(db: &DatabaseConnection, case: Case, clients: usize, secs: u64) -> Measured {
    use graphql::service::task_list::{
        PageRequest, SortDirection, SortField, SortKey, TaskFilterSpec, TaskListQuery,
    };
    let query = TaskListQuery {
        owner_id: OWNER.to_owned(),
        filter: (case == Case::Page).then(|| TaskFilterSpec {
            completed: Some(false),
            min_priority: Some(entities::priority::Priority::Medium.rank()),
            ..TaskFilterSpec::default()
        }),
        search: (case == Case::Search).then(|| "weekly report".to_owned()),
        sort: if case == Case::Page {
            vec![SortKey {
                field: SortField::DueAt,
                direction: SortDirection::Asc,
            }]
        } else {
            Vec::new()
        },
        page: PageRequest::Forward {
            first: Some(20),
            after: None,
        },
        now: Utc::now(),
    };
    let (db, query) = (db.clone(), Arc::new(query));
    timed(clients, secs, move || {
        let (db, query) = (db.clone(), query.clone());
        async move {
            let sent = Instant::now();
            let result = async {
                let page = graphql::service::task_list::list_tasks(&db, &query).await?;
                let ids: Vec<Uuid> = page.tasks.iter().map(|t| t.id).collect();
                graphql::service::tag::tags_of_tasks(&db, &ids).await?;
                anyhow::ensure!(!ids.is_empty(), "an empty page");
                Ok::<_, anyhow::Error>(())
            }
            .await;
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            vec![(ms, result.map_err(|e| format!("{e:#}")))]
        }
    })
    .await
}

async fn run_sqlite(args: &Args, cases: &[Case]) -> anyhow::Result<DbResult> {
    let dir = std::env::temp_dir().join(format!("taskstream-list-bench-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let result = async {
        let db = graphql::db::connect(&url).await?;
        graphql::db::migrate(&db).await?;
        seed(&db, args).await?;
        let (gateway, api) = start_gateway(url.clone()).await?;
        let mut results = Vec::new();
        for &case in cases {
            let measured = gateway_case(&api, case, args, "SQLite gateway").await?;
            results.push((case, measured));
        }
        gateway.terminate().await?;
        let mut out = Vec::new();
        for (case, gateway) in results {
            let floor = if matches!(case, Case::Page | Case::Search) {
                let m = sqlite_floor(&db, case, args.clients, args.secs).await;
                m.shout(&format!("SQLite floor {}", case.name()));
                say(format!("SQLite floor {}: {}", case.name(), m.cells()));
                Ok(m)
            } else {
                Err("not measured (page and search only)".to_owned())
            };
            out.push(CaseResult {
                case,
                gateway,
                peer: Err("none".to_owned()),
                floor,
            });
        }
        db.close().await?;
        Ok::<_, anyhow::Error>(out)
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(DbResult {
        title: format!(
            "SQLite, {} tasks over {} users, {} clients, {} s per case",
            args.tasks, args.users, args.clients, args.secs
        ),
        peer_name: "-",
        floor_name: "service calls",
        cases: result?,
        rss: None,
        statements: Vec::new(),
        plans: Vec::new(),
    })
}

// ------------------------------------------------------------------ report

fn ratio(a: &Measured, b: &Result<Measured, String>) -> String {
    match b {
        Ok(b) if b.per_second > 0.0 => format!("{:.2}x", a.per_second / b.per_second),
        _ => "-".to_owned(),
    }
}

fn target(case: Case, sqlite: bool) -> &'static str {
    match (case, sqlite) {
        (Case::Page, false) => "≥3x peer, ≥0.6 floor, p99≤30ms",
        (Case::Search, false) => "≥0.5 floor (no peer)",
        (Case::Page, true) => "≥0.5 floor",
        _ => "",
    }
}

/// One database's table; with `detail`, the captured statements and plans too.
fn report(result: &DbResult, detail: bool) {
    println!();
    println!("## {}", result.title);
    println!(
        "{:<15} {:>27} | {:>27} | {:>27} | {:>7} {:>7} | target",
        "case",
        "gateway req/s p50 p99",
        format!("{} req/s p50 p99", result.peer_name),
        format!("{} req/s p50 p99", result.floor_name),
        "gw/peer",
        "gw/floor"
    );
    for c in &result.cases {
        let cell = |m: &Result<Measured, String>| match m {
            Ok(m) => format!("{:>27}", m.cells()),
            Err(e) => format!("{:>27}", truncate(e, 27)),
        };
        println!(
            "{:<15} {:>27} | {} | {} | {:>7} {:>7} | {}",
            c.case.name(),
            c.gateway.cells(),
            cell(&c.peer),
            cell(&c.floor),
            ratio(&c.gateway, &c.peer),
            ratio(&c.gateway, &c.floor),
            target(c.case, result.rss.is_none())
        );
    }
    for c in &result.cases {
        for (what, m) in [("peer", &c.peer), ("floor", &c.floor)] {
            if let Err(e) = m
                && e.len() > 27
            {
                println!("  {} {what}: {e}", c.case.name());
            }
        }
    }
    if let Some((before, load, after)) = result.rss {
        println!(
            "gateway RSS: idle {before:.1} MiB before, {load:.1} MiB at most under load, \
             {after:.1} MiB idle after (targets: ≤100 under load, ≤30 idle)"
        );
    }
    if !detail {
        return;
    }
    for (case, statements) in &result.statements {
        println!(
            "statements the gateway issued for one {} request:",
            case.name()
        );
        for s in statements {
            println!(
                "  {}",
                truncate(&s.split_whitespace().collect::<Vec<_>>().join(" "), 2000)
            );
        }
    }
    for plan in &result.plans {
        println!("{plan}");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = args
        .cases
        .iter()
        .map(|c| Case::parse(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(args.users >= 1, "--users must be at least 1");
    anyhow::ensure!(
        args.tags >= TAG_NAMES.len().min(2),
        "--tags must be at least 2 (home and errand are filtered on)"
    );
    // Each database's table as soon as it is measured, and again together at the end.
    let mut results = Vec::new();
    if !args.no_postgres {
        results.push(run_postgres(&args, &cases).await?);
        report(&results[0], true);
    }
    if !args.no_sqlite {
        results.push(run_sqlite(&args, &cases).await?);
    }
    println!("\n# Results");
    for result in &results {
        report(result, false);
    }
    Ok(())
}
