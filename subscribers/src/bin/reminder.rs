//! The `reminder` subscriber as its own process (distributed mode): consumes `task-events`
//! from Kafka to keep reminders in step with their tasks, and runs the reminder scheduler, which
//! fires due reminders into the outbox (it needs only the database), until SIGINT or SIGTERM.
//! In embedded mode the gateway runs the same handler and scheduler in-process instead.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use stream::consumer::{Consumer, ConsumerConfig};
use stream::kafka::{KafkaConfig, KafkaLog};
use subscribers::Clock;
use subscribers::reminder::{CONSUMER, ReminderHandler};
use subscribers::reminder_scheduler::ReminderScheduler;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    name = "reminder",
    about = "Keeps reminders in step with their tasks and fires them when due"
)]
struct Args {
    /// `postgres://...` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// `host:port,host:port`.
    #[arg(long, env = "KAFKA_BROKERS")]
    kafka_brokers: String,
    /// The `task-events` partitions this instance owns: `all` or a comma list (`0,2`).
    #[arg(long, env = "PARTITIONS", default_value = "all")]
    partitions: String,
    /// Minutes after its time a reminder still fires; later it is reported missed.
    #[arg(long, env = "LATENESS_MINUTES", default_value_t = 60)]
    lateness_minutes: u64,
    /// A tracing filter (`info`, `subscribers=debug,info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log_level)?)
        .init();
    let db = connect(&args.database_url).await?;
    let log = KafkaLog::connect(KafkaConfig::from_brokers(&args.kafka_brokers)?).await?;
    log.ensure_taskstream_topics().await?;
    let topic = stream::topics::TASK_EVENTS;
    let partitions = if args.partitions.trim() == "all" {
        (0..log.partition_count(topic).await?).collect()
    } else {
        args.partitions
            .split(',')
            .map(|p| p.trim().parse::<i32>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("PARTITIONS {:?} is not `all` or a list", args.partitions))?
    };
    tracing::info!(
        ?partitions,
        lateness_minutes = args.lateness_minutes,
        "reminder subscriber starting"
    );
    let config = ConsumerConfig {
        partitions,
        ..ConsumerConfig::new(CONSUMER, topic)
    };
    let scheduler = ReminderScheduler {
        lateness: Duration::from_secs(args.lateness_minutes.saturating_mul(60)),
        ..ReminderScheduler::new(db.clone(), Clock::System)
    };

    // One stop signal for both halves: a signal, or the consumer halting on its own.
    let (stop, stopped) = watch::channel(false);
    let consumer = async {
        let result = Consumer::new(db.clone(), log, ReminderHandler::new(), config)
            .run(until_stopped(stopped.clone()))
            .await;
        let _ = stop.send(true);
        result
    };
    let signals = async {
        tokio::select! {
            () = shutdown() => {}
            () = until_stopped(stopped.clone()) => {}
        }
        let _ = stop.send(true);
    };
    let (result, (), ()) = tokio::join!(
        consumer,
        scheduler.run(until_stopped(stopped.clone())),
        signals
    );
    result?;
    tracing::info!("reminder subscriber stopped");
    Ok(())
}

/// Completes once `true` is sent on the stop channel (or its sender is gone).
async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// A small pool; SQLite in WAL mode with a busy timeout, as the gateway opens it.
async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(4)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    }
    Database::connect(opts)
        .await
        .context("cannot connect to the database")
}

/// Completes at SIGINT or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
