//! How late reminders fire, with many pending, against a peer run side by side.
//!
//! ```sh
//! cargo run -p graphql --release --example reminder_lateness -- [REMINDERS] [WINDOW_SECS] [postgres://...]
//! ```
//!
//! Writes REMINDERS (default 100,000) pending reminders, 10 per task, due evenly over
//! WINDOW_SECS (default 60) starting 15 s after writing began, into a fresh database (a
//! temporary SQLite file, or the given empty PostgreSQL database, which it migrates), fires
//! them, writes them again and fires them with the peer, measuring each reminder's lateness,
//! `fired_at - fire_at`:
//!
//! 1. Taskstream: the real `ReminderScheduler` (system clock): per pass one transaction that
//!    claims up to 100 due rows, marks them and writes one `ReminderDue` event each to the
//!    outbox; it sleeps until the next fire time or a commit.
//! 2. Peer: the least a database-polling scheduler can do: one `UPDATE ... SET status =
//!    'FIRED' WHERE status = 'PENDING' AND fire_at <= now` per loop, no events, no batching
//!    limit, sleeping until the next fire time (at most 10 ms).
//!
//! It prints p50, p99 and max lateness of both, the ratio of the p99s, and how many fired
//! early (must be 0). Target: Taskstream's p99 under 1 s. Nothing is asserted: these machines
//! are shared and noisy; read the side-by-side figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use entities::{reminder, task, user};
use sea_orm::{ColumnTrait, PaginatorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
};
use subscribers::Clock;
use subscribers::reminder_scheduler::ReminderScheduler;

const PER_TASK: usize = 10;
const LEAD: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let window: u64 = args.next().map_or(Ok(60), |a| a.parse())?;
    let url = args.next();
    let dir = std::env::temp_dir().join(format!("reminder-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let url =
        url.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let db = graphql::db::connect(&url).await?;
    graphql::db::migrate(&db).await?;
    println!(
        "reminder lateness: {count} pending reminders due over {window} s, database {}",
        graphql::db::redact_url(&url)
    );

    let loaded = Instant::now();
    load(&db, count).await?;
    println!("loaded in {:.1} s", loaded.elapsed().as_secs_f64());

    schedule(&db, count, window).await?;
    let started = Instant::now();
    let scheduler = ReminderScheduler::new(db.clone(), Clock::System);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        scheduler
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    wait_all_fired(&db, count).await?;
    let _ = stop.send(());
    running.await?;
    let ours = lateness(&db).await?;
    let ours_secs = started.elapsed().as_secs_f64();

    schedule(&db, count, window).await?;
    let started = Instant::now();
    raw_scheduler(&db, count).await?;
    let peer = lateness(&db).await?;
    let peer_secs = started.elapsed().as_secs_f64();

    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "", "p50 ms", "p99 ms", "max ms", "early", "run s"
    );
    report("Taskstream ReminderScheduler", &ours, ours_secs);
    report("peer: one UPDATE per loop", &peer, peer_secs);
    let p99 = |l: &[i64]| percentile(l, 0.99).max(1) as f64;
    println!();
    println!(
        "p99 ratio Taskstream/peer: {:.2}   target: Taskstream p99 < 1000 ms ({}), none early ({})",
        p99(&ours) / p99(&peer),
        if percentile(&ours, 0.99) < 1_000_000 {
            "met"
        } else {
            "NOT met"
        },
        if ours.iter().any(|&l| l < 0) {
            "NOT met"
        } else {
            "met"
        },
    );
    db.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The title of every benchmark task.
const TITLE: &str = "Benchmark task";

/// One user and `count / PER_TASK` tasks due far ahead (their reminders come from
/// [`schedule`]).
async fn load(db: &DatabaseConnection, count: usize) -> anyhow::Result<()> {
    let now = entities::to_db_precision(Utc::now());
    user::Entity::insert(user::ActiveModel {
        id: Set("bench".into()),
        timezone: Set("UTC".into()),
        webhook_url: Set(None),
        webhook_secret: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(db)
    .await?;
    let tasks: Vec<uuid::Uuid> = (0..count.div_ceil(PER_TASK))
        .map(|_| uuid::Uuid::now_v7())
        .collect();
    for chunk in tasks.chunks(1000) {
        task::Entity::insert_many(chunk.iter().map(|&id| task::ActiveModel {
            id: Set(id),
            owner_id: Set("bench".into()),
            title: Set(TITLE.into()),
            description: Set(String::new()),
            priority: Set(entities::priority::Priority::None),
            completed: Set(false),
            completed_at: Set(None),
            due_at: Set(Some(now + chrono::Duration::days(365))),
            recurrence_rule: Set(None),
            recurrence_timezone: Set(None),
            recurrence_anchor: Set(None),
            series_id: Set(None),
            occurrence_index: Set(None),
            generated_from_task_id: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            // `insert_many` skips `before_save`, which derives these elsewhere.
            search_title: Set(entities::search::document(TITLE)),
            search_body: Set(String::new()),
            title_key: Set(entities::search::title_key(TITLE)),
            ..Default::default()
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Replaces every reminder with `count` fresh pending ones, `PER_TASK` per task, due evenly
/// over `window` seconds from [`LEAD`] from now, and empties the outbox. Fails when writing
/// them took longer than the lead (the run would start with a backlog and measure that).
async fn schedule(db: &DatabaseConnection, count: usize, window: u64) -> anyhow::Result<()> {
    let now = entities::to_db_precision(Utc::now());
    let start = now + chrono::Duration::from_std(LEAD)?;
    let step_us = (window * 1_000_000 / count.max(1) as u64) as i64;
    let tasks: Vec<uuid::Uuid> = task::Entity::find()
        .order_by_asc(task::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    db.execute_unprepared("DELETE FROM reminders").await?;
    db.execute_unprepared("DELETE FROM outbox").await?;
    let rows: Vec<reminder::ActiveModel> = (0..count)
        .map(|i| {
            let fire_at = entities::to_db_precision(
                start + chrono::Duration::microseconds(step_us * i as i64),
            );
            reminder::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                task_id: Set(tasks[i / PER_TASK]),
                owner_id: Set("bench".into()),
                minutes_before_due: Set(None),
                at: Set(Some(fire_at)),
                fire_at: Set(Some(fire_at)),
                status: Set(entities::reminder_offset::ReminderStatus::Pending),
                created_at: Set(now),
                fired_at: Set(None),
            }
        })
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(2000).collect();
        reminder::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    anyhow::ensure!(
        Utc::now() < start,
        "writing the reminders took longer than the {LEAD:?} lead; use fewer reminders"
    );
    Ok(())
}

async fn wait_all_fired(db: &DatabaseConnection, count: usize) -> anyhow::Result<()> {
    let mut last = Instant::now();
    loop {
        let fired = reminder::Entity::find()
            .filter(reminder::Column::Status.ne("PENDING"))
            .count(db)
            .await? as usize;
        if fired >= count {
            return Ok(());
        }
        if last.elapsed() > Duration::from_secs(10) {
            println!("  ... {fired} of {count} fired");
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The peer: one UPDATE of every due row per loop.
async fn raw_scheduler(db: &DatabaseConnection, count: usize) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let placeholder = |n: usize| match backend {
        sea_orm::DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    };
    let sql = format!(
        "UPDATE reminders SET status = 'FIRED', fired_at = {} WHERE status = 'PENDING' AND fire_at <= {}",
        placeholder(1),
        placeholder(2)
    );
    let mut fired = 0;
    while fired < count {
        let now = entities::to_db_precision(Utc::now());
        let result = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                &sql,
                [now.into(), now.into()],
            ))
            .await?;
        fired += result.rows_affected() as usize;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Every reminder's lateness in microseconds (negative = early), sorted.
async fn lateness(db: &DatabaseConnection) -> anyhow::Result<Vec<i64>> {
    let rows = reminder::Entity::find().all(db).await?;
    let mut late: Vec<i64> = rows
        .iter()
        .filter_map(|r| {
            Some(
                (r.fired_at? - r.fire_at?)
                    .num_microseconds()
                    .unwrap_or(i64::MAX),
            )
        })
        .collect();
    late.sort_unstable();
    Ok(late)
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

fn report(name: &str, late: &[i64], secs: f64) {
    let ms = |us: i64| us as f64 / 1000.0;
    println!(
        "{:<28} {:>10.1} {:>10.1} {:>10.1} {:>8} {:>8.1}",
        name,
        ms(percentile(late, 0.5)),
        ms(percentile(late, 0.99)),
        ms(*late.last().unwrap_or(&0)),
        late.iter().filter(|&&l| l < 0).count(),
        secs
    );
}
