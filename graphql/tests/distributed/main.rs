//! Distributed mode as it is deployed: the `taskstream` gateway and the `recurrence`,
//! `reminder` and `notification` binaries as separate processes on a real broker, driven over
//! HTTP and WebSocket like a client would. Every scenario runs on a Kafka-protocol broker
//! (tansu, `KAFKA_BROKERS`) and on NATS JetStream (nats-server, `NATS_URL`).
//!
//! - `recovery` (PostgreSQL): killing (SIGKILL) the recurrence and reminder binaries
//!   mid-stream and starting them again loses nothing and duplicates nothing; with two gateway
//!   processes on one broker, a mutation through one reaches a live subscriber on the other.
//! - `elastic` (both databases): three instances of a subscriber share a six-partition topic by
//!   leases; a killed instance's partitions move, a restarted one gets its share back, and a
//!   paused one (SIGSTOP past its lease) applies nothing when it wakes.
//! - `least_privilege` (PostgreSQL): the `migration` binary migrates as the admin and grants a
//!   login role of the test's own; the gateway (embedded, and on NATS with its relay and the
//!   three subscriber binaries) then runs as that role, which is refused DDL.
//!
//! The subscriber and `migration` binaries are the workspace's own builds next to this test's
//! `taskstream` (`scripts/test` builds them with `cargo build --workspace --bins` first).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod elastic;
mod least_privilege;
mod recovery;

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
    /// Killed on purpose: not expected to be running.
    killed: bool,
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
            killed: false,
        }
    }

    /// SIGKILL: no drain, no goodbye.
    fn kill(&mut self) {
        self.killed = true;
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

    /// Sends `signal` (`STOP`, `CONT`) with kill(1).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    fn assert_running(&mut self) {
        if self.killed {
            return;
        }
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
        "{} is missing: build the workspace's binaries with `cargo build --workspace --bins` \
         (as scripts/test does)",
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

/// The deployment under test: a broker (none in embedded mode), a database, gateways and
/// subscribers.
struct Cluster {
    broker: Option<TestBroker>,
    db: support::TestDb,
    /// What the processes connect with: the test database's admin URL unless a test sets
    /// another role's.
    database_url: String,
    dir: support::TempDir,
    /// Partitions per topic.
    partitions: i32,
    gateways: Vec<(Proc, String)>,
    subscribers: Vec<Proc>,
}

impl Cluster {
    /// On PostgreSQL, with the default three partitions per topic.
    async fn start(transport: Transport) -> Option<Cluster> {
        Cluster::start_on(support::Backend::Postgres, transport, 3).await
    }

    async fn start_on(
        backend: support::Backend,
        transport: Transport,
        partitions: i32,
    ) -> Option<Cluster> {
        let db = support::TestDb::empty(backend).await?;
        let broker = TestBroker::start(transport).await;
        Some(Cluster::on(db, Some(broker), partitions))
    }

    /// Embedded mode on PostgreSQL: no broker, so the gateway runs the subscribers itself.
    async fn embedded() -> Option<Cluster> {
        let db = support::TestDb::empty(support::Backend::Postgres).await?;
        Some(Cluster::on(db, None, 1))
    }

    fn on(db: support::TestDb, broker: Option<TestBroker>, partitions: i32) -> Cluster {
        Cluster {
            broker,
            database_url: db.url.clone(),
            db,
            dir: support::TempDir::new(),
            partitions,
            gateways: Vec::new(),
            subscribers: Vec::new(),
        }
    }

    fn common_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("DATABASE_URL", self.database_url.clone())];
        if let Some(broker) = &self.broker {
            let partitions = match broker {
                TestBroker::Kafka(_) => "KAFKA_PARTITIONS",
                TestBroker::Nats(_) => "NATS_PARTITIONS",
            };
            env.push(broker.env());
            env.push((partitions, self.partitions.to_string()));
        }
        env
    }

    /// Starts a gateway process and waits until it is ready (database and broker). Returns
    /// its index.
    async fn start_gateway(&mut self) -> usize {
        self.start_gateway_with(&[]).await
    }

    /// [`Cluster::start_gateway`] with `extra` environment.
    async fn start_gateway_with(&mut self, extra: &[(&str, String)]) -> usize {
        let port = free_port();
        let mut env = self.common_env();
        env.extend(extra.iter().cloned());
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
        self.start_subscriber_with(name, name, &[])
    }

    /// Starts subscriber binary `name`, labelled `label` in failure output, with `extra`
    /// environment; returns its index.
    fn start_subscriber_with(
        &mut self,
        name: &str,
        label: &str,
        extra: &[(&str, String)],
    ) -> usize {
        let proc = self.spawn_subscriber(name, label, extra);
        self.subscribers.push(proc);
        self.subscribers.len() - 1
    }

    fn spawn_subscriber(&self, name: &str, label: &str, extra: &[(&str, String)]) -> Proc {
        let mut env = self.common_env();
        env.extend(extra.iter().cloned());
        Proc::spawn(label, &binary(name), &env, &self.dir)
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

    /// Creates `n` daily tasks of alice ("daily 0", ...) due tomorrow, repeating in `timezone`,
    /// through gateway `gateway`; returns their ids.
    async fn create_daily(&self, gateway: usize, n: usize, timezone: &str) -> Vec<String> {
        let due = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let mut ids = Vec::with_capacity(n);
        for k in 0..n {
            let data = self
                .graphql(
                    gateway,
                    "alice",
                    "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
                    json!({ "i": { "title": format!("daily {k}"), "dueAt": due,
                                   "recurrence": { "rule": "FREQ=DAILY", "timezone": timezone } } }),
                )
                .await;
            ids.push(data["createTask"]["id"].as_str().unwrap().to_owned());
        }
        ids
    }

    /// Completes the tasks `ids` of alice through gateway `gateway`, one mutation each.
    async fn complete(&self, gateway: usize, ids: &[String]) {
        for id in ids {
            self.graphql(
                gateway,
                "alice",
                "mutation($id: ID!) { completeTask(id: $id) { completed } }",
                json!({ "id": id }),
            )
            .await;
        }
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
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let behind = self.behind_on_the_broker(consumer, topic).await;
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

    /// How many records of `topic` `consumer` has not stored an offset past: the broker's end
    /// of each partition (asked of the broker) less the stored offset.
    async fn behind_on_the_broker(&self, consumer: &str, topic: &str) -> i64 {
        let broker = self
            .broker
            .as_ref()
            .expect("BUG: asking a broker in embedded mode");
        let log = BrokerLog::connect(&broker.config()).await.unwrap();
        let mut behind = 0;
        for partition in 0..self.partitions {
            let end = log.high_watermark(topic, partition).await.unwrap();
            let stored = self
                .scalar(&format!(
                    "SELECT COALESCE(MAX(next_offset), 0) FROM consumer_offsets \
                     WHERE consumer = '{consumer}' AND topic = '{topic}' AND partition = {partition}"
                ))
                .await;
            behind += (end - stored).max(0);
        }
        behind
    }

    /// The lag KEDA scales a subscriber on: the Helm chart's query
    /// (`infra/helm/taskstream/files/keda-lag.sql`, summed as the chart sums it) for `consumer`
    /// on `topic`, every partition. It reads the offsets the relay recorded in the outbox, not
    /// the broker.
    async fn keda_lag(&self, consumer: &str, topic: &str) -> i64 {
        let template = include_str!("../../../infra/helm/taskstream/files/keda-lag.sql").trim();
        let select = [topic, consumer, topic, ""]
            .iter()
            .fold(template.to_owned(), |sql, arg| sql.replacen("%s", arg, 1));
        assert!(
            !select.contains("%s"),
            "the chart's query takes four arguments"
        );
        self.scalar(&format!(
            "SELECT CAST(COALESCE(SUM(lag), 0) AS BIGINT) FROM ({select}) AS lags"
        ))
        .await
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
