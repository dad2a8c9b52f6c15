//! The `reminder` subscriber as its own process (distributed mode): consumes `task-events`
//! from Kafka to keep reminders in step with their tasks, and runs the reminder scheduler, which
//! fires due reminders into the outbox (it needs only the database), until SIGINT or SIGTERM.
//! In embedded mode the gateway runs the same handler and scheduler in-process instead.

use std::time::Duration;

use clap::Parser;
use stream::consumer::{Consumer, ConsumerConfig};
use subscribers::Clock;
use subscribers::process::{self, CommonArgs};
use subscribers::reminder::{CONSUMER, ReminderHandler};
use subscribers::reminder_scheduler::ReminderScheduler;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    name = "reminder",
    about = "Keeps reminders in step with their tasks and fires them when due"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Minutes after its time a reminder still fires; later it is reported missed.
    #[arg(long, env = "LATENESS_MINUTES", default_value_t = 60)]
    lateness_minutes: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry =
        process::init_tracing("reminder", &args.common.log_level, &args.common.log_format)?;
    process::start_metrics_server(&args.common, 9092).await?;
    let db = process::connect_db(&args.common.database_url).await?;
    let log = process::connect_log(&args.common).await?;
    let topic = stream::topics::TASK_EVENTS;
    let partitions = process::partitions(&log, topic, &args.common.partitions).await?;
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
            .run(process::until_stopped(stopped.clone()))
            .await;
        let _ = stop.send(true);
        result
    };
    let signals = process::stop_on_signal(&stop);
    let (result, (), ()) = tokio::join!(
        consumer,
        scheduler.run(process::until_stopped(stopped.clone())),
        signals
    );
    result?;
    tracing::info!("reminder subscriber stopped");
    Ok(())
}
