//! Distributed mode as it is deployed: the `taskstream` gateway and the `recurrence`,
//! `reminder` and `notification` binaries as separate processes on PostgreSQL and a real
//! broker, driven over HTTP and WebSocket like a client would. Every scenario runs twice: on a
//! Kafka-protocol broker (tansu, `KAFKA_BROKERS`) and on NATS JetStream (nats-server,
//! `NATS_URL`).
//!
//! - Killing (SIGKILL) the recurrence and reminder binaries mid-stream and starting them again
//!   loses nothing and duplicates nothing: every completed recurring task has exactly one next
//!   occurrence, every reminder exactly one notification.
//! - With two gateway processes on one broker, a mutation through one reaches a live
//!   subscriber on the other.
//!
//! The subscriber binaries are the workspace's own builds next to this test's `taskstream`
//! (`cargo nextest run --workspace`, as `scripts/test` runs it, builds them).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use stream::broker::BrokerLog;
use support::{TestBroker, Transport};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "a-distributed-test-secret-long-enough";

/// How long the system may take to settle after the last action.
const SETTLE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------- processes

/// A child process killed (SIGKILL) on drop; its output goes to a log file.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(
        name: &str,
        program: &PathBuf,
        env: &[(&str, String)],
        dir: &support::TempDir,
    ) -> Proc {
        let log = dir
            .0
            .join(format!("{name}-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "info,sqlx=warn")
            .env("METRICS_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Proc {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// SIGKILL: no drain, no goodbye.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of its output, for failure messages.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} (last lines) ---\n{}",
            self.name,
            lines[lines.len().saturating_sub(25)..].join("\n")
        )
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}\n{}", self.name, self.tail());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A workspace binary: the gateway from Cargo, the subscribers from the same directory.
fn binary(name: &str) -> PathBuf {
    let gateway = PathBuf::from(env!("CARGO_BIN_EXE_taskstream"));
    if name == "taskstream" {
        return gateway;
    }
    let path = gateway.with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: build the subscriber binaries with `cargo build -p subscribers --bins` \
         (scripts/test builds the whole workspace)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The deployment under test: a broker, a PostgreSQL database, gateways and subscribers.
struct Cluster {
    broker: TestBroker,
    db: support::TestDb,
    dir: support::TempDir,
    gateways: Vec<(Proc, String)>,
    subscribers: Vec<Proc>,
}

impl Cluster {
    async fn start(transport: Transport) -> Option<Cluster> {
        let db = support::TestDb::empty(support::Backend::Postgres).await?;
        let broker = TestBroker::start(transport).await;
        Some(Cluster {
            broker,
            db,
            dir: support::TempDir::new(),
            gateways: Vec::new(),
            subscribers: Vec::new(),
        })
    }

    fn common_env(&self) -> Vec<(&'static str, String)> {
        vec![("DATABASE_URL", self.db.url.clone()), self.broker.env()]
    }

    /// Starts a gateway process and waits until it is ready (database and broker). Returns
    /// its index.
    async fn start_gateway(&mut self) -> usize {
        let port = free_port();
        let mut env = self.common_env();
        env.push(("JWT_SECRET", SECRET.to_owned()));
        env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
        let mut proc = Proc::spawn("taskstream", &binary("taskstream"), &env, &self.dir);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            proc.assert_running();
            let ready = client.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the gateway was not ready within 60 s\n{}",
                proc.tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.gateways.push((proc, base));
        self.gateways.len() - 1
    }

    /// Starts a subscriber binary; returns its index.
    fn start_subscriber(&mut self, name: &str) -> usize {
        let env = self.common_env();
        let proc = Proc::spawn(name, &binary(name), &env, &self.dir);
        self.subscribers.push(proc);
        self.subscribers.len() - 1
    }

    /// Stops every process, then drops the database.
    async fn finish(self) {
        let Cluster {
            db,
            gateways,
            subscribers,
            ..
        } = self;
        drop(gateways);
        drop(subscribers);
        db.cleanup().await;
    }

    fn logs(&self) -> String {
        let gateways = self.gateways.iter().map(|(p, _)| p.tail());
        let subscribers = self.subscribers.iter().map(Proc::tail);
        gateways.chain(subscribers).collect::<Vec<_>>().join("\n")
    }

    fn token(&self, user: &str) -> String {
        graphql::auth::Authenticator::hs256(SECRET.as_bytes())
            .unwrap()
            .issue_token(user, Duration::from_secs(3600))
            .unwrap()
    }

    /// Runs a GraphQL operation on gateway `gateway` and returns `data`, failing on errors.
    async fn graphql(&self, gateway: usize, user: &str, query: &str, variables: Value) -> Value {
        let response: Value = reqwest::Client::new()
            .post(format!("{}/graphql", self.gateways[gateway].1))
            .bearer_auth(self.token(user))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(response["errors"].is_null(), "{response}");
        response["data"].clone()
    }

    async fn scalar(&self, sql: &str) -> i64 {
        scalar(&self.db.db, sql).await
    }

    /// Waits until `sql` (a single count) equals `want`, then checks every subscriber is
    /// still running. (A count that overshoots is caught by the exact checks made once the
    /// consumers have caught up.)
    async fn wait_for_count(&mut self, what: &str, sql: &str, want: i64) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let got = self.scalar(sql).await;
            if got == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {got} of {want} after {SETTLE:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for proc in &mut self.subscribers {
            proc.assert_running();
        }
    }

    /// Waits until `consumer` has stored offsets at the end of every partition of `topic`
    /// (nothing left to apply).
    async fn wait_caught_up(&self, consumer: &str, topic: &str) {
        let log = BrokerLog::connect(&self.broker.config()).await.unwrap();
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let mut behind = 0;
            for partition in 0..3 {
                let end = log.high_watermark(topic, partition).await.unwrap();
                let stored = self
                    .scalar(&format!(
                        "SELECT COALESCE(MAX(next_offset), 0) FROM consumer_offsets \
                         WHERE consumer = '{consumer}' AND topic = '{topic}' AND partition = {partition}"
                    ))
                    .await;
                behind += (end - stored).max(0);
            }
            if behind == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{consumer} is still {behind} records behind on {topic}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_recurrence_and_reminder_binaries_mid_stream_loses_and_duplicates_nothing_on_kafka()
 {
    killing_subscribers_mid_stream(Transport::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_recurrence_and_reminder_binaries_mid_stream_loses_and_duplicates_nothing_on_nats()
 {
    killing_subscribers_mid_stream(Transport::Nats).await;
}

async fn killing_subscribers_mid_stream(transport: Transport) {
    let Some(mut cluster) = Cluster::start(transport).await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let gateway = cluster.start_gateway().await;
    let recurrence = cluster.start_subscriber("recurrence");
    let reminder = cluster.start_subscriber("reminder");
    cluster.start_subscriber("notification");

    // Arrange: 16 daily tasks, and 6 tasks whose reminder fires a few seconds from now.
    let due = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let mut recurring = Vec::new();
    for n in 0..16 {
        let data = cluster
            .graphql(
                gateway,
                "alice",
                "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
                json!({ "i": { "title": format!("daily {n}"), "dueAt": due,
                               "recurrence": { "rule": "FREQ=DAILY", "timezone": "Europe/London" } } }),
            )
            .await;
        recurring.push(data["createTask"]["id"].as_str().unwrap().to_owned());
    }
    let fire_at = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    for n in 0..6 {
        cluster
            .graphql(
                gateway,
                "alice",
                "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
                json!({ "i": { "title": format!("remind {n}"), "reminders": [{ "at": fire_at }] } }),
            )
            .await;
    }

    // Act: complete the first half, kill the recurrence binary while it works through them,
    // complete the rest, and bring it back; kill and restart the reminder binary around the
    // moment its reminders are due.
    let complete = "mutation($id: ID!) { completeTask(id: $id) { completed } }";
    for id in &recurring[..8] {
        cluster
            .graphql(gateway, "alice", complete, json!({ "id": id }))
            .await;
    }
    cluster.subscribers[recurrence].kill();
    for id in &recurring[8..] {
        cluster
            .graphql(gateway, "alice", complete, json!({ "id": id }))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // down for a while, as a crash would be
    cluster.subscribers[recurrence] = Proc::spawn(
        "recurrence (restarted)",
        &binary("recurrence"),
        &cluster.common_env(),
        &cluster.dir,
    );
    cluster.subscribers[reminder].kill();
    tokio::time::sleep(Duration::from_secs(4)).await; // the reminders come due while it is down
    cluster.subscribers[reminder] = Proc::spawn(
        "reminder (restarted)",
        &binary("reminder"),
        &cluster.common_env(),
        &cluster.dir,
    );

    // Assert: exactly one successor per completed task, one notification per reminder.
    let ids = recurring
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    cluster
        .wait_for_count(
            "next occurrences",
            &format!("SELECT COUNT(*) FROM tasks WHERE generated_from_task_id IN ({ids})"),
            16,
        )
        .await;
    cluster
        .wait_for_count("notifications", "SELECT COUNT(*) FROM notifications", 6)
        .await;
    cluster
        .wait_caught_up("recurrence", stream::topics::TASK_EVENTS)
        .await;
    cluster
        .wait_caught_up("notification", stream::topics::REMINDERS)
        .await;
    // Caught up, and still exactly that many: nothing was applied twice.
    assert_eq!(
        cluster
            .scalar(&format!(
                "SELECT COUNT(*) FROM tasks WHERE generated_from_task_id IN ({ids})"
            ))
            .await,
        16
    );
    assert_eq!(
        cluster.scalar("SELECT COUNT(*) FROM notifications").await,
        6
    );
    assert_eq!(
        cluster
            .scalar("SELECT COUNT(*) FROM reminders WHERE status = 'FIRED'")
            .await,
        6
    );
    assert_eq!(cluster.scalar("SELECT COUNT(*) FROM dead_letters").await, 0);
    // Every outbox row reached the broker.
    cluster
        .wait_for_count(
            "unpublished outbox rows",
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
            0,
        )
        .await;
    let data = cluster
        .graphql(
            gateway,
            "alice",
            "query($id: ID!) { task(id: $id) { nextOccurrence { title completed previousOccurrence { id } } } }",
            json!({ "id": recurring[3] }),
        )
        .await;
    assert_eq!(
        data["task"]["nextOccurrence"],
        json!({ "title": "daily 3", "completed": false, "previousOccurrence": { "id": recurring[3] } })
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_through_one_gateway_reaches_a_subscriber_on_another_on_kafka() {
    mutation_reaches_another_gateway(Transport::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_through_one_gateway_reaches_a_subscriber_on_another_on_nats() {
    mutation_reaches_another_gateway(Transport::Nats).await;
}

async fn mutation_reaches_another_gateway(transport: Transport) {
    let Some(mut cluster) = Cluster::start(transport).await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let first = cluster.start_gateway().await;
    let second = cluster.start_gateway().await;

    // Arrange: a live subscriber on the second gateway.
    let ws_url = format!(
        "{}/graphql/ws",
        cluster.gateways[second].1.replace("http", "ws")
    );
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let token = cluster.token("alice");
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    socket
        .send(send(json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { taskChanged { kind task { title } } }" } })))
        .await
        .unwrap();

    // Act: retry the mutation until the subscriber sees one (the second gateway's live
    // consumer starts from the log's end, so a change committed before it is ready is history).
    let deadline = tokio::time::Instant::now() + SETTLE;
    let message = loop {
        cluster
            .graphql(
                first,
                "alice",
                r#"mutation { createTask(input: { title: "across gateways" }) { id } }"#,
                json!({}),
            )
            .await;
        match tokio::time::timeout(Duration::from_secs(5), next_json(&mut socket)).await {
            Ok(message) => break message,
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "no change reached the second gateway\n{}",
                cluster.logs()
            ),
        }
    };

    // Assert
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["taskChanged"],
        json!({ "kind": "CREATED", "task": { "title": "across gateways" } })
    );
    cluster.finish().await;
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Close(frame))) => panic!("socket closed: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}
