//! `taskChanged` and `notificationReceived`: owner scoping, filters, deletions, lagging and the
//! socket cap through `schema.execute_stream` with changes published straight into a
//! `LiveHub`; then end-to-end runs over a real WebSocket with the live consumer tailing the
//! embedded log, including a reminder that fires, becomes a notification pushed live and is
//! POSTed to a webhook, with every subscriber running in-process as in embedded mode.
#![allow(clippy::unwrap_used)]

mod support;

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
        priority: "NONE".into(),
        completed: false,
        completed_at: None,
        due_at: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        recurrence: None,
        reminders: Vec::new(),
        series_id: None,
        occurrence_index: None,
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

#[tokio::test]
async fn a_user_only_receives_changes_to_their_own_tasks() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut bob = app.subscribe("bob", TASK_CHANGED).await;

    // Act
    app.hub.publish(change(
        TaskChangeKind::Created,
        snapshot("alice", "Alice's secret", &[]),
    ));
    let bobs = snapshot("bob", "Bob's task", &[]);
    app.hub
        .publish(change(TaskChangeKind::Created, bobs.clone()));

    // Assert: the first change Bob sees is his own.
    let first = next(&mut bob).await;
    assert_eq!(
        first["data"]["taskChanged"],
        json!({ "kind": "CREATED", "taskId": bobs.id.to_string(), "task": { "title": "Bob's task" } })
    );
}

#[tokio::test]
async fn a_filter_only_delivers_changes_whose_task_matches() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut work = app
        .subscribe(
            "alice",
            r#"subscription { taskChanged(filter: { tags: { any: ["work"] } }) { kind task { title } } }"#,
        )
        .await;

    // Act
    app.hub.publish(change(
        TaskChangeKind::Created,
        snapshot("alice", "Buy milk", &["home"]),
    ));
    app.hub.publish(change(
        TaskChangeKind::Updated,
        snapshot("alice", "Write report", &["Work"]),
    ));

    // Assert
    let first = next(&mut work).await;
    assert_eq!(
        first["data"]["taskChanged"],
        json!({ "kind": "UPDATED", "task": { "title": "Write report" } })
    );
}

#[tokio::test]
async fn a_deletion_is_delivered_with_a_null_task() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut rx = app.subscribe("alice", TASK_CHANGED).await;
    let task = snapshot("alice", "Gone soon", &[]);

    // Act
    app.hub
        .publish(change(TaskChangeKind::Deleted, task.clone()));

    // Assert
    let first = next(&mut rx).await;
    assert_eq!(
        first["data"]["taskChanged"],
        json!({ "kind": "DELETED", "taskId": task.id.to_string(), "task": null })
    );
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_gets_an_error_and_its_stream_ends() {
    // Arrange: a hub that keeps two changes.
    let app = LiveApp::start(LiveHub::with_capacity(2)).await;
    let mut rx = app.subscribe("alice", TASK_CHANGED).await;

    // Act: five changes before the subscriber reads any.
    for i in 0..5 {
        app.hub.publish(change(
            TaskChangeKind::Created,
            snapshot("alice", &format!("task {i}"), &[]),
        ));
    }

    // Assert
    assert_lagged_and_ended(&mut rx).await;
}

#[tokio::test]
async fn a_socket_cannot_hold_more_subscriptions_than_its_cap() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let socket = SocketSubscriptions::new(1);
    let _first = app
        .subscribe_with("alice", TASK_CHANGED, Some(socket.clone()))
        .await;

    // Act
    let body = app.first_response("alice", TASK_CHANGED, socket).await;

    // Assert
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

const NOTIFICATION_RECEIVED: &str =
    "subscription { notificationReceived { id kind title body readAt } }";

fn notification(owner: &str, title: &str) -> LiveNotification {
    LiveNotification::from_data(subscribers::notification::NotificationData {
        id: uuid::Uuid::new_v4(),
        owner_id: owner.into(),
        task_id: None,
        kind: "REMINDER_DUE".into(),
        title: title.into(),
        body: "Due at 2030-01-07T09:00:00Z".into(),
        event_id: uuid::Uuid::new_v4(),
        created_at: Utc::now(),
        read_at: None,
    })
}

#[tokio::test]
async fn a_user_only_receives_their_own_notifications() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let mut bob = app.subscribe("bob", NOTIFICATION_RECEIVED).await;

    // Act
    app.hub
        .publish_notification(notification("alice", "Alice's reminder"));
    let bobs = notification("bob", "Bob's reminder");
    app.hub.publish_notification(bobs.clone());

    // Assert
    let first = next(&mut bob).await;
    assert_eq!(
        first["data"]["notificationReceived"],
        json!({ "id": bobs.notification.id.to_string(), "kind": "REMINDER_DUE",
                "title": "Bob's reminder", "body": "Due at 2030-01-07T09:00:00Z", "readAt": null })
    );
}

#[tokio::test]
async fn a_notification_subscriber_that_falls_behind_gets_an_error_and_its_stream_ends() {
    // Arrange
    let app = LiveApp::start(LiveHub::with_capacity(2)).await;
    let mut rx = app.subscribe("alice", NOTIFICATION_RECEIVED).await;

    // Act
    for i in 0..5 {
        app.hub
            .publish_notification(notification("alice", &format!("n{i}")));
    }

    // Assert
    assert_lagged_and_ended(&mut rx).await;
}

#[tokio::test]
async fn notification_subscriptions_count_against_the_socket_cap() {
    // Arrange
    let app = LiveApp::start(LiveHub::new()).await;
    let socket = SocketSubscriptions::new(1);
    let _tasks = app
        .subscribe_with("alice", TASK_CHANGED, Some(socket.clone()))
        .await;

    // Act
    let body = app
        .first_response("alice", NOTIFICATION_RECEIVED, socket)
        .await;

    // Assert
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

const SECRET: &str = "a-subscription-test-secret-long-enough";

/// The real gateway on port 0 with the live consumer over the embedded log, as `run` does.
struct TestServer {
    addr: std::net::SocketAddr,
    state: Arc<graphql::http::AppState>,
    _db: support::TestDb,
    stop: tokio::sync::watch::Sender<bool>,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::start_with_init_timeout(graphql::http::WS_INIT_TIMEOUT).await
    }

    /// As [`TestServer::start`], with `init_timeout` for `connection_init`.
    async fn start_with_init_timeout(init_timeout: Duration) -> TestServer {
        TestServer::start_inner(init_timeout, None).await
    }

    /// As embedded mode runs: the gateway plus every subscriber in-process (recurrence,
    /// reminders with the scheduler, notifications, webhooks with `webhooks`).
    async fn start_embedded(webhooks: subscribers::webhook::WebhookSettings) -> TestServer {
        TestServer::start_inner(graphql::http::WS_INIT_TIMEOUT, Some(webhooks)).await
    }

    async fn start_inner(
        init_timeout: Duration,
        embedded: Option<subscribers::webhook::WebhookSettings>,
    ) -> TestServer {
        let db = support::TestDb::empty(support::Backend::Sqlite)
            .await
            .unwrap();
        let config = graphql::config::ServerConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            jwt_jwks_url: None,
            jwt_audience: None,
            jwt_issuer: None,
            ..graphql::config::ServerConfig::default()
        };
        let gateway = graphql::startup::build(&config).await.unwrap();
        let built = &gateway.state;
        let state = Arc::new(graphql::http::AppState {
            schema: built.schema.clone(),
            db: built.db.clone(),
            kafka: built.kafka.clone(),
            auth: built.auth.clone(),
            request_timeout: built.request_timeout,
            graphiql_html: built.graphiql_html.clone(),
            live: built.live.clone(),
            ws_init_timeout: init_timeout,
            ws_max_subscriptions: built.ws_max_subscriptions,
            oidc: None,
        });
        let gateway = graphql::startup::Gateway {
            router: graphql::http::router(Arc::clone(&state), config.max_body_bytes),
            state,
            dev_token: None,
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        graphql::startup::start_live_updates(&gateway.state, stopped.clone());
        if let Some(webhooks) = embedded {
            tokio::spawn(graphql::events::run_embedded_subscribers(
                gateway.state.db.clone(),
                webhooks,
                stopped.clone(),
            ));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server_stop = stopped;
        tokio::spawn(graphql::http::serve(listener, gateway.router, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        }));
        tokio::time::timeout(DEADLINE, gateway.state.live.wait_until_consuming())
            .await
            .expect("the live consumer did not start");
        TestServer {
            addr,
            state: gateway.state,
            _db: db,
            stop,
        }
    }

    fn token(&self, sub: &str) -> String {
        graphql::auth::Authenticator::hs256(SECRET.as_bytes())
            .unwrap()
            .issue_token(sub, Duration::from_secs(600))
            .unwrap()
    }

    async fn connect(
        &self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let mut request = format!("ws://{}/graphql/ws", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(request).await.unwrap().0
    }

    async fn mutate(&self, token: &str, query: &str) -> Value {
        reqwest::Client::new()
            .post(format!("http://{}/graphql", self.addr))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn send_json<S>(socket: &mut S, value: Value)
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Debug,
{
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next text message as JSON (pings and pongs skipped); `None` when the socket closed,
/// with the close code.
async fn receive<S>(socket: &mut S) -> Result<Value, Option<u16>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("no WebSocket message before the deadline");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

#[tokio::test]
async fn a_websocket_subscriber_receives_a_task_created_over_http() {
    // Arrange
    let server = TestServer::start().await;
    let token = server.token("alice");
    let mut socket = server.connect().await;
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    send_json(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { taskChanged { kind taskId task { title tags { name } } } }"
        } }),
    )
    .await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;

    // Act
    let created = server
        .mutate(
            &token,
            r#"mutation { createTask(input: { title: "Live one", tags: ["work"] }) { id } }"#,
        )
        .await;
    let id = created["data"]["createTask"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Assert
    let message = receive(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next");
    assert_eq!(message["id"], "1");
    assert_eq!(
        message["payload"]["data"]["taskChanged"],
        json!({ "kind": "CREATED", "taskId": id, "task": { "title": "Live one", "tags": [{ "name": "work" }] } })
    );
}

#[tokio::test]
async fn a_websocket_with_a_bad_token_is_closed_with_4403() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;

    // Act
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-jwt" } }),
    )
    .await;

    // Assert
    assert_eq!(receive(&mut socket).await, Err(Some(4403)));
}

/// Sends `connection_init` with `sub`'s token and expects `connection_ack`.
async fn handshake<S>(server: &TestServer, socket: &mut S, sub: &str)
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    let token = server.token(sub);
    send_json(
        socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(receive(socket).await.unwrap()["type"], "connection_ack");
}

/// The close frame the server ends with (other messages skipped), as code and reason.
async fn close_frame<S>(socket: &mut S) -> (u16, String)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("no close frame before the deadline");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the socket failed without a close frame: {e}"),
            None => panic!("the socket ended without a close frame"),
        }
    }
}

fn subscribe_message(id: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": TASK_CHANGED } })
}

#[tokio::test]
async fn a_websocket_without_connection_init_is_closed_with_4408() {
    // Arrange
    let server = TestServer::start_with_init_timeout(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();

    // Act
    let mut socket = server.connect().await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4408, "Connection initialisation timeout".to_owned())
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_websocket_that_sent_connection_init_outlives_the_init_timeout() {
    // Arrange
    let server = TestServer::start_with_init_timeout(Duration::from_millis(200)).await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    tokio::time::sleep(Duration::from_millis(400)).await;
    send_json(&mut socket, json!({ "type": "ping" })).await;

    // Assert
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_subscribe_before_connection_ack_is_closed_with_4401() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;

    // Act
    send_json(&mut socket, subscribe_message("1")).await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4401, "Unauthorized".to_owned())
    );
}

#[tokio::test]
async fn a_duplicate_active_subscription_id_is_closed_with_4409() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(&mut socket, subscribe_message("1")).await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;

    // Act
    send_json(&mut socket, subscribe_message("1")).await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4409, "Subscriber for 1 already exists".to_owned())
    );
}

#[tokio::test]
async fn a_completed_subscription_id_can_be_reused() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(&mut socket, subscribe_message("1")).await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;
    send_json(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "complete");

    // Act
    send_json(&mut socket, subscribe_message("1")).await;
    send_json(&mut socket, json!({ "type": "ping" })).await;

    // Assert: still open.
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_message_that_is_not_json_is_closed_with_4400() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;

    // Act
    socket.send(Message::Text("not json".into())).await.unwrap();

    // Assert
    assert_eq!(close_frame(&mut socket).await.0, 4400);
}

#[tokio::test]
async fn a_message_of_an_unknown_type_is_closed_with_4400() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    send_json(&mut socket, json!({ "type": "shout", "id": "1" })).await;

    // Assert
    assert_eq!(close_frame(&mut socket).await.0, 4400);
}

#[tokio::test]
async fn a_second_connection_init_is_closed_with_4429() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;

    // Act
    let token = server.token("alice");
    send_json(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;

    // Assert
    assert_eq!(
        close_frame(&mut socket).await,
        (4429, "Too many initialisation requests".to_owned())
    );
}

/// The embedded-mode promise: a reminder set a moment ahead fires, and its notification
/// arrives on `notificationReceived` and at the user's webhook, with nothing else running.
#[tokio::test]
async fn a_reminder_a_moment_ahead_arrives_live_on_notification_received_and_at_the_webhook() {
    // Arrange: a webhook receiver on loopback (allow-listed) and the embedded server.
    let (posts_tx, mut posts) = mpsc::unbounded_channel::<Value>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = posts_tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, receiver).await });
    let server = TestServer::start_embedded(subscribers::webhook::WebhookSettings {
        policy: subscribers::webhook::TargetPolicy::parse("127.0.0.0/8").unwrap(),
        ..subscribers::webhook::WebhookSettings::default()
    })
    .await;
    let token = server.token("alice");
    // The user row, then the webhook straight in the database (the gateway's own policy is
    // the default public-only one).
    server
        .mutate(
            &token,
            r#"mutation { updateSettings(input: { timezone: "UTC" }) { id } }"#,
        )
        .await;
    {
        use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
        let row = entities::user::Entity::find_by_id("alice".to_owned())
            .one(&server.state.db)
            .await
            .unwrap()
            .unwrap();
        let mut row = row.into_active_model();
        row.webhook_url = Set(Some(hook));
        row.webhook_secret = Set(Some("a-webhook-secret-of-some-length".into()));
        row.update(&server.state.db).await.unwrap();
    }
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    send_json(
        &mut socket,
        json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription { notificationReceived { kind title task { title } } }"
        } }),
    )
    .await;
    let hub = server.state.live.clone();
    wait_until("the subscription is registered", || {
        hub.subscriber_count() > 0
    })
    .await;

    // Act: a reminder two seconds ahead.
    let at = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let created = server
        .mutate(
            &token,
            &format!(r#"mutation {{ createTask(input: {{ title: "Stretch", reminders: [{{ at: "{at}" }}] }}) {{ id }} }}"#),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");

    // Assert: live push, then the webhook POST with the same notification.
    let message = receive(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["notificationReceived"],
        json!({ "kind": "REMINDER_DUE", "title": "Stretch", "task": { "title": "Stretch" } })
    );
    let post = tokio::time::timeout(DEADLINE, posts.recv())
        .await
        .expect("no webhook POST before the deadline")
        .unwrap();
    assert_eq!(post["type"], "taskstream.notification.created");
    assert_eq!(post["data"]["title"], "Stretch");
}

#[tokio::test]
async fn a_message_larger_than_the_cap_closes_the_socket_without_being_read() {
    // Arrange
    let server = TestServer::start().await;
    let mut socket = server.connect().await;
    handshake(&server, &mut socket, "alice").await;
    let huge = format!(
        r#"{{"id":"1","type":"subscribe","payload":{{"query":"{}"}}}}"#,
        "x".repeat(graphql::http::WS_MAX_MESSAGE_BYTES + 1)
    );

    // Act
    let _ = socket.send(Message::Text(huge.into())).await;

    // Assert: the server gives up on the connection (1009 "message too big", or a reset).
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the socket stayed open after an oversized message");
        match next {
            Some(Ok(Message::Close(frame))) => {
                if let Some(frame) = frame {
                    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
                }
                break;
            }
            Some(Ok(Message::Text(text))) => {
                panic!("the oversized message was answered: {text:.200}")
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
}
