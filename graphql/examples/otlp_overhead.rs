//! What trace export costs a request: the same `createTask` load against the gateway with span
//! export off, over OTLP http/protobuf and over OTLP gRPC, measured one after another in one run.
//!
//! ```sh
//! cargo build --release -p graphql --bin taskstream --example otlp_overhead
//! target/release/examples/otlp_overhead [REQUESTS] [CONCURRENCY]
//! ```
//!
//! This process starts two sink collectors on loopback that decode and count spans and nothing
//! else: an OTLP/gRPC one (tonic, the generated `TraceService` server) and an OTLP/HTTP one
//! (axum, `POST /v1/traces`). Then the real `taskstream` binary (beside this program, or
//! `TASKSTREAM_BIN`) is run three times, each in embedded mode on a fresh temporary SQLite
//! database:
//!
//! 1. peer: no `OTEL_*` variables, so no export;
//! 2. `OTEL_EXPORTER_OTLP_ENDPOINT` set to the HTTP sink (http/protobuf, the default);
//! 3. `OTEL_EXPORTER_OTLP_ENDPOINT` set to the gRPC sink with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`.
//!
//! Each run warms up with 200 mutations, then sends REQUESTS (default 3,000) `createTask`
//! mutations over HTTP with CONCURRENCY (default 8) in flight, measuring each request's latency
//! and the throughput; then the gateway gets SIGTERM and is waited for (it flushes its spans on
//! exit) and the spans its collector received are read (warm-up included). It prints
//! requests/s, p50, p99 and spans received per mode, and each export mode's throughput and p99
//! against the peer. Target: export costs under ~10% of throughput. Nothing is asserted: these
//! machines are shared and noisy, and the load generator and the sinks share them with the
//! gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/gateway.rs"]
mod gateway;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::json;

use gateway::Gateway;

const SECRET: &str = "an-otlp-overhead-benchmark-secret-long-enough";
const WARM_UP: usize = 200;

struct Outcome {
    mode: &'static str,
    per_second: f64,
    latencies: Vec<f64>,
    spans: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(3000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    println!(
        "OTLP export overhead: {requests} createTask mutations, {concurrency} in flight \
         ({WARM_UP} warm-up)"
    );

    let spans = Arc::new(AtomicU64::new(0));
    let grpc_port = grpc_sink(spans.clone()).await?;
    let http_port = http_sink(spans.clone()).await?;
    let modes: [(&'static str, Vec<(&str, String)>); 3] = [
        ("off (peer)", vec![]),
        (
            "http/protobuf",
            vec![(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{http_port}"),
            )],
        ),
        (
            "grpc",
            vec![
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{grpc_port}"),
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            ],
        ),
    ];
    let mut outcomes = Vec::new();
    for (mode, env) in modes {
        spans.store(0, Ordering::SeqCst);
        // The gateway has exited, so its last export was answered, and the sinks count
        // spans before they answer.
        let (per_second, latencies) = run(&env, requests, concurrency).await?;
        let outcome = Outcome {
            mode,
            per_second,
            latencies,
            spans: spans.load(Ordering::SeqCst),
        };
        println!(
            "  {mode}: {:.0} requests/s, {} spans",
            outcome.per_second, outcome.spans
        );
        outcomes.push(outcome);
    }

    println!();
    println!(
        "{:<16} {:>11} {:>9} {:>9} {:>10} {:>10}",
        "export", "requests/s", "p50 ms", "p99 ms", "spans", "spans/req"
    );
    for o in &outcomes {
        println!(
            "{:<16} {:>11.0} {:>9.2} {:>9.2} {:>10} {:>10.2}",
            o.mode,
            o.per_second,
            percentile(&o.latencies, 0.5),
            percentile(&o.latencies, 0.99),
            o.spans,
            o.spans as f64 / (requests + WARM_UP) as f64
        );
    }
    println!();
    let peer = &outcomes[0];
    let peer_p99 = percentile(&peer.latencies, 0.99).max(0.001);
    for o in &outcomes[1..] {
        let throughput = o.per_second / peer.per_second;
        println!(
            "{}: {throughput:.2}x throughput, p99 {:.2}x   target: ≥ 0.90x throughput ({})",
            o.mode,
            percentile(&o.latencies, 0.99) / peer_p99,
            if throughput >= 0.9 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ the gateway under load

/// One gateway run: warm-up, then the measured load. Returns requests/s and the sorted
/// latencies (ms); the gateway has exited (after SIGTERM) when it returns.
async fn run(
    env: &[(&str, String)],
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let gateway = Gateway::start(SECRET, env).await?;
    let http = reqwest::Client::new();
    let (base, token) = (gateway.base.clone(), gateway.token.clone());
    let url = format!("{base}/graphql");

    load(&http, &url, &token, WARM_UP, concurrency).await?;
    let started = Instant::now();
    let mut latencies = load(&http, &url, &token, requests, concurrency).await?;
    let per_second = requests as f64 / started.elapsed().as_secs_f64();

    // The gateway drains and flushes its spans before it exits.
    gateway.terminate().await?;
    latencies.sort_by(f64::total_cmp);
    Ok((per_second, latencies))
}

/// Sends `count` `createTask` mutations with `concurrency` in flight; each one's latency (ms).
async fn load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<f64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, url, token, next) =
            (http.clone(), url.to_owned(), token.to_owned(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return anyhow::Ok(latencies);
                }
                let query = format!(
                    r#"mutation {{ createTask(input: {{ title: "otlp {n}" }}) {{ id }} }}"#
                );
                let sent = Instant::now();
                let response: serde_json::Value = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "query": query }))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                anyhow::ensure!(response["errors"].is_null(), "{response}");
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(worker) = workers.join_next().await {
        all.extend(worker??);
    }
    Ok(all)
}

// ------------------------------------------------------------------ sink collectors

fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

/// An OTLP/gRPC traces collector that counts spans; returns its port.
async fn grpc_sink(spans: Arc<AtomicU64>) -> anyhow::Result<u16> {
    struct Sink(Arc<AtomicU64>);
    #[tonic::async_trait]
    impl TraceService for Sink {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.0
                .fetch_add(span_count(request.get_ref()), Ordering::SeqCst);
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Sink(spans)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    Ok(port)
}

/// An OTLP/HTTP traces receiver (`POST /v1/traces`, protobuf) that counts spans; returns its
/// port.
async fn http_sink(spans: Arc<AtomicU64>) -> anyhow::Result<u16> {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let spans = spans.clone();
            async move {
                match ExportTraceServiceRequest::decode(body) {
                    Ok(request) => {
                        spans.fetch_add(span_count(&request), Ordering::SeqCst);
                        (
                            axum::http::StatusCode::OK,
                            [("content-type", "application/x-protobuf")],
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                    }
                    Err(e) => (
                        axum::http::StatusCode::BAD_REQUEST,
                        [("content-type", "text/plain")],
                        e.to_string().into_bytes(),
                    ),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

// ------------------------------------------------------------------ report

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}
