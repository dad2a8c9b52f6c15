//! The `notification` subscriber as its own process (distributed mode), until SIGINT or
//! SIGTERM: consumes `reminders` from Kafka and creates an in-app notification for each fired
//! reminder; consumes `notifications` and queues a webhook delivery for each new notification
//! of a user with a webhook; and runs the webhook dispatcher, which sends them. In embedded
//! mode the gateway runs the same handlers and dispatcher in-process instead.

use clap::Parser;
use stream::consumer::{Consumer, ConsumerConfig};
use subscribers::Clock;
use subscribers::notification::NotificationHandler;
use subscribers::process::{self, CommonArgs};
use subscribers::webhook::{WebhookArgs, WebhookDispatcher, WebhookHandler};
use tokio::sync::watch;

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
    let _telemetry = process::init_tracing(
        "notification",
        &args.common.log_level,
        &args.common.log_format,
    )?;
    process::start_metrics_server(&args.common, 9093).await?;
    let settings = args.webhooks.settings()?;
    let db = process::connect_db(&args.common.database_url).await?;
    let notification_log = process::connect_log(&args.common).await?;
    let webhook_log = process::connect_log(&args.common).await?;
    let reminders = stream::topics::REMINDERS;
    let notifications = stream::topics::NOTIFICATIONS;
    let reminder_partitions =
        process::partitions(&notification_log, reminders, &args.common.partitions).await?;
    let notification_partitions =
        process::partitions(&webhook_log, notifications, &args.common.partitions).await?;
    tracing::info!(
        ?reminder_partitions,
        ?notification_partitions,
        allow_private = ?settings.policy.allowed(),
        "notification subscriber starting"
    );
    let dispatcher = WebhookDispatcher::new(db.clone(), settings, Clock::System)?;

    // One stop signal for every part: a signal, or a consumer halting on its own.
    let (stop, stopped) = watch::channel(false);
    let notification = async {
        let config = ConsumerConfig {
            partitions: reminder_partitions,
            ..ConsumerConfig::new(subscribers::notification::CONSUMER, reminders)
        };
        let result = Consumer::new(
            db.clone(),
            notification_log,
            NotificationHandler::new(),
            config,
        )
        .run(process::until_stopped(stopped.clone()))
        .await;
        let _ = stop.send(true);
        result
    };
    let webhook = async {
        let config = ConsumerConfig {
            partitions: notification_partitions,
            ..ConsumerConfig::new(subscribers::webhook::CONSUMER, notifications)
        };
        let result = Consumer::new(db.clone(), webhook_log, WebhookHandler::new(), config)
            .run(process::until_stopped(stopped.clone()))
            .await;
        let _ = stop.send(true);
        result
    };
    let signals = process::stop_on_signal(&stop);
    let (notification, webhook, (), ()) = tokio::join!(
        notification,
        webhook,
        dispatcher.run(process::until_stopped(stopped.clone())),
        signals
    );
    notification?;
    webhook?;
    tracing::info!("notification subscriber stopped");
    Ok(())
}
