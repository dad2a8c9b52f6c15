//! Webhooks end to end, on SQLite and PostgreSQL: a fired reminder becomes a notification, the
//! webhook subscriber queues a delivery, and the `WebhookDispatcher` (fixed clock) POSTs the
//! CloudEvent to a real HTTP receiver on loopback (allow-listed), signed with HMAC-SHA256;
//! 5xx and timeouts are retried with backoff, other answers and refused targets fail at once,
//! the last failure parks a dead letter, and a replay re-arms the delivery.
#![allow(clippy::unwrap_used)]

mod support;

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

// ---------------------------------------------------------------- the receiver

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

// ---------------------------------------------------------------- helpers

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

// ---------------------------------------------------------------- tests

on_both_databases!(
    a_notification_is_posted_to_the_users_webhook_signed_with_hmac_sha256,
    |t| {
        // Arrange
        let receiver = alice_notified_with_webhook(t, &[], Some(SECRET), None).await;

        // Act
        let report = dispatcher_at(&t.db, settings(3), "2030-01-07T08:30:01Z")
            .deliver_due()
            .await
            .unwrap();

        // Assert: one signed POST whose body is the CloudEvent on `notifications`, byte for byte.
        assert_eq!(report.delivered.len(), 1);
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        let event = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(NOTIFICATIONS))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got[0].body, event.payload.as_bytes());
        let header = |name: &str| {
            got[0]
                .headers
                .get(name)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            header(dispatcher::SIGNATURE_HEADER),
            format!("sha256={}", hmac_hex(SECRET, &got[0].body))
        );
        assert_eq!(
            header(dispatcher::EVENT_ID_HEADER),
            event.event_id.to_string()
        );
        assert_eq!(header(dispatcher::ATTEMPT_HEADER), "1");
        assert!(header("content-type").starts_with("application/cloudevents+json"));
        let cloud_event: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(cloud_event["type"], "taskstream.notification.created");
        assert_eq!(cloud_event["data"]["title"], "Pay rent");
        let row = only_delivery(&t.db).await;
        assert_eq!(header(dispatcher::DELIVERY_HEADER), row.id.to_string());
        assert_eq!(row.status, webhook_delivery::STATUS_DELIVERED);
        assert_eq!((row.attempts, row.last_status_code), (1, Some(200)));
        assert!(row.delivered_at.is_some());

        // A second pass sends nothing more.
        let again = dispatcher_at(&t.db, settings(3), "2030-01-07T09:30:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(again.claimed(), 0);
        assert_eq!(receiver.received().len(), 1);
    }
);

on_both_databases!(
    a_5xx_answer_is_retried_after_the_backoff_and_then_delivered,
    |t| {
        // Arrange
        let receiver =
            alice_notified_with_webhook(t, &[Answer::Status(503)], Some(SECRET), None).await;

        // Act + Assert: 503 → retrying, next attempt 10 s later, not before.
        let first = dispatcher_at(&t.db, settings(3), "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(first.retrying.len(), 1);
        let row = only_delivery(&t.db).await;
        assert_eq!(row.status, webhook_delivery::STATUS_PENDING);
        assert_eq!(row.last_status_code, Some(503));
        assert_eq!(row.next_attempt_at, at("2030-01-07T08:31:10Z"));
        let early = dispatcher_at(&t.db, settings(3), "2030-01-07T08:31:09Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(early.claimed(), 0, "never before the backoff");
        let second = dispatcher_at(&t.db, settings(3), "2030-01-07T08:31:10Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(second.delivered.len(), 1);
        let row = only_delivery(&t.db).await;
        assert_eq!(
            (row.status.as_str(), row.attempts),
            (webhook_delivery::STATUS_DELIVERED, 2)
        );
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, got[1].body, "a retry sends the same bytes");
        assert_eq!(got[1].headers[dispatcher::ATTEMPT_HEADER], "2");
    }
);

on_both_databases!(
    a_webhook_that_keeps_timing_out_is_parked_as_a_dead_letter_and_a_replay_rearms_it,
    |t| {
        // Arrange: the receiver is slower than the 700 ms timeout twice.
        let slow = Answer::Slow(Duration::from_millis(1500));
        let _receiver = alice_notified_with_webhook(t, &[slow, slow], Some(SECRET), None).await;

        // Act: two attempts (the maximum), the second after the backoff.
        let first = dispatcher_at(&t.db, settings(2), "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(first.retrying.len(), 1);
        let last = dispatcher_at(&t.db, settings(2), "2030-01-07T08:32:00Z")
            .deliver_due()
            .await
            .unwrap();

        // Assert: FAILED, a dead letter for consumer `webhook` and its copy on the DLQ topic.
        assert_eq!(last.failed.len(), 1);
        let row = only_delivery(&t.db).await;
        assert_eq!(row.status, webhook_delivery::STATUS_FAILED);
        let error = row.last_error.clone().unwrap();
        assert!(
            error.contains("gave up after 2 attempts") && error.contains("no answer"),
            "{error}"
        );
        let parked = dead_letter::Entity::find().all(&t.db).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].consumer, subscribers::webhook::CONSUMER);
        assert_eq!(parked[0].topic, NOTIFICATIONS);
        assert_eq!(parked[0].attempts, 2);
        assert_eq!(parked[0].payload, row.body);
        let dlq = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(stream::topics::dlq(NOTIFICATIONS)))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(dlq.len(), 1);

        // Replaying the dead letter re-arms the delivery; the receiver now answers 200.
        let outcome = stream::dead_letters::replay(&t.db, parked[0].id, &WebhookHandler::new())
            .await
            .unwrap();
        assert_eq!(outcome, stream::dead_letters::ReplayOutcome::Applied);
        let row = only_delivery(&t.db).await;
        assert_eq!(
            (row.status.as_str(), row.attempts),
            (webhook_delivery::STATUS_PENDING, 0)
        );
        let report = dispatcher_at(&t.db, settings(2), "2030-01-07T09:00:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(report.delivered.len(), 1);
        assert_eq!(
            only_delivery(&t.db).await.status,
            webhook_delivery::STATUS_DELIVERED
        );
    }
);

#[tokio::test]
async fn a_4xx_or_a_redirect_fails_at_once_without_a_retry() {
    for code in [410, 302] {
        let t = support::TestDb::migrated(support::Backend::Sqlite)
            .await
            .unwrap();
        let receiver = alice_notified_with_webhook(&t, &[Answer::Status(code)], None, None).await;

        let report = dispatcher_at(&t.db, settings(5), "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();

        assert_eq!(report.failed.len(), 1, "{code}");
        let row = only_delivery(&t.db).await;
        assert_eq!(
            (row.attempts, row.last_status_code),
            (1, Some(i32::from(code)))
        );
        assert_eq!(
            dead_letter::Entity::find().all(&t.db).await.unwrap().len(),
            1
        );
        // Without a secret the request is sent unsigned.
        let got = receiver.received();
        assert!(got[0].headers.get(dispatcher::SIGNATURE_HEADER).is_none());
    }
}

#[tokio::test]
async fn private_and_loopback_targets_are_refused_without_a_connection_unless_allow_listed() {
    let loopback: fn(&Receiver) -> String = |r| r.url();
    let localhost: fn(&Receiver) -> String = |r| format!("http://localhost:{}/hook", r.addr.port());
    for url_of in [loopback, localhost] {
        // Arrange: the same loopback receiver, but a dispatcher with the default policy.
        let t = support::TestDb::migrated(support::Backend::Sqlite)
            .await
            .unwrap();
        let receiver = alice_notified_with_webhook(&t, &[], Some(SECRET), Some(url_of)).await;
        let public_only = WebhookSettings {
            policy: TargetPolicy::public_only(),
            ..settings(5)
        };

        // Act
        let report = dispatcher_at(&t.db, public_only, "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();

        // Assert
        assert_eq!(report.failed.len(), 1);
        assert!(
            receiver.received().is_empty(),
            "nothing may reach the target"
        );
        let error = only_delivery(&t.db).await.last_error.unwrap();
        assert!(
            error.contains("loopback") && error.contains("WEBHOOK_ALLOW_PRIVATE"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn update_settings_accepts_a_loopback_webhook_only_when_allow_listed() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let allowing = graphql::schema::build_schema(
        t.db.clone(),
        graphql::schema::Clock::System,
        &graphql::schema::SchemaLimits {
            webhook_targets: TargetPolicy::parse("127.0.0.1").unwrap(),
            ..graphql::schema::SchemaLimits::default()
        },
        graphql::live::LiveHub::new(),
    );
    let query = r#"mutation { updateSettings(input: { webhookUrl: "http://127.0.0.1:9/hook" }) { webhookUrl } }"#;
    let request = graphql::schema::prepare_request(
        async_graphql::Request::new(query),
        &t.db,
        graphql::schema::RequestMeta {
            user: graphql::auth::AuthUser { id: ALICE.into() },
            request_id: None,
        },
    );
    let response = graphql::schema::execute(&allowing, request).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);

    let (code, message) = TestApp::on(&t).err(ALICE, query, json!({})).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.contains("input.webhookUrl") && message.contains("loopback"),
        "{message}"
    );
}

on_both_databases!(
    a_user_without_a_webhook_gets_no_delivery_and_a_redelivery_adds_none,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        notify_alice(&app, &t.db).await;
        assert!(deliveries(&t.db).await.is_empty());
        let receiver = Receiver::start(&[]).await;
        set_webhook(&t.db, ALICE, &receiver.url(), Some(SECRET)).await;
        let event = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(NOTIFICATIONS))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        let record = LogRecord {
            topic: NOTIFICATIONS.into(),
            partition: 0,
            offset: event.id,
            key: Some(event.key.clone()),
            value: Some(event.payload.clone().into_bytes()),
            headers: Default::default(),
            timestamp: event.created_at,
        };

        // Act: the same event handled twice.
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let txn = stream::consumer::begin_write(&t.db).await.unwrap();
            outcomes.push(WebhookHandler::new().handle(&txn, &record).await.unwrap());
            txn.commit().await.unwrap();
        }

        // Assert
        assert_eq!(outcomes, [HandlerOutcome::Applied, HandlerOutcome::Ignored]);
        assert_eq!(deliveries(&t.db).await.len(), 1);
    }
);

#[tokio::test]
async fn bad_event_payloads_are_permanent_errors_and_other_event_types_are_ignored() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let record = |value: &str| LogRecord {
        topic: NOTIFICATIONS.into(),
        partition: 0,
        offset: 1,
        key: None,
        value: Some(value.as_bytes().to_vec()),
        headers: Default::default(),
        timestamp: Utc::now(),
    };
    let other_type = json!({ "specversion": "1.0", "id": uuid::Uuid::new_v4(), "source": "/t", "subject": "s", "datacontenttype": "application/json",
        "type": "taskstream.something.else", "time": "2030-01-01T00:00:00Z", "data": {} });
    let bad_data = json!({ "specversion": "1.0", "id": uuid::Uuid::new_v4(), "source": "/t", "subject": "s", "datacontenttype": "application/json",
        "type": "taskstream.notification.created", "time": "2030-01-01T00:00:00Z", "data": { "id": 7 } });
    let txn = stream::consumer::begin_write(&t.db).await.unwrap();
    let handler = WebhookHandler::new();
    for bad in ["not json", "{\"id\": 1}", &bad_data.to_string()] {
        let err = handler.handle(&txn, &record(bad)).await.unwrap_err();
        assert!(err.is_permanent(), "{bad}");
    }
    let tombstone = LogRecord {
        value: None,
        ..record("")
    };
    assert!(
        handler
            .handle(&txn, &tombstone)
            .await
            .unwrap_err()
            .is_permanent()
    );
    assert_eq!(
        handler
            .handle(&txn, &record(&other_type.to_string()))
            .await
            .unwrap(),
        HandlerOutcome::Ignored
    );
    txn.rollback().await.unwrap();
}

#[test]
fn bad_webhook_flags_are_rejected_naming_the_flag() {
    use subscribers::webhook::WebhookArgs;
    for (args, flag) in [
        (
            WebhookArgs {
                webhook_allow_private: "10.0.0.0/8,nope".into(),
                ..WebhookArgs::default()
            },
            "WEBHOOK_ALLOW_PRIVATE",
        ),
        (
            WebhookArgs {
                webhook_max_attempts: 0,
                ..WebhookArgs::default()
            },
            "WEBHOOK_MAX_ATTEMPTS",
        ),
        (
            WebhookArgs {
                webhook_timeout_secs: 0,
                ..WebhookArgs::default()
            },
            "WEBHOOK_TIMEOUT_SECS",
        ),
        (
            WebhookArgs {
                webhook_initial_backoff_secs: 0,
                ..WebhookArgs::default()
            },
            "WEBHOOK_INITIAL_BACKOFF_SECS",
        ),
    ] {
        let err = args.settings().unwrap_err().to_string();
        assert!(err.contains(flag), "{err}");
    }
    assert!(WebhookArgs::default().settings().is_ok());
}
