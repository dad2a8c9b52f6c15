//! [`WebhookDispatcher`]: sends due webhook deliveries and records each outcome.
//!
//! One pass ([`WebhookDispatcher::deliver_due`]): claim up to
//! [`WebhookSettings::batch_size`] `PENDING` rows whose `next_attempt_at` has come (PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, so replicas share the work; SQLite serializes the claim), count
//! the attempt and lease the row; commit; send the requests concurrently; record every outcome
//! in its own short transaction, guarded by the attempt number so a late answer to an expired
//! lease cannot overwrite a newer attempt.
//!
//! The request: `POST <url>` with the CloudEvent as body (`Content-Type:
//! application/cloudevents+json`) and the headers
//! - `Taskstream-Signature: sha256=<hex HMAC-SHA256 of the raw body with the user's secret>`
//!   (absent when the user set no secret);
//! - `Taskstream-Event-Id` (the CloudEvent id: deduplicate on it), `Taskstream-Delivery` (the
//!   delivery id), `Taskstream-Attempt` (1, 2, ...).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::user;
use entities::webhook_delivery::{self, DeliveryStatus};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::Sha256;
use stream::log::LogRecord;
use tracing::Instrument as _;

use super::CONSUMER;
use super::target::{GuardedResolver, TargetPolicy, refusal};
use crate::Clock;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "Taskstream-Signature";
/// The CloudEvent id header.
pub const EVENT_ID_HEADER: &str = "Taskstream-Event-Id";
/// The delivery id header.
pub const DELIVERY_HEADER: &str = "Taskstream-Delivery";
/// The attempt number header.
pub const ATTEMPT_HEADER: &str = "Taskstream-Attempt";

/// How a dispatcher delivers. Defaults: 8 attempts 30 s, 1, 2, 4 ... minutes apart (about two
/// hours in all), 10 s per request, 32 requests per pass, public targets only.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Attempts before a retryable failure becomes final.
    pub max_attempts: u32,
    /// The whole request, connect to last byte.
    pub timeout: Duration,
    /// The delay after the first failed attempt; doubled per attempt.
    pub initial_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// Most deliveries claimed by one pass (they are sent concurrently).
    pub batch_size: u64,
    /// The longest sleep of [`WebhookDispatcher::run`] between passes: bounds how late a
    /// delivery queued by another process starts when no wake-up came (default
    /// [`stream::wakeup::FALLBACK_POLL`]; commits wake it, on PostgreSQL those of other
    /// processes too).
    pub poll: Duration,
    /// Where requests may go.
    pub policy: TargetPolicy,
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60 * 60),
            batch_size: 32,
            poll: stream::wakeup::FALLBACK_POLL,
            policy: TargetPolicy::public_only(),
        }
    }
}

/// What one pass did, by delivery id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: Vec<uuid::Uuid>,
    /// Failed this time, scheduled again.
    pub retrying: Vec<uuid::Uuid>,
    /// Failed for good: `FAILED` and parked.
    pub failed: Vec<uuid::Uuid>,
}

impl DeliveryReport {
    /// How many deliveries the pass claimed.
    pub fn claimed(&self) -> usize {
        self.delivered.len() + self.retrying.len() + self.failed.len()
    }
}

/// The result of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered(u16),
    Retry { code: Option<u16>, error: String },
    Fail { code: Option<u16>, error: String },
}

/// Sends due deliveries. See the module documentation.
#[derive(Clone, Debug)]
pub struct WebhookDispatcher {
    db: DatabaseConnection,
    client: reqwest::Client,
    settings: Arc<WebhookSettings>,
    clock: Clock,
}

impl WebhookDispatcher {
    /// A dispatcher with its own HTTP client: `settings.timeout`, no redirects, no proxies, and
    /// the SSRF-guarding resolver.
    pub fn new(
        db: DatabaseConnection,
        settings: WebhookSettings,
        clock: Clock,
    ) -> anyhow::Result<WebhookDispatcher> {
        let policy = Arc::new(settings.policy.clone());
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Taskstream-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver::new(policy)))
            .build()?;
        Ok(WebhookDispatcher {
            db,
            client,
            settings: Arc::new(settings),
            clock,
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// One pass. See the module documentation.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, DbErr> {
        let claimed = self.claim().await?;
        let mut report = DeliveryReport::default();
        if claimed.is_empty() {
            return Ok(report);
        }
        let sends = claimed.iter().map(|(row, secret)| async move {
            let span = delivery_span(row);
            let outcome = self
                .send(row, secret.as_deref())
                .instrument(span.clone())
                .await;
            (row, outcome, span)
        });
        let results = futures_util::future::join_all(sends).await;
        let metrics = telemetry::metrics::metrics();
        for (row, outcome, span) in results {
            match self.record(row, outcome).instrument(span).await {
                Ok(Some(Recorded::Delivered)) => {
                    metrics.count_webhook("delivered");
                    report.delivered.push(row.id);
                }
                Ok(Some(Recorded::Retrying)) => {
                    metrics.count_webhook("retry");
                    report.retrying.push(row.id);
                }
                Ok(Some(Recorded::Failed)) => {
                    metrics.count_webhook("failed");
                    report.failed.push(row.id);
                }
                Ok(None) => {
                    tracing::warn!(delivery = %row.id, "the delivery's lease ended before its answer was recorded; a newer attempt owns it");
                }
                Err(e) => {
                    // The lease ends and the row is sent again: at least once.
                    tracing::warn!(delivery = %row.id, error = %e, "cannot record a webhook outcome; it will be retried when its lease ends");
                }
            }
        }
        Ok(report)
    }

    /// Claims due rows: attempt counted, leased until the request must have ended. Returns
    /// each row as claimed, with the owner's current secret.
    async fn claim(&self) -> Result<Vec<(webhook_delivery::Model, Option<String>)>, DbErr> {
        let now = entities::to_db_precision(self.clock.now());
        let lease = chrono::Duration::from_std(self.settings.timeout + Duration::from_secs(60))
            .unwrap_or(chrono::Duration::minutes(5));
        let txn = stream::outbox::begin_write(&self.db).await?;
        let due = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(self.settings.batch_size)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.rollback().await?;
            return Ok(Vec::new());
        }
        let owners = user::Entity::find()
            .filter(user::Column::Id.is_in(due.iter().map(|d| d.owner_id.clone())))
            .all(&txn)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let secret = owners
                .iter()
                .find(|u| u.id == row.owner_id)
                .and_then(|u| u.webhook_secret.clone());
            let mut active = row.clone().into_active_model();
            active.attempts = Set(row.attempts + 1);
            active.next_attempt_at = Set(now + lease);
            active.updated_at = Set(now);
            let row = active.update(&txn).await?;
            claimed.push((row, secret));
        }
        txn.commit().await?;
        Ok(claimed)
    }

    /// Sends one request and classifies the answer.
    async fn send(&self, row: &webhook_delivery::Model, secret: Option<&str>) -> Outcome {
        let url = match self.settings.policy.check_url(&row.url) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::Fail {
                    code: None,
                    error: e.to_string(),
                };
            }
        };
        let mut request = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/cloudevents+json; charset=utf-8",
            )
            .header(EVENT_ID_HEADER, row.event_id.to_string())
            .header(DELIVERY_HEADER, row.id.to_string())
            .header(ATTEMPT_HEADER, row.attempts.to_string())
            .body(row.body.clone());
        if let Some(secret) = secret {
            request = request.header(SIGNATURE_HEADER, sign(secret, row.body.as_bytes()));
        }
        match request.send().await {
            Ok(response) => classify(response.status().as_u16()),
            Err(e) => {
                if let Some(refused) = refusal(&e) {
                    return Outcome::Fail {
                        code: None,
                        error: refused.to_string(),
                    };
                }
                let what = if e.is_timeout() {
                    format!("no answer within {:?}", self.settings.timeout)
                } else if e.is_connect() {
                    format!("cannot connect: {}", error_chain(&e))
                } else {
                    format!("request failed: {}", error_chain(&e))
                };
                Outcome::Retry {
                    code: None,
                    error: what,
                }
            }
        }
    }

    /// Writes the outcome of the attempt `row` was claimed for; `None` when a newer attempt
    /// owns the row.
    async fn record(
        &self,
        row: &webhook_delivery::Model,
        outcome: Outcome,
    ) -> Result<Option<Recorded>, DbErr> {
        let now = entities::to_db_precision(self.clock.now());
        let txn = stream::outbox::begin_write(&self.db).await?;
        let current = webhook_delivery::Entity::find_by_id(row.id)
            .filter(webhook_delivery::Column::Attempts.eq(row.attempts))
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .one(&txn)
            .await?;
        let Some(current) = current else {
            txn.rollback().await?;
            return Ok(None);
        };
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let outcome = match outcome {
            Outcome::Retry { code, error } if attempts >= self.settings.max_attempts => {
                Outcome::Fail {
                    code,
                    error: format!("gave up after {attempts} attempts; the last: {error}"),
                }
            }
            other => other,
        };
        let mut active = current.into_active_model();
        active.updated_at = Set(now);
        let recorded = match outcome {
            Outcome::Delivered(code) => {
                active.status = Set(DeliveryStatus::Delivered);
                active.last_status_code = Set(Some(i32::from(code)));
                active.last_error = Set(None);
                active.delivered_at = Set(Some(now));
                tracing::info!(delivery = %row.id, event = %row.event_id, code, attempts, "webhook delivered");
                Recorded::Delivered
            }
            Outcome::Retry { code, error } => {
                let delay = stream::consumer::backoff_delay(
                    self.settings.initial_backoff,
                    self.settings.max_backoff,
                    attempts,
                );
                let next =
                    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                active.last_status_code = Set(code.map(i32::from));
                active.last_error = Set(Some(error.clone()));
                active.next_attempt_at = Set(next);
                tracing::warn!(delivery = %row.id, event = %row.event_id, ?code, attempts, %error, retry_at = %next, "webhook attempt failed; retrying");
                Recorded::Retrying
            }
            Outcome::Fail { code, error } => {
                active.status = Set(DeliveryStatus::Failed);
                active.last_status_code = Set(code.map(i32::from));
                active.last_error = Set(Some(error.clone()));
                let source = source_record(row)
                    .map_err(|e| DbErr::Custom(format!("webhook delivery {}: {e}", row.id)))?;
                let dead_letter = stream::dead_letters::park(
                    &txn,
                    &source,
                    CONSUMER,
                    Some(uuid::Uuid::now_v7()),
                    &error,
                    attempts,
                )
                .await?;
                tracing::error!(delivery = %row.id, event = %row.event_id, ?code, attempts, %error, dead_letter, "webhook delivery failed; parked as a dead letter");
                Recorded::Failed
            }
        };
        active.update(&txn).await?;
        txn.commit().await?;
        if recorded == Recorded::Failed {
            stream::outbox::notify_committed();
        }
        Ok(Some(recorded))
    }

    /// The earliest `next_attempt_at` of a pending delivery, if any.
    pub async fn next_attempt_at(&self) -> Result<Option<DateTime<Utc>>, DbErr> {
        let next = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .one(&self.db)
            .await?;
        Ok(next.map(|d| d.next_attempt_at))
    }

    /// Runs passes until `shutdown` completes, sleeping until the next attempt is due, at most
    /// [`WebhookSettings::poll`], or until a commit in this process (a new delivery) wakes it.
    /// A pass in flight when `shutdown` completes finishes first (at most one request timeout).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        crate::due_loop::run_passes("webhook dispatcher", self.settings.poll, shutdown, || {
            self.pass()
        })
        .await;
    }

    /// One pass, then how long to sleep ([`crate::due_loop::pass_when_due`]).
    async fn pass(&self) -> Result<Duration, DbErr> {
        crate::due_loop::pass_when_due(
            || self.clock.now(),
            self.settings.poll,
            || self.next_attempt_at(),
            || async { Ok(self.deliver_due().await?.claimed() as u64 >= self.settings.batch_size) },
        )
        .await
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recorded {
    Delivered,
    Retrying,
    Failed,
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Whether an answer with `status` is delivered, retried or final.
fn classify(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered(status),
        408 | 429 | 500..=599 => Outcome::Retry {
            code: Some(status),
            error: format!("the receiver answered {status}"),
        },
        300..=399 => Outcome::Fail {
            code: Some(status),
            error: format!("the receiver answered {status}; redirects are not followed"),
        },
        _ => Outcome::Fail {
            code: Some(status),
            error: format!("the receiver answered {status}, which is not retried"),
        },
    }
}

/// "outer: inner: innermost", for logs and the delivery log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The span of one delivery attempt: a child of the notification event's trace (the
/// `ce_traceparent` header it was consumed with), so the POST shows up in the trace of the
/// change that caused it.
fn delivery_span(row: &webhook_delivery::Model) -> tracing::Span {
    let span = tracing::info_span!(
        "webhook.deliver",
        otel.name = "webhook deliver",
        otel.kind = "client",
        delivery = %row.id,
        event = %row.event_id,
        attempt = row.attempts,
    );
    if telemetry::exporting() {
        match entities::outbox::decode_headers(&row.source_headers) {
            Ok(headers) => {
                telemetry::continue_trace(
                    &span,
                    headers
                        .get(stream::outbox::header::TRACEPARENT)
                        .map(String::as_str),
                );
            }
            // The POST does not need the headers; parking the delivery does, and fails then.
            Err(e) => {
                tracing::warn!(delivery = %row.id, error = %e, "the delivery's trace context is lost")
            }
        }
    }
    span
}

/// The record the delivery came from, rebuilt for its dead letter; corrupt stored headers are
/// an error, never an empty set.
fn source_record(
    row: &webhook_delivery::Model,
) -> Result<LogRecord, entities::outbox::CorruptHeaders> {
    Ok(LogRecord {
        topic: row.source_topic.clone(),
        partition: row.source_partition,
        offset: row.source_offset,
        key: Some(row.owner_id.clone()),
        value: Some(row.body.clone().into_bytes()),
        headers: entities::outbox::decode_headers(&row.source_headers)?,
        timestamp: row.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn answers_are_delivered_retried_or_final() {
        assert_eq!(classify(204), Outcome::Delivered(204));
        for code in [408, 429, 500, 502, 503] {
            assert!(matches!(classify(code), Outcome::Retry { .. }), "{code}");
        }
        for code in [301, 302, 400, 401, 404, 410] {
            assert!(matches!(classify(code), Outcome::Fail { .. }), "{code}");
        }
    }
}
