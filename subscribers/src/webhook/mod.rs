//! Webhooks: each new notification of a user who configured a webhook URL is POSTed there as
//! the CloudEvent it is on the log, signed with HMAC-SHA256, retried with backoff, recorded in
//! `webhook_deliveries`, and parked as a dead letter after the last attempt.
//!
//! Two parts, so that no HTTP call ever runs inside a database transaction:
//! - [`WebhookHandler`] (consumer `webhook` on `notifications`) only enqueues: in the consumer's
//!   transaction it inserts one `PENDING` delivery row per `taskstream.notification.created`
//!   event of a user with a webhook (unique on the event id, so a redelivery adds nothing);
//! - [`WebhookDispatcher`] claims due rows in a short transaction, sends them outside of any
//!   transaction, and records each outcome in another.
//!
//! Guarantees and decisions:
//! - At least once: a claim leases the row for the request timeout plus a margin; a dispatcher
//!   that dies mid-request leaves the row to be sent again when the lease ends. Receivers
//!   deduplicate on the CloudEvent `id` (also sent as `Taskstream-Delivery`... see
//!   [`dispatcher`] for the headers).
//! - 2xx is delivered. 408, 429, 5xx, timeouts and connection errors are retried with
//!   exponential backoff until [`WebhookSettings::max_attempts`]. Any other answer (3xx: no
//!   redirect is followed; 4xx) and a refused target ([`target`]) fail at once. A delivery
//!   that fails becomes `FAILED` and is parked in `dead_letters` (consumer `webhook`) and on
//!   `notifications.dlq` in the same transaction.
//! - `taskstream dlq replay` of such a dead letter re-arms the delivery (attempts from zero).
//! - The URL is taken when the event arrives; the signing secret when the request is sent
//!   (a rotated secret applies to retries). Without a secret the request is sent unsigned.

pub mod dispatcher;
pub mod target;

use anyhow::anyhow;
use chrono::Utc;
use entities::user;
use entities::webhook_delivery::{self, DeliveryStatus};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, Set};
use sea_orm::{ColumnTrait, QueryFilter};
use stream::CloudEvent;
use stream::consumer::{Handler, HandlerError, HandlerOutcome};
use stream::log::LogRecord;
use stream::notification_events::{NOTIFICATION_CREATED_TYPE, NotificationData};
use uuid::Uuid;

pub use dispatcher::{DeliveryReport, WebhookDispatcher, WebhookSettings};
pub use target::{TargetError, TargetPolicy};

/// The consumer name of the webhook subscriber (offsets, dedupe and dead letters).
pub const CONSUMER: &str = "webhook";

/// The CloudEvent types the handler acts on: a new notification (the runtime skips the others).
pub const EVENT_TYPES: &[&str] = &[NOTIFICATION_CREATED_TYPE];

/// Webhook flags (with environment fallbacks), shared by the gateway (embedded mode, and the
/// `updateSettings` check of webhook URLs) and the `notification` binary.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Private, loopback or link-local networks webhooks may still be sent to, as
    /// comma-separated CIDRs or addresses (`10.0.0.0/8,127.0.0.1`). Empty: public addresses
    /// only (the SSRF guard).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", default_value = "")]
    pub webhook_allow_private: String,
    /// Attempts per webhook before it fails and is parked as a dead letter.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,
    /// Seconds one webhook request may take, connect to last byte (1 to 120).
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
    /// Seconds before the first retry; doubled per attempt, at most an hour.
    #[arg(long, env = "WEBHOOK_INITIAL_BACKOFF_SECS", default_value_t = 30)]
    pub webhook_initial_backoff_secs: u64,
}

impl Default for WebhookArgs {
    fn default() -> WebhookArgs {
        let defaults = WebhookSettings::default();
        WebhookArgs {
            webhook_allow_private: String::new(),
            webhook_max_attempts: defaults.max_attempts,
            webhook_timeout_secs: defaults.timeout.as_secs(),
            webhook_initial_backoff_secs: defaults.initial_backoff.as_secs(),
        }
    }
}

impl WebhookArgs {
    /// The validated settings; errors name the flag.
    pub fn settings(&self) -> anyhow::Result<WebhookSettings> {
        let policy =
            TargetPolicy::parse(&self.webhook_allow_private).map_err(anyhow::Error::msg)?;
        if !(1..=100).contains(&self.webhook_max_attempts) {
            anyhow::bail!(
                "WEBHOOK_MAX_ATTEMPTS must be 1 to 100, not {}",
                self.webhook_max_attempts
            );
        }
        if !(1..=120).contains(&self.webhook_timeout_secs) {
            anyhow::bail!(
                "WEBHOOK_TIMEOUT_SECS must be 1 to 120, not {}",
                self.webhook_timeout_secs
            );
        }
        if !(1..=3600).contains(&self.webhook_initial_backoff_secs) {
            anyhow::bail!(
                "WEBHOOK_INITIAL_BACKOFF_SECS must be 1 to 3600, not {}",
                self.webhook_initial_backoff_secs
            );
        }
        Ok(WebhookSettings {
            max_attempts: self.webhook_max_attempts,
            timeout: std::time::Duration::from_secs(self.webhook_timeout_secs),
            initial_backoff: std::time::Duration::from_secs(self.webhook_initial_backoff_secs),
            policy,
            ..WebhookSettings::default()
        })
    }
}

/// Enqueues webhook deliveries for new notifications. See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhookHandler;

impl WebhookHandler {
    pub fn new() -> WebhookHandler {
        WebhookHandler
    }
}

impl Handler for WebhookHandler {
    fn name(&self) -> &str {
        CONSUMER
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(EVENT_TYPES)
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let event = stream::consumer::decode_event(record)?;
        if event.event_type != NOTIFICATION_CREATED_TYPE {
            return Ok(HandlerOutcome::Ignored);
        }
        let data: NotificationData = serde_json::from_value(event.data.clone()).map_err(|e| {
            HandlerError::permanent(anyhow!(
                "event {} has invalid notification data: {e}",
                event.id
            ))
        })?;
        let body = String::from_utf8(record.value.clone().unwrap_or_default())
            .map_err(|e| HandlerError::permanent(anyhow!("the record is not UTF-8: {e}")))?;
        enqueue(txn, record, &event, &data, body).await
    }
}

/// Inserts the delivery of `event` unless one exists; re-arms a `FAILED` one (a replay).
async fn enqueue(
    txn: &DatabaseTransaction,
    record: &LogRecord,
    event: &CloudEvent,
    data: &NotificationData,
    body: String,
) -> Result<HandlerOutcome, HandlerError> {
    let now = entities::to_db_precision(Utc::now());
    let existing = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EventId.eq(event.id))
        .one(txn)
        .await?;
    if let Some(row) = existing {
        if row.status != DeliveryStatus::Failed {
            return Ok(HandlerOutcome::Ignored);
        }
        let id = row.id;
        let mut row = row.into_active_model();
        row.status = Set(DeliveryStatus::Pending);
        row.attempts = Set(0);
        row.next_attempt_at = Set(now);
        row.updated_at = Set(now);
        row.update(txn).await?;
        tracing::info!(delivery = %id, event = %event.id, "failed webhook delivery re-armed");
        return Ok(HandlerOutcome::Applied);
    }
    let Some(owner) = user::Entity::find_by_id(data.owner_id.clone())
        .one(txn)
        .await?
    else {
        return Ok(HandlerOutcome::Ignored);
    };
    let Some(url) = owner.webhook_url else {
        return Ok(HandlerOutcome::Ignored);
    };
    let headers = serde_json::to_string(&record.headers)
        .map_err(|e| HandlerError::permanent(anyhow!("BUG: headers do not serialise: {e}")))?;
    let id = Uuid::now_v7();
    webhook_delivery::ActiveModel {
        id: Set(id),
        event_id: Set(event.id),
        owner_id: Set(data.owner_id.clone()),
        notification_id: Set(Some(data.id)),
        url: Set(url),
        body: Set(body),
        source_topic: Set(record.topic.clone()),
        source_partition: Set(record.partition),
        source_offset: Set(record.offset),
        source_headers: Set(headers),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        delivered_at: Set(None),
    }
    .insert(txn)
    .await?;
    tracing::debug!(delivery = %id, event = %event.id, owner = %data.owner_id, "webhook delivery queued");
    Ok(HandlerOutcome::Applied)
}
