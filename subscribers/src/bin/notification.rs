//! The `notification` subscriber as its own process (distributed mode): consumes `reminders`
//! from Kafka and creates an in-app notification for each fired reminder until SIGINT or
//! SIGTERM. In embedded mode the gateway runs the same handler in-process instead.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use stream::consumer::{Consumer, ConsumerConfig};
use stream::kafka::{KafkaConfig, KafkaLog};
use subscribers::notification::{CONSUMER, NotificationHandler};

#[derive(Debug, Parser)]
#[command(
    name = "notification",
    about = "Creates in-app notifications for fired reminders"
)]
struct Args {
    /// `postgres://...` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// `host:port,host:port`.
    #[arg(long, env = "KAFKA_BROKERS")]
    kafka_brokers: String,
    /// The `reminders` partitions this instance owns: `all` or a comma list (`0,2`).
    #[arg(long, env = "PARTITIONS", default_value = "all")]
    partitions: String,
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
    let topic = stream::topics::REMINDERS;
    let partitions = if args.partitions.trim() == "all" {
        (0..log.partition_count(topic).await?).collect()
    } else {
        args.partitions
            .split(',')
            .map(|p| p.trim().parse::<i32>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("PARTITIONS {:?} is not `all` or a list", args.partitions))?
    };
    tracing::info!(?partitions, "notification subscriber starting");
    let config = ConsumerConfig {
        partitions,
        ..ConsumerConfig::new(CONSUMER, topic)
    };
    Consumer::new(db, log, NotificationHandler::new(), config)
        .run(shutdown())
        .await?;
    tracing::info!("notification subscriber stopped");
    Ok(())
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
