//! `taskChanged` and `notificationReceived`: owner scoping, filters, deletions, lagging and the
//! socket cap through `schema.execute_stream` with changes published straight into a
//! `LiveHub`; then end-to-end runs over a real WebSocket with the live consumer tailing the
//! embedded log, including a reminder that fires, becomes a notification pushed live and is
//! POSTed to a webhook, with every subscriber running in-process as in embedded mode.
//!
//! Modules: the in-process `LiveApp` helpers live here and `server` (the real gateway on port 0
//! and WebSocket helpers) is shared; the tests are grouped into `task_changed`,
//! `notification_received`, `websocket` (end to end over HTTP and WebSocket), `protocol`
//! (the graphql-transport-ws close codes and the message size cap) and `errors` (refused
//! operations as `error` messages, with codes as over HTTP).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod server;

mod errors;
mod limits;
mod notification_received;
mod protocol;
mod task_changed;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use graphql::auth::AuthUser;
use graphql::live::{LiveChange, LiveHub, LiveNotification};
use graphql::schema::subscription::SocketSubscriptions;
use graphql::schema::{
    Clock, RequestMeta, SchemaLimits, TaskstreamSchema, build_schema, prepare_request,
};
use serde_json::{Value, json};
use stream::task_events::{TaskChangeKind, TaskSnapshot};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use server::*;

/// How long any expected message may take.
const DEADLINE: Duration = Duration::from_secs(10);

struct LiveApp {
    schema: TaskstreamSchema,
    hub: LiveHub,
    db: support::TestDb,
}

impl LiveApp {
    async fn start(hub: LiveHub) -> LiveApp {
        let db = support::TestDb::migrated(support::Backend::Sqlite)
            .await
            .unwrap();
        let schema = build_schema(
            db.db.clone(),
            Clock::System,
            &SchemaLimits::default(),
            hub.clone(),
        );
        LiveApp { schema, hub, db }
    }

    /// Opens `query` as `user` (with `extra` request data) and returns its responses once the
    /// subscription is registered with the hub.
    async fn subscribe_with(
        &self,
        user: &str,
        query: &str,
        extra: Option<SocketSubscriptions>,
    ) -> mpsc::UnboundedReceiver<async_graphql::Response> {
        let mut request = prepare_request(
            async_graphql::Request::new(query),
            &self.db.db,
            RequestMeta {
                user: AuthUser { id: user.into() },
                request_id: None,
            },
        );
        if let Some(sockets) = extra {
            request = request.data(sockets);
        }
        let before = self.hub.subscriber_count();
        let mut responses = self.schema.execute_stream(request);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(response) = responses.next().await {
                if tx.send(response).is_err() {
                    break;
                }
            }
        });
        let hub = self.hub.clone();
        wait_until("the subscription is registered", || {
            hub.subscriber_count() > before
        })
        .await;
        rx
    }

    async fn subscribe(
        &self,
        user: &str,
        query: &str,
    ) -> mpsc::UnboundedReceiver<async_graphql::Response> {
        self.subscribe_with(user, query, None).await
    }

    /// The first response to `query` as `user` on `socket`: a refused subscription answers
    /// with its error at once.
    async fn first_response(&self, user: &str, query: &str, socket: SocketSubscriptions) -> Value {
        let request = prepare_request(
            async_graphql::Request::new(query),
            &self.db.db,
            RequestMeta {
                user: AuthUser { id: user.into() },
                request_id: None,
            },
        )
        .data(socket);
        let mut responses = self.schema.execute_stream(request);
        let response = tokio::time::timeout(DEADLINE, responses.next())
            .await
            .unwrap()
            .unwrap();
        serde_json::to_value(&response).unwrap()
    }
}

/// Asserts that the subscription's next response is the lag error and that it then ended.
async fn assert_lagged_and_ended(rx: &mut mpsc::UnboundedReceiver<async_graphql::Response>) {
    let first = next(rx).await;
    assert_eq!(first["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    let end = tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap();
    assert!(end.is_none(), "the stream must end after the lag error");
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<async_graphql::Response>) -> Value {
    let response = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("no response before the deadline")
        .expect("the subscription ended");
    serde_json::to_value(&response).unwrap()
}

fn snapshot(owner: &str, title: &str, tags: &[&str]) -> TaskSnapshot {
    let now = Utc::now();
    TaskSnapshot {
        id: uuid::Uuid::new_v4(),
        owner_id: owner.into(),
        title: title.into(),
        description: String::new(),
        priority: entities::priority::Priority::None,
        completed: false,
        completed_at: None,
        due_at: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        recurrence: None,
        reminders: Vec::new(),
        series_id: None,
        occurrence_index: None,
        occurrence_local: None,
        series_start_local: None,
        generated_from_task_id: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn change(kind: TaskChangeKind, task: TaskSnapshot) -> LiveChange {
    LiveChange {
        kind,
        task_id: task.id,
        owner_id: task.owner_id.clone(),
        version: task.version,
        task: Arc::new(task),
    }
}

const TASK_CHANGED: &str = "subscription { taskChanged { kind taskId task { title } } }";
