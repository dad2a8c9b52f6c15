//! Live fan-out: one task change delivered to many WebSocket subscribers, against a peer run
//! side by side, and the gateway's memory while the sockets stay connected.
//!
//! ```sh
//! cargo build --release -p graphql --bin taskstream --example fanout_bench
//! target/release/examples/fanout_bench [SOCKETS] [CHANGES]
//! ```
//!
//! 1. Taskstream: the real `taskstream` binary (beside this program, or `TASKSTREAM_BIN`) in
//!    embedded mode on a temporary SQLite database. SOCKETS (default 1,000) graphql-transport-ws
//!    clients of one user each subscribe to `taskChanged { kind task { id title } }`; then
//!    CHANGES (default 20) times, one `updateTask` (a rename of the same task, so the database
//!    does not grow) is sent over HTTP and the time until each socket receives the change is
//!    measured from just before the request (so it includes the mutation, the commit, the live
//!    consumer and the fan-out).
//! 2. Peer: a minimal axum WebSocket server in this process that forwards one JSON message
//!    through a `tokio::sync::broadcast` to the same number of sockets (no GraphQL, no
//!    database, no auth): the floor for pushing one message to that many sockets here.
//!
//! It prints p50, p99 and max delivery latency of both and the p99 ratio, and the gateway's
//! resident memory (VmRSS) before the sockets connect, once connected, after every change and
//! after an idle pause (flat means no growth per change while connected). Targets: p99 under
//! 100 ms; memory flat. Nothing is asserted: these machines are shared and noisy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/gateway.rs"]
mod gateway;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use gateway::Gateway;

const SECRET: &str = "a-fanout-benchmark-secret-long-enough";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let sockets: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let changes: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    println!("live fan-out: {sockets} WebSocket subscribers, {changes} changes");

    let (ours, memory) = taskstream(sockets, changes).await?;
    let peer = peer(sockets, changes).await?;

    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>9}",
        "delivery latency", "p50 ms", "p99 ms", "max ms"
    );
    report("Taskstream (HTTP mutation → socket)", &ours);
    report("peer (broadcast → socket)", &peer);
    let p99 = |l: &[f64]| percentile(l, 0.99).max(0.001);
    println!();
    println!(
        "p99 ratio Taskstream/peer: {:.2}   target: Taskstream p99 < 100 ms ({})",
        p99(&ours) / p99(&peer),
        if percentile(&ours, 0.99) < 100.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!();
    println!("gateway resident memory (VmRSS):");
    for (when, kib) in &memory {
        println!("  {when:<34} {:>8.1} MiB", *kib as f64 / 1024.0);
    }
    let connected = memory.iter().find(|(w, _)| w == "connected").map(|m| m.1);
    let last = memory.last().map(|m| m.1);
    if let (Some(a), Some(b)) = (connected, last) {
        println!(
            "  growth from connected to the end: {:+.1} MiB over {changes} changes",
            (b - a) as f64 / 1024.0
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ Taskstream

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn taskstream(
    sockets: usize,
    changes: usize,
) -> anyhow::Result<(Vec<f64>, Vec<(String, u64)>)> {
    let gateway = Gateway::start(SECRET, &[("WS_MAX_SUBSCRIPTIONS", "5".to_owned())]).await?;
    let (pid, port) = (gateway.pid(), gateway.port);
    let (base, token) = (gateway.base.clone(), gateway.token.clone());
    let http = reqwest::Client::new();
    // Every change renames one task, so the database does not grow between measurements
    // (memory growth would then be the gateway's, not SQLite's page cache).
    let send = |query: String| {
        let http = http.clone();
        let (base, token) = (base.clone(), token.clone());
        async move {
            let response: serde_json::Value = http
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(response["errors"].is_null(), "{response}");
            response
        }
    };
    let created =
        send(r#"mutation { createTask(input: { title: "fan-out" }) { id } }"#.to_owned()).await;
    let task_id = created["data"]["createTask"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let mutate = || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        send(format!(
            r#"mutation {{ updateTask(id: "{task_id}", input: {{ title: "fan-out {n}" }}) {{ id }} }}"#
        ))
    };
    mutate().await; // the user row and a warm database
    let mut memory = vec![("before the sockets connect".to_owned(), rss_kib(pid))];

    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let url = format!("ws://127.0.0.1:{port}/graphql/ws");
    for _ in 0..sockets {
        let mut request = url.clone().into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
        socket.send(Message::Text(init.to_string().into())).await?;
        let subscribe = json!({ "id": "1", "type": "subscribe",
            "payload": { "query": "subscription { taskChanged { kind task { id title } } }" } });
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && text.contains("\"next\"")
                    && tx.send(Instant::now()).is_err()
                {
                    break;
                }
            }
        });
    }
    // Warm-up changes until every socket has its subscription registered.
    loop {
        mutate().await;
        let got = collect(&mut rx, sockets, Duration::from_secs(3)).await;
        drain(&mut rx);
        if got == sockets {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drain(&mut rx);
    memory.push(("connected".to_owned(), rss_kib(pid)));

    let mut latencies = Vec::with_capacity(sockets * changes);
    for round in 0..changes {
        let sent = Instant::now();
        mutate().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = 0;
        while got < sockets {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(at)) => {
                    latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    got += 1;
                }
                _ => break,
            }
        }
        anyhow::ensure!(
            got == sockets,
            "change {round}: only {got} of {sockets} sockets received it"
        );
        memory.push((format!("after change {}", round + 1), rss_kib(pid)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    memory.push(("after 5 s idle, still connected".to_owned(), rss_kib(pid)));
    // Keep the first, connected, every fifth change and the last two rows.
    let keep: Vec<(String, u64)> = memory
        .iter()
        .enumerate()
        .filter(|(i, (w, _))| *i < 2 || i % 5 == 0 || *i + 2 >= memory.len() || w == "connected")
        .map(|(_, m)| m.clone())
        .collect();
    drop(gateway);
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, keep))
}

async fn collect(rx: &mut mpsc::UnboundedReceiver<Instant>, want: usize, wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    let mut got = 0;
    while got < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(_)) => got += 1,
            _ => break,
        }
    }
    got
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Instant>) {
    while rx.try_recv().is_ok() {}
}

// ------------------------------------------------------------------ peer

async fn peer(sockets: usize, changes: usize) -> anyhow::Result<Vec<f64>> {
    let (fanout, _) = broadcast::channel::<Arc<str>>(1024);
    let server_fanout = fanout.clone();
    let app = axum::Router::new().route(
        "/ws",
        axum::routing::get(move |upgrade: WebSocketUpgrade| {
            let mut rx = server_fanout.subscribe();
            async move {
                upgrade.on_upgrade(move |mut socket| async move {
                    while let Ok(text) = rx.recv().await {
                        if socket
                            .send(AxumMessage::Text(text.as_ref().into()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    for _ in 0..sockets {
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if matches!(message, Message::Text(_)) && tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
    }
    while fanout.receiver_count() < sockets {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let payload: Arc<str> =
        json!({ "id": "1", "type": "next", "payload": { "data": { "taskChanged": {
        "kind": "CREATED", "task": { "id": uuid::Uuid::now_v7(), "title": "fan-out" } } } } })
        .to_string()
        .into();
    let mut latencies = Vec::with_capacity(sockets * changes);
    for _ in 0..changes {
        let sent = Instant::now();
        fanout.send(Arc::clone(&payload))?;
        for _ in 0..sockets {
            let at = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await?
                .expect("a socket ended");
            latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

// ------------------------------------------------------------------ report

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn report(name: &str, latencies: &[f64]) {
    println!(
        "{:<34} {:>9.1} {:>9.1} {:>9.1}",
        name,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
}
