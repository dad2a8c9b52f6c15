//! The `notification` subscriber as its own process (distributed mode): consumes `reminders`
//! from Kafka and creates an in-app notification for each fired reminder until SIGINT or
//! SIGTERM. In embedded mode the gateway runs the same handler in-process instead.

use clap::Parser;
use subscribers::notification::NotificationHandler;
use subscribers::process::{CommonArgs, run_consumer};

#[derive(Debug, Parser)]
#[command(
    name = "notification",
    about = "Creates in-app notifications for fired reminders"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    run_consumer(
        args.common,
        stream::topics::REMINDERS,
        NotificationHandler::new(),
    )
    .await
}
