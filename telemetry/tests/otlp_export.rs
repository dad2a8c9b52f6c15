//! The OTLP exporters against collectors on loopback that speak TLS: gRPC and HTTPS, both with
//! mutual TLS and signed by a private CA made for each run (rcgen). Spans arrive when the CA
//! and the client identity are configured; without them nothing is sent, the flush reports
//! the failure and the process carries on, as it does when the collector is down. (Plaintext
//! export over both protocols is tested end to end in `graphql/tests/observability/`.)
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use telemetry::{ClientIdentity, OtlpConfig, OtlpProtocol};

/// Span names a collector received.
type Seen = Arc<Mutex<Vec<String>>>;

fn names(request: ExportTraceServiceRequest) -> Vec<String> {
    request
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|span| span.name)
        .collect()
}

/// A private CA, a server certificate for `localhost` and `127.0.0.1`, and a client
/// certificate, written as PEM files into a directory of their own.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("otlp-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |sans: Vec<String>, file: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        };
        leaf(
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            "server",
        );
        leaf(vec!["exporter.test".to_owned()], "client");
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }

    fn client_identity(&self) -> ClientIdentity {
        ClientIdentity {
            certificate: self.path("client.pem"),
            key: self.path("client.key"),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `serve` on a thread with a runtime of its own (the exporters block; the collector
/// must not share their thread), returning the address it listens on.
fn spawn_collector<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener).await;
        });
    });
    rx.recv().unwrap()
}

struct GrpcCollector {
    seen: Seen,
    /// When set, each request's `grpc-encoding` is recorded here.
    encodings: Option<Arc<Mutex<Vec<String>>>>,
}

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if let Some(encodings) = &self.encodings {
            let encoding = request
                .metadata()
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity");
            encodings.lock().unwrap().push(format!("grpc {encoding}"));
        }
        self.seen
            .lock()
            .unwrap()
            .extend(names(request.into_inner()));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A gRPC collector that requires a client certificate signed by the PKI's CA.
fn grpc_collector(pki: &Pki, seen: Seen) -> SocketAddr {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            pki.read("server.pem"),
            pki.read("server.key"),
        ))
        .client_ca_root(Certificate::from_pem(pki.read("ca.pem")));
    spawn_collector(move |listener| async move {
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(TraceServiceServer::new(GrpcCollector {
                seen,
                encodings: None,
            }))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    })
}

/// Plaintext collectors that take gzip bodies: a gRPC one, and an OTLP/HTTP one that records
/// each request's `content-encoding` and inflates gzip bodies.
fn plain_gzip_collectors(
    seen: Seen,
    encodings: Arc<Mutex<Vec<String>>>,
) -> (SocketAddr, SocketAddr) {
    let (grpc_seen, grpc_encodings) = (seen.clone(), encodings.clone());
    let grpc = spawn_collector(move |listener| async move {
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(GrpcCollector {
                    seen: grpc_seen,
                    encodings: Some(grpc_encodings),
                })
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (seen, encodings) = (seen.clone(), encodings.clone());
                async move {
                    let encoding = headers
                        .get("content-encoding")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("identity")
                        .to_owned();
                    let body = if encoding == "gzip" {
                        use std::io::Read as _;
                        let mut out = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut out)
                            .unwrap();
                        out
                    } else {
                        body.to_vec()
                    };
                    encodings.lock().unwrap().push(encoding);
                    let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
                    seen.lock().unwrap().extend(names(request));
                    (
                        [("content-type", "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            },
        ),
    );
    let http = spawn_collector(move |listener| async move {
        axum::serve(listener, router).await.unwrap();
    });
    (grpc, http)
}

/// An OTLP/HTTP receiver behind TLS with the PKI's server certificate, requiring a client
/// certificate signed by the PKI's CA.
fn https_receiver(pki: &Pki, seen: Seen) -> SocketAddr {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_client_cert_verifier(client_verifier(pki))
    .with_single_cert(
        vec![CertificateDer::from_pem_slice(&pki.read("server.pem")).unwrap()],
        PrivateKeyDer::from_pem_slice(&pki.read("server.key")).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                seen.lock().unwrap().extend(names(request));
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    spawn_collector(move |tcp| async move {
        axum::serve(TlsListener { tcp, acceptor }, router)
            .await
            .unwrap();
    })
}

fn client_verifier(pki: &Pki) -> Arc<dyn rustls::server::danger::ClientCertVerifier> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&pki.read("ca.pem")).unwrap())
        .unwrap();
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap()
}

/// Accepts TCP connections and completes their TLS handshakes; failed handshakes (a client
/// that does not trust the certificate) are dropped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Exports one span named `name` through a provider built from `otlp` and flushes it: the
/// flush's outcome (an error when the export failed).
fn export_one(otlp: &OtlpConfig, name: &'static str) -> anyhow::Result<()> {
    let provider = telemetry::tracer_provider(otlp, "tls-test")?;
    provider.tracer("tls-test").in_span(name, |_| {});
    let flushed = provider.force_flush();
    let _ = provider.shutdown();
    flushed.map_err(|e| anyhow::anyhow!("{e}"))
}

fn config(endpoint: String, protocol: OtlpProtocol, ca: Option<&Path>) -> OtlpConfig {
    let mut otlp = OtlpConfig::new(endpoint, protocol);
    otlp.timeout = std::time::Duration::from_secs(5);
    otlp.tls.ca_certificate = ca.map(Path::to_path_buf);
    otlp
}

#[test]
fn grpc_export_reaches_a_mutual_tls_collector_signed_by_a_private_ca() {
    // Arrange
    let pki = Pki::new("grpc");
    let seen = Seen::default();
    let addr = grpc_collector(&pki, seen.clone());
    let mut otlp = config(
        format!("https://localhost:{}", addr.port()),
        OtlpProtocol::Grpc,
        Some(&pki.path("ca.pem")),
    );
    otlp.tls.client_identity = Some(pki.client_identity());

    // Act
    export_one(&otlp, "over mutual tls").unwrap();

    // Assert
    assert_eq!(*seen.lock().unwrap(), ["over mutual tls"]);
}

#[test]
fn grpc_export_without_the_ca_or_the_client_certificate_sends_nothing_and_reports_it() {
    // Arrange
    let pki = Pki::new("grpc-refused");
    let seen = Seen::default();
    let addr = grpc_collector(&pki, seen.clone());
    let endpoint = format!("https://localhost:{}", addr.port());
    let mut untrusted = config(endpoint.clone(), OtlpProtocol::Grpc, None);
    untrusted.tls.client_identity = Some(pki.client_identity());
    let anonymous = config(endpoint, OtlpProtocol::Grpc, Some(&pki.path("ca.pem")));

    // Act
    let without_ca = export_one(&untrusted, "untrusted server");
    let without_identity = export_one(&anonymous, "anonymous client");

    // Assert
    let without_ca = without_ca.unwrap_err().to_string();
    assert!(without_ca.contains("UnknownIssuer"), "{without_ca}");
    assert!(
        without_identity.is_err(),
        "mutual TLS let an anonymous client in"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn https_export_reaches_a_mutual_tls_receiver_only_with_the_ca_and_the_identity() {
    // Arrange
    let pki = Pki::new("https");
    let seen = Seen::default();
    let addr = https_receiver(&pki, seen.clone());
    let endpoint = format!("https://localhost:{}/v1/traces", addr.port());
    let default_roots = config(endpoint.clone(), OtlpProtocol::HttpProtobuf, None);
    let anonymous = config(
        endpoint,
        OtlpProtocol::HttpProtobuf,
        Some(&pki.path("ca.pem")),
    );
    let mut trusted = anonymous.clone();
    trusted.tls.client_identity = Some(pki.client_identity());

    // Act
    let untrusted_server = export_one(&default_roots, "untrusted server");
    let anonymous_client = export_one(&anonymous, "anonymous client");
    export_one(&trusted, "over mutual tls").unwrap();

    // Assert
    let untrusted_server = untrusted_server.unwrap_err().to_string();
    assert!(
        untrusted_server.contains("UnknownIssuer"),
        "{untrusted_server}"
    );
    assert!(
        anonymous_client.is_err(),
        "mutual TLS let an anonymous client in"
    );
    assert_eq!(*seen.lock().unwrap(), ["over mutual tls"]);
}

#[test]
fn a_collector_that_is_down_fails_the_flush_without_hanging_either_protocol() {
    // Arrange: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let grpc = config(format!("http://127.0.0.1:{port}"), OtlpProtocol::Grpc, None);
    let http = config(
        format!("http://127.0.0.1:{port}/v1/traces"),
        OtlpProtocol::HttpProtobuf,
        None,
    );

    // Act
    let over_grpc = export_one(&grpc, "nobody listens");
    let over_http = export_one(&http, "nobody listens");

    // Assert: each flush returns (within the export timeout) and reports the failure.
    assert!(over_grpc.is_err(), "gRPC export to a closed port succeeded");
    assert!(over_http.is_err(), "HTTP export to a closed port succeeded");
}

#[test]
fn gzip_compressed_exports_arrive_over_both_protocols() {
    // Arrange
    let seen = Seen::default();
    let encodings = Arc::new(Mutex::new(Vec::new()));
    let (grpc_addr, http_addr) = plain_gzip_collectors(seen.clone(), encodings.clone());
    let mut grpc = config(format!("http://{grpc_addr}"), OtlpProtocol::Grpc, None);
    grpc.gzip = true;
    let mut http = config(
        format!("http://{http_addr}/v1/traces"),
        OtlpProtocol::HttpProtobuf,
        None,
    );
    http.gzip = true;

    // Act
    export_one(&grpc, "gzip over grpc").unwrap();
    export_one(&http, "gzip over http").unwrap();

    // Assert
    assert_eq!(*seen.lock().unwrap(), ["gzip over grpc", "gzip over http"]);
    assert_eq!(*encodings.lock().unwrap(), ["grpc gzip", "gzip"]);
}
