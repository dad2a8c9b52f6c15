//! The `recurrence` subscriber as its own process (distributed mode): consumes `task-events`
//! from Kafka and creates the next occurrence of completed recurring tasks until SIGINT or
//! SIGTERM. In embedded mode the gateway runs the same handler in-process instead.

use clap::Parser;
use subscribers::process::{CommonArgs, run_binary};
use subscribers::registry::SubscriberSettings;

#[derive(Debug, Parser)]
#[command(
    name = "recurrence",
    about = "Creates the next occurrence of completed recurring tasks"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    run_binary(
        env!("CARGO_BIN_NAME"),
        args.common,
        SubscriberSettings::default(),
    )
    .await
}
