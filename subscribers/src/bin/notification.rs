//! The `notification` subscriber as its own process (distributed mode), until SIGINT or
//! SIGTERM: consumes `reminders` from Kafka and creates an in-app notification for each fired
//! reminder; consumes `notifications` and queues a webhook delivery for each new notification
//! of a user with a webhook; and runs the webhook dispatcher, which sends them. In embedded
//! mode the gateway runs the same handlers and dispatcher in-process instead.

use clap::Parser;
use subscribers::process::{CommonArgs, run_binary};
use subscribers::registry::SubscriberSettings;
use subscribers::webhook::WebhookArgs;

#[derive(Debug, Parser)]
#[command(
    name = "notification",
    about = "Creates in-app notifications for fired reminders and delivers them to webhooks",
    long_about = "Creates in-app notifications for fired reminders (consumer `notification` on \
                  `reminders`) and POSTs each new notification to its user's webhook, signed \
                  with HMAC-SHA256 and retried with backoff (consumer `webhook` on \
                  `notifications`, plus the dispatcher). PARTITIONS applies to both topics."
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = SubscriberSettings {
        webhooks: args.webhooks.settings()?,
        ..SubscriberSettings::default()
    };
    run_binary(env!("CARGO_BIN_NAME"), args.common, settings).await
}
