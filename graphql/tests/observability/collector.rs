//! OTLP collectors on loopback for the observability tests: an OTLP/HTTP receiver (axum) and
//! an OTLP/gRPC collector (tonic, the generated `TraceService` server), each flattening the
//! spans it receives, and the process's exporter pointed at one of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;

/// One exported span, flattened.
#[derive(Clone, Debug)]
pub(crate) struct SeenSpan {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

impl SeenSpan {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The process's span exporter, pointed at a collector on loopback; shared by the tests of
/// this file (one global `tracing` subscriber per process).
pub(crate) struct Exporter {
    protocol: telemetry::OtlpProtocol,
    telemetry: telemetry::Telemetry,
    pub seen: Arc<Mutex<Vec<SeenSpan>>>,
}

impl Exporter {
    /// Flushes and waits (60 s deadline) until `found` finds what it needs among the spans of
    /// `trace_id`; the trace is printed on failure.
    pub async fn wait_for<T>(
        &'static self,
        trace_id: &str,
        found: impl Fn(&[SeenSpan]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            tokio::task::spawn_blocking(move || self.telemetry.force_flush())
                .await
                .unwrap();
            let trace: Vec<SeenSpan> = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            if let Some(t) = found(&trace) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the trace never connected; spans of {trace_id}: {trace:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The process's exporter over `protocol`, to an OTLP/HTTP receiver (axum) or an OTLP/gRPC
/// collector (tonic, the generated `TraceService` server) on loopback, each on a runtime of
/// its own so it outlives any one test's.
pub(crate) fn exporter(protocol: telemetry::OtlpProtocol) -> &'static Exporter {
    static EXPORTER: std::sync::OnceLock<Exporter> = std::sync::OnceLock::new();
    let exporter = EXPORTER.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                match protocol {
                    telemetry::OtlpProtocol::HttpProtobuf => {
                        axum::serve(listener, receiver(sink)).await.unwrap();
                    }
                    telemetry::OtlpProtocol::Grpc => {
                        tonic::transport::Server::builder()
                            .add_service(TraceServiceServer::new(GrpcCollector { sink }))
                            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(
                                listener,
                            ))
                            .await
                            .unwrap();
                    }
                }
            });
        });
        let addr = rx.recv().unwrap();
        let endpoint = match protocol {
            telemetry::OtlpProtocol::HttpProtobuf => format!("http://{addr}/v1/traces"),
            telemetry::OtlpProtocol::Grpc => format!("http://{addr}"),
        };
        let telemetry = telemetry::init(&telemetry::TelemetryConfig {
            service_name: "taskstream-test".to_owned(),
            log_filter: "warn".to_owned(),
            log_format: telemetry::LogFormat::Text,
            otlp: Some(telemetry::OtlpConfig::new(endpoint, protocol)),
        })
        .unwrap();
        Exporter {
            protocol,
            telemetry,
            seen,
        }
    });
    assert_eq!(
        exporter.protocol, protocol,
        "one exporter per process: run these tests with nextest"
    );
    exporter
}

/// The spans of one export request, flattened.
fn flatten(request: ExportTraceServiceRequest) -> Vec<SeenSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(SeenSpan {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(a.value.as_ref())))
                        .collect(),
                });
            }
        }
    }
    out
}

/// A minimal OTLP/HTTP traces receiver: decodes each protobuf `ExportTraceServiceRequest`.
fn receiver(sink: Arc<Mutex<Vec<SeenSpan>>>) -> axum::Router {
    axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                sink.lock().unwrap().extend(flatten(request));
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    )
}

/// A minimal OTLP/gRPC traces collector.
struct GrpcCollector {
    sink: Arc<Mutex<Vec<SeenSpan>>>,
}

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.sink
            .lock()
            .unwrap()
            .extend(flatten(request.into_inner()));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}
