//! Elastic subscribers: throughput of one against three instances of a consumer whose handler
//! waits on IO, sharing a six-partition topic by leases, and how long the partitions of a
//! killed instance take to move.
//!
//! ```sh
//! cargo run -p graphql --release --example elastic_bench -- [RECORDS] [DELAY_MS] [ADMIN_URL] [LEASE_TTL_MS]
//! ```
//!
//! Defaults: 1,200 records, a 10 ms receiver, `postgres://postgres@127.0.0.1:5432/postgres`
//! (a fresh database is created through it and dropped at the end), the production lease
//! period of 10 s. It starts a local nats-server (JetStream: fetching is fast there, so the
//! figures measure the consumers, not the broker) and a local slow receiver: a TCP server that
//! answers each request after DELAY_MS. Each instance's handler sends every record to the
//! receiver over the instance's one connection and waits for the answer, inside the record's
//! transaction (`max_batch_records = 1`, as handlers with outside effects are configured), so
//! an instance applies at most one record per DELAY_MS whatever its partition count: the model
//! of a pod whose outbound capacity is bounded (a client pool, a rate limit). The instances
//! run in this process, each with its own database pool, broker connection, receiver
//! connection and instance id; killing one drops it without a goodbye, like SIGKILL.
//!
//! Printed, for one and for three instances: records/s from the moment the instances hold
//! their shares until every record is applied (counted in `processed_events`, so only committed
//! work counts), the ratio three/one (target at least 2.5), and the physical floor: the
//! receiver's capacity for that many connections, `instances × 1000 / DELAY_MS` records/s.
//! Then, with three instances under load, one is killed: the time until its partitions are
//! held by the others (bounded by the lease period plus a heartbeat) and until every record is
//! applied. Nothing is asserted; read the ratios.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use stream::broker::{BrokerConfig, BrokerLog};
use stream::consumer::{
    Consumer, ConsumerConfig, Handler, HandlerError, HandlerOutcome, LeaseConfig,
};
use stream::log::{LogRecord, LogWriter, OutgoingRecord};
use stream::nats_process::NatsServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 6;

fn usage() -> ! {
    eprintln!(
        "usage: elastic_bench [RECORDS=1200] [DELAY_MS=10] [ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres] [LEASE_TTL_MS=10000]\n\
         Measures one vs three consumer instances sharing six partitions by leases, with a \n\
         handler that waits DELAY_MS on a local receiver per record; see the source's header."
    );
    std::process::exit(2)
}

/// Sends each record's event id to the receiver over this instance's one connection and
/// waits for the answer.
struct IoHandler {
    name: String,
    connection: tokio::sync::Mutex<BufStream<TcpStream>>,
}

impl Handler for IoHandler {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(
        &self,
        _txn: &sea_orm::DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        let mut connection = self.connection.lock().await;
        let id = stream::consumer::event_id(record)
            .map_err(|e| HandlerError::permanent(anyhow::anyhow!(e)))?;
        connection
            .write_all(format!("{id}\n").as_bytes())
            .await
            .map_err(HandlerError::transient)?;
        connection.flush().await.map_err(HandlerError::transient)?;
        let mut answer = String::new();
        connection
            .read_line(&mut answer)
            .await
            .map_err(HandlerError::transient)?;
        Ok(HandlerOutcome::Applied)
    }
}

/// A TCP server that answers every line after `delay`; returns its address.
async fn slow_receiver(delay: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut socket = BufStream::new(socket);
                let mut line = String::new();
                while socket.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                    tokio::time::sleep(delay).await;
                    if socket.write_all(b"ok\n").await.is_err() || socket.flush().await.is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    address
}

struct Bench {
    db: DatabaseConnection,
    url: String,
    broker: BrokerConfig,
    receiver: std::net::SocketAddr,
    ttl: Duration,
}

/// One running instance: dropping the handle's task kills it (no lease release).
struct Instance {
    task: JoinHandle<Result<(), stream::consumer::ConsumerError>>,
    stop: stream::lifecycle::CancellationToken,
}

impl Bench {
    async fn start_instance(&self, consumer: &str, topic: &str, id: &str) -> Instance {
        let connection = BufStream::new(TcpStream::connect(self.receiver).await.unwrap());
        let handler = IoHandler {
            name: consumer.to_owned(),
            connection: tokio::sync::Mutex::new(connection),
        };
        let config = ConsumerConfig {
            partitions: (0..PARTITIONS).collect(),
            lease: Some(LeaseConfig::new(id, self.ttl)),
            max_batch_records: 1,
            ..ConsumerConfig::new(consumer, topic)
        };
        let db = graphql::db::connect(&self.url).await.unwrap();
        let log = BrokerLog::connect(&self.broker).await.unwrap();
        let stop = stream::lifecycle::CancellationToken::new();
        let consumer = Consumer::new(db, log, handler, config);
        let task = tokio::spawn(consumer.run(stop.clone().cancelled_owned()));
        Instance { task, stop }
    }

    async fn scalar(&self, sql: String) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    async fn applied(&self, consumer: &str) -> i64 {
        self.scalar(format!(
            "SELECT COUNT(*) FROM processed_events WHERE consumer = '{consumer}'"
        ))
        .await
    }

    /// Live leases per owner.
    async fn shares(&self, consumer: &str) -> BTreeMap<String, i64> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!(
                    "SELECT owner, COUNT(*) AS n FROM consumer_leases WHERE consumer = '{consumer}' \
                     AND owner IS NOT NULL AND expires_at_ms > {} GROUP BY owner",
                    chrono::Utc::now().timestamp_millis()
                ),
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "owner").unwrap(),
                    r.try_get::<i64>("", "n").unwrap(),
                )
            })
            .collect()
    }

    async fn wait_for_shares(&self, consumer: &str, want: &BTreeMap<String, i64>) -> Duration {
        let started = Instant::now();
        while &self.shares(consumer).await != want {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "leases never settled to {want:?}: {:?}",
                self.shares(consumer).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    async fn wait_applied(&self, consumer: &str, n: i64) {
        while self.applied(consumer).await < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Produces `n` records with CloudEvent ids onto `topic`, spread over its partitions.
    async fn produce(&self, topic: &str, n: usize) {
        let log = BrokerLog::connect(&self.broker).await.unwrap();
        let mut groups: BTreeMap<i32, Vec<OutgoingRecord>> = BTreeMap::new();
        for i in 0..n {
            let key = uuid::Uuid::now_v7().to_string();
            let event = stream::CloudEvent::new(
                "taskstream.bench.happened",
                key.clone(),
                chrono::Utc::now(),
                serde_json::json!({ "n": i }),
            );
            let p = stream::partitioner::partition_for_key(key.as_bytes(), PARTITIONS);
            groups.entry(p).or_default().push(OutgoingRecord {
                key,
                value: Some(serde_json::to_vec(&event).unwrap()),
                headers: stream::outbox::event_headers(&event),
                timestamp: event.time,
            });
        }
        for (p, records) in groups {
            log.produce(topic, p, records).await.unwrap();
        }
    }

    /// Starts `count` instances, waits until they hold equal shares, produces `records` and
    /// measures until all are applied. Returns the rate and the running instances.
    async fn run(&self, name: &str, count: usize, records: usize) -> (f64, Vec<Instance>) {
        let topic = format!("bench-{name}");
        let log = BrokerLog::connect(&self.broker).await.unwrap();
        log.ensure_topics(&[topic.as_str()]).await.unwrap();
        let mut instances = Vec::new();
        let mut want = BTreeMap::new();
        for k in 0..count {
            let id = format!("{name}-{k}");
            instances.push(self.start_instance(name, &topic, &id).await);
            want.insert(id, i64::from(PARTITIONS) / count as i64);
        }
        self.wait_for_shares(name, &want).await;
        let started = Instant::now();
        self.produce(&topic, records).await;
        self.wait_applied(name, records as i64).await;
        let rate = records as f64 / started.elapsed().as_secs_f64();
        (rate, instances)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        usage();
    }
    let number = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|s| s.parse().unwrap_or_else(|_| usage()))
            .unwrap_or(default)
    };
    let records = number(0, 1200) as usize;
    let delay = Duration::from_millis(number(1, 10));
    let admin = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let ttl = Duration::from_millis(number(3, 10_000));

    let name = format!(
        "elastic_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let admin_db = sea_orm::Database::connect(&admin).await?;
    admin_db
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = match admin.rfind('/') {
        Some(slash) => format!("{}/{name}", &admin[..slash]),
        None => usage(),
    };
    let db = graphql::db::connect(&url).await?;
    graphql::db::migrate(&db).await?;
    let nats = NatsServer::start().await?;
    let mut config = stream::nats::NatsConfig::from_url(&nats.url())?;
    config.partitions = PARTITIONS;
    let bench = Bench {
        db,
        url,
        broker: BrokerConfig::Nats(config),
        receiver: slow_receiver(delay).await,
        ttl,
    };
    println!(
        "{records} records over {PARTITIONS} partitions (NATS JetStream), a {delay:?} receiver, \
         PostgreSQL, lease period {ttl:?}"
    );

    let (one, instances) = bench.run("one", 1, records).await;
    for i in instances {
        i.stop.cancel();
        i.task.await??;
    }
    let (three, mut instances) = bench.run("three", 3, records).await;
    let per_instance = 1000.0 / delay.as_secs_f64() / 1000.0;
    let floor = |n: f64| n * per_instance;
    println!();
    println!(
        "{:<34} {:>12} {:>16} {:>10}",
        "", "records/s", "floor (records/s)", "of floor"
    );
    println!(
        "{:<34} {one:>12.0} {:>16.0} {:>10.2}",
        "one instance (6 partitions)",
        floor(1.0),
        one / floor(1.0)
    );
    println!(
        "{:<34} {three:>12.0} {:>16.0} {:>10.2}",
        "three instances (2 partitions each)",
        floor(3.0),
        three / floor(3.0)
    );
    println!("three / one: {:.2} (target >= 2.5)", three / one);

    // Kill one of the three under load.
    let topic = "bench-three";
    let before = bench.applied("three").await;
    bench.produce(topic, records).await;
    bench
        .wait_applied("three", before + records as i64 / 3)
        .await;
    let killed = instances.remove(1);
    let killed_at = Instant::now();
    killed.task.abort();
    let survivors: BTreeMap<String, i64> = [("three-0".to_owned(), 3), ("three-2".to_owned(), 3)]
        .into_iter()
        .collect();
    let takeover = bench.wait_for_shares("three", &survivors).await;
    bench.wait_applied("three", before + records as i64).await;
    let done = killed_at.elapsed();
    println!(
        "after killing one of three under load: its partitions held by the others after {:.1} s \
         (lease period {:.1} s, heartbeat {:.1} s); all {records} records applied {:.1} s after the kill",
        takeover.as_secs_f64(),
        ttl.as_secs_f64(),
        (ttl / 3).as_secs_f64(),
        done.as_secs_f64()
    );
    for i in instances {
        i.stop.cancel();
        i.task.await??;
    }
    bench.db.close().await?;
    admin_db
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await?;
    drop(nats);
    Ok(())
}
