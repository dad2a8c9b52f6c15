//! Webhooks end to end, on SQLite and PostgreSQL: a fired reminder becomes a notification, the
//! webhook subscriber queues a delivery, and the `WebhookDispatcher` (fixed clock) POSTs the
//! CloudEvent to a real HTTP receiver on loopback (allow-listed), signed with HMAC-SHA256;
//! 5xx and timeouts are retried with backoff, other answers and refused targets fail at once,
//! the last failure parks a dead letter, and a replay re-arms the delivery.
//!
//! The receiver and the helpers live here; the tests are grouped into `delivery` (signed POSTs,
//! retried 5xx, users without a webhook), `failures` (timeouts parked and replayed, 4xx and
//! redirects) and `validation` (refused targets, bad payloads and flags).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod delivery;
mod failures;
mod validation;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use entities::{dead_letter, outbox, user, webhook_delivery};
use hmac::{Hmac, Mac};
use sea_orm::ActiveModelTrait;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::json;
use sha2::Sha256;
use stream::consumer::{Handler, HandlerOutcome};
use stream::log::LogRecord;
use stream::topics::{NOTIFICATIONS, REMINDERS};
use subscribers::Clock;
use subscribers::notification::NotificationHandler;
use subscribers::reminder_scheduler::ReminderScheduler;
use subscribers::webhook::{
    TargetPolicy, WebhookDispatcher, WebhookHandler, WebhookSettings, dispatcher,
};
use support::{RunningConsumer, TestApp};

const ALICE: &str = "alice";
const SECRET: &str = "a-webhook-secret-of-some-length";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Answers 200 after this long (longer than the dispatcher's timeout: a timeout).
    Slow(Duration),
}

/// A real HTTP server on loopback answering from a script (then 200 when it runs out).
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (r, s) = (Arc::clone(&received), Arc::clone(&script));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (r, s) = (Arc::clone(&r), Arc::clone(&s));
                async move {
                    r.lock().unwrap().push(Received { headers, body });
                    let answer = s.lock().unwrap().pop_front().unwrap_or(Answer::Status(200));
                    match answer {
                        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
                        Answer::Slow(d) => {
                            tokio::time::sleep(d).await;
                            StatusCode::OK
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, received }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Test settings: loopback allowed, short timeout, 10 s first backoff, `max_attempts`.
fn settings(max_attempts: u32) -> WebhookSettings {
    WebhookSettings {
        max_attempts,
        timeout: Duration::from_millis(700),
        initial_backoff: Duration::from_secs(10),
        policy: TargetPolicy::parse("127.0.0.0/8").unwrap(),
        ..WebhookSettings::default()
    }
}

fn dispatcher_at(
    db: &DatabaseConnection,
    settings: WebhookSettings,
    now: &str,
) -> WebhookDispatcher {
    WebhookDispatcher::new(db.clone(), settings, Clock::Fixed(at(now))).unwrap()
}

async fn set_webhook(db: &DatabaseConnection, owner: &str, url: &str, secret: Option<&str>) {
    let row = user::Entity::find_by_id(owner.to_owned())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let mut row = row.into_active_model();
    row.webhook_url = Set(Some(url.to_owned()));
    row.webhook_secret = Set(secret.map(str::to_owned));
    row.update(db).await.unwrap();
}

/// Creates a task with a reminder, fires it at 08:30 and waits until the notification exists
/// and the webhook subscriber has seen it.
async fn notify_alice(app: &TestApp, db: &DatabaseConnection) {
    let notifications = RunningConsumer::start(db, NotificationHandler::new(), REMINDERS);
    let webhooks = RunningConsumer::start(db, WebhookHandler::new(), NOTIFICATIONS);
    app.create_task(
        ALICE,
        json!({ "title": "Pay rent", "dueAt": "2030-01-07T09:00:00Z", "reminders": [{ "minutesBeforeDue": 30 }] }),
    )
    .await;
    let report = ReminderScheduler::new(db.clone(), Clock::Fixed(at("2030-01-07T08:30:00Z")))
        .fire_due()
        .await
        .unwrap();
    assert_eq!(report.fired.len(), 1);
    support::wait_caught_up(db, subscribers::notification::CONSUMER, REMINDERS).await;
    support::wait_caught_up(db, subscribers::webhook::CONSUMER, NOTIFICATIONS).await;
    notifications.stop().await;
    webhooks.stop().await;
}

/// Alice with a webhook at a fresh receiver answering `script` (`url_of` picks how the URL
/// names it; `None` = the receiver's plain loopback URL), after a fired reminder.
async fn alice_notified_with_webhook(
    t: &support::TestDb,
    script: &[Answer],
    secret: Option<&str>,
    url_of: Option<fn(&Receiver) -> String>,
) -> Receiver {
    let app = TestApp::on(t);
    let receiver = Receiver::start(script).await;
    app.create_task(ALICE, json!({ "title": "creates the user row" }))
        .await;
    let url = url_of.map_or_else(|| receiver.url(), |f| f(&receiver));
    set_webhook(&t.db, ALICE, &url, secret).await;
    notify_alice(&app, &t.db).await;
    receiver
}

async fn deliveries(db: &DatabaseConnection) -> Vec<webhook_delivery::Model> {
    webhook_delivery::Entity::find().all(db).await.unwrap()
}

async fn only_delivery(db: &DatabaseConnection) -> webhook_delivery::Model {
    let rows = deliveries(db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
