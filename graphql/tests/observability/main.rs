//! Observability end to end, in embedded mode over the real HTTP server: one trace from a
//! mutation through the outbox into a subscriber and its follow-up event, exported over
//! OTLP/HTTP and over OTLP/gRPC to collectors on loopback (`collector`); and `/metrics` naming
//! every series, with values that move (records processed rise, consumer lag returns to 0).
//!
//! Metrics and the `tracing` subscriber are process-wide, so these tests count on nextest's
//! one process per test (`scripts/test` runs nextest); under plain `cargo test` the tests of
//! this file see each other's counters and log lines.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod collector;

use std::time::Duration;

use collector::exporter;
use graphql::config::ServerConfig;
use serde_json::{Value, json};

const SECRET: &str = "an-observability-test-secret-long-enough";

/// The gateway on port 0 in embedded mode, with its subscribers running in-process.
struct EmbeddedServer {
    base: String,
    client: reqwest::Client,
    token: String,
    db: support::TestDb,
    app: graphql::app::RunningApp,
}

impl EmbeddedServer {
    /// The gateway on port 0 in embedded mode (its subscribers in-process), as `main` runs it.
    async fn start() -> EmbeddedServer {
        let db = support::TestDb::empty(support::Backend::Sqlite)
            .await
            .unwrap();
        let config = ServerConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            jwt_jwks_url: None,
            ..ServerConfig::default()
        };
        let app = support::start_app(config).await;
        let base = format!("http://{}", app.addr);
        let token = graphql::auth::Authenticator::hs256(SECRET.as_bytes())
            .unwrap()
            .issue_token("observer", Duration::from_secs(600))
            .unwrap();
        EmbeddedServer {
            base,
            client: reqwest::Client::new(),
            token,
            db,
            app,
        }
    }

    async fn graphql(&self, traceparent: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn metrics(&self) -> (String, String) {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (content_type, response.text().await.unwrap())
    }

    async fn create_recurring_task(&self) -> String {
        let created = self
            .graphql(
                None,
                "mutation Create($input: CreateTaskInput!) { createTask(input: $input) { id } }",
                json!({ "input": {
                    "title": "Water the plants",
                    "dueAt": "2030-01-07T09:00:00Z",
                    "recurrence": { "rule": "FREQ=WEEKLY", "timezone": "UTC" },
                } }),
            )
            .await;
        created["data"]["createTask"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("createTask failed: {created}"))
            .to_owned()
    }

    async fn stop(self) {
        self.app.stop().await.unwrap();
        self.db.cleanup().await;
    }
}

/// The value of the series `series` (name with labels, exactly as rendered), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_mutation_the_subscriber_and_its_follow_up_event() {
    one_trace_reaches_the_collector(telemetry::OtlpProtocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_one_trace_spans_the_mutation_the_subscriber_and_its_follow_up_event() {
    one_trace_reaches_the_collector(telemetry::OtlpProtocol::Grpc).await;
}

/// A recurring task completed inside a client's trace: the gateway's operation span, the
/// recurrence handler's and the follow-up event's consumer span reach the collector over
/// `protocol` with one trace id.
async fn one_trace_reaches_the_collector(protocol: telemetry::OtlpProtocol) {
    // Arrange: the exporter pointed at a collector, the gateway with its subscribers.
    let exporter = exporter(protocol);
    let server = EmbeddedServer::start().await;
    let id = server.create_recurring_task().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";

    // Act: complete the recurring task inside a trace the client started.
    let completed = server
        .graphql(
            Some(&format!("00-{trace_id}-00f067aa0ba902b7-01")),
            "mutation Complete($id: ID!) { completeTask(id: $id) { id completed } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        completed["data"]["completeTask"]["completed"], true,
        "{completed}"
    );

    // Assert: the gateway's operation span, the recurrence handler's span and a span of a
    // consumer handling the successor's CREATED event (the follow-up) share the trace.
    let (operation, recurrence, follow_up) = exporter
        .wait_for(trace_id, |trace| {
            let operation = trace.iter().find(|s| s.name == "mutation Complete")?;
            let recurrence = trace.iter().find(|s| {
                s.name == "task-events process"
                    && s.attr("consumer") == Some("recurrence")
                    && s.attr("event_type") == Some("taskstream.task.completed")
            })?;
            let follow_up = trace.iter().find(|s| {
                s.parent_span_id == recurrence.span_id
                    && s.name == "task-events process"
                    && s.attr("event_type") == Some("taskstream.task.created")
            })?;
            Some((operation.clone(), recurrence.clone(), follow_up.clone()))
        })
        .await;
    assert_eq!(operation.service, "taskstream-test");
    assert_eq!(operation.attr("graphql.operation.name"), Some("Complete"));
    assert_eq!(operation.attr("graphql.operation.type"), Some("mutation"));
    assert_eq!(
        operation.attr("user.hash"),
        Some(telemetry::hash_user_id("observer").as_str())
    );
    assert!(
        operation.attr("request_id").is_some_and(|id| id.len() > 8),
        "{operation:?}"
    );
    assert_eq!(recurrence.trace_id, follow_up.trace_id);
    let everything = format!("{:?}", exporter.seen.lock().unwrap());
    assert!(
        !everything.contains(&server.token) && !everything.contains("observer\""),
        "a token or a raw user id was exported"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_every_series_and_lag_returns_to_zero() {
    // Arrange
    let server = EmbeddedServer::start().await;
    let (_, before) = server.metrics().await;
    let applied = "taskstream_consumer_records_total{consumer=\"recurrence\",topic=\"task-events\",outcome=\"applied\"}";
    let notified = "taskstream_consumer_records_total{consumer=\"notification\",topic=\"reminders\",outcome=\"applied\"}";
    assert_eq!(sample(&before, applied), None);

    // Act: a recurring task completed (recurrence and reminder consume it; the successor's
    // events follow), a reminder due in a moment, and one failing operation.
    let id = server.create_recurring_task().await;
    server
        .graphql(
            None,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(300)).to_rfc3339();
    server
        .graphql(
            None,
            "mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }",
            json!({ "input": { "title": "Call back", "dueAt": "2030-01-01T00:00:00Z",
                               "reminders": [{ "at": soon }] } }),
        )
        .await;
    let missing = server
        .graphql(
            None,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");

    // Assert: the series exist and their values moved; lag is back to 0 once caught up.
    let recurrence_lag = "taskstream_consumer_lag_records{consumer=\"recurrence\",topic=\"task-events\",partition=\"0\"}";
    let notification_lag = "taskstream_consumer_lag_records{consumer=\"notification\",topic=\"reminders\",partition=\"0\"}";
    let fired = "taskstream_reminder_lateness_seconds_count{outcome=\"fired\"}";
    support::wait_caught_up(&server.db.db, "recurrence", "task-events").await;
    support::wait_caught_up(&server.db.db, "notification", "reminders").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = server.metrics().await.1;
        if sample(&metrics, recurrence_lag) == Some(0.0)
            && sample(&metrics, notification_lag) == Some(0.0)
            && sample(&metrics, applied) == Some(1.0)
            && sample(&metrics, notified) == Some(1.0)
            && sample(&metrics, fired).is_some_and(|n| n >= 1.0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the metrics never showed the work done:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (content_type, metrics) = server.metrics().await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let requests = "taskstream_graphql_requests_total{kind=\"mutation\",operation=\"createTask\"}";
    assert_eq!(sample(&metrics, requests), Some(2.0), "{metrics}");
    assert!(
        sample(
            &metrics,
            "taskstream_graphql_request_duration_seconds_count{kind=\"mutation\",operation=\"completeTask\"}"
        ) == Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "taskstream_graphql_errors_total{code=\"NOT_FOUND\"}"
        ),
        Some(1.0)
    );
    // Embedded mode: the outbox is the log, nothing waits to be relayed.
    assert_eq!(sample(&metrics, "taskstream_outbox_pending"), Some(0.0));
    assert_eq!(
        sample(&metrics, "taskstream_dead_letters_parked"),
        Some(0.0)
    );
    assert_eq!(sample(&metrics, "taskstream_live_subscriptions"), Some(0.0));
    assert_eq!(
        sample(&metrics, "taskstream_outbox_oldest_pending_age_seconds"),
        Some(0.0)
    );
    assert!(
        sample(
            &metrics,
            "taskstream_consumer_records_total{consumer=\"reminder\",topic=\"task-events\",outcome=\"ignored\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_line_logged_inside_a_resolver_carries_the_request_id_and_no_token() {
    // Arrange: JSON logs captured on this thread (the current-thread runtime runs the server
    // here too), and a database that makes the `tags` resolver fail internally.
    let logs = support::CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let server = EmbeddedServer::start().await;
    server.create_recurring_task().await;
    sea_orm::ConnectionTrait::execute_unprepared(&server.db.db, "DROP TABLE task_tags")
        .await
        .unwrap();

    // Act: the tags of a page load in a batch loader, which now fails.
    let response: Value = server
        .client
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&server.token)
        .header("x-request-id", "req-observability-1")
        .json(&json!({ "query": "{ tasks(first: 5) { nodes { tags { name } } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "INTERNAL",
        "{response}"
    );

    // Assert: the resolver's error line names the request; nothing logged holds the token.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("internal error while resolving a request"))
        .unwrap_or_else(|| panic!("no internal error was logged ({response}):\n{text}"));
    assert!(
        line.contains("\"request_id\":\"req-observability-1\""),
        "{line}"
    );
    assert!(!text.contains(&server.token), "a token was logged");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_inside_the_trace_and_the_consumer_continues_from_the_record() {
    // Arrange: a gateway whose outbox is also relayed by hand to a second database whose
    // outbox plays the broker, so the relay hop runs without a Kafka broker. (Its own
    // in-process subscribers read its outbox directly; their spans have no publish parent.)
    let exporter = exporter(telemetry::OtlpProtocol::HttpProtobuf);
    let server = EmbeddedServer::start().await;
    let broker = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let created = server
        .graphql(
            Some(&format!("00-{trace_id}-b7ad6b7169203331-01")),
            "mutation Create($input: CreateTaskInput!) { createTask(input: $input) { id } }",
            json!({ "input": { "title": "Relayed" } }),
        )
        .await;
    assert!(created["data"]["createTask"]["id"].is_string(), "{created}");

    // Act: one relay round to the stand-in broker, then a consumer reading it.
    let relay = stream::relay::Relay::new(
        server.db.db.clone(),
        stream::embedded::EmbeddedLog::new(broker.db.clone()),
        stream::relay::RelayConfig::default(),
    );
    let report = relay.publish_round().await.unwrap();
    assert!(report.published >= 2 && report.failed == 0, "{report:?}");
    let consumer = support::RunningConsumer::start(
        &broker.db,
        subscribers::recurrence::RecurrenceHandler::default(),
        stream::topics::TASK_EVENTS,
    );

    // Assert: operation → publish (relay) → process (consumer), parent to child.
    let (operation, publish, process) = exporter
        .wait_for(trace_id, |trace| {
            let operation = trace.iter().find(|s| s.name == "mutation Create")?;
            let publish = trace.iter().find(|s| {
                s.name == "task-events publish" && s.parent_span_id == operation.span_id
            })?;
            let process = trace
                .iter()
                .find(|s| s.name == "task-events process" && s.parent_span_id == publish.span_id)?;
            Some((operation.clone(), publish.clone(), process.clone()))
        })
        .await;
    assert_eq!(
        publish.attr("messaging.destination.name"),
        Some("task-events")
    );
    assert!(
        publish.attr("messaging.kafka.offset").is_some(),
        "{publish:?}"
    );
    assert_eq!(process.attr("consumer"), Some("recurrence"));
    assert_eq!(operation.trace_id, process.trace_id);
    consumer.stop().await;
    broker.cleanup().await;
    server.stop().await;
}
