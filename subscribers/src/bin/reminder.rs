//! The `reminder` subscriber as its own process (distributed mode): consumes `task-events`
//! from Kafka to keep reminders in step with their tasks, and runs the reminder scheduler, which
//! fires due reminders into the outbox (it needs only the database), until SIGINT or SIGTERM.
//! In embedded mode the gateway runs the same handler and scheduler in-process instead.

use std::time::Duration;

use clap::Parser;
use subscribers::process::{CommonArgs, run_binary};
use subscribers::registry::SubscriberSettings;

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
    let settings = SubscriberSettings {
        reminder_lateness: Duration::from_secs(args.lateness_minutes.saturating_mul(60)),
        ..SubscriberSettings::default()
    };
    run_binary(env!("CARGO_BIN_NAME"), args.common, settings).await
}
