//! The OTLP span exporters behind [`crate::init`]: http/protobuf (blocking reqwest) and gRPC
//! (tonic), with TLS files from [`OtlpTls`].
//!
//! The SDK's batch processor exports from a plain thread of its own, polling each export with
//! a minimal executor. The HTTP exporter's blocking client brings its own runtime, but tonic
//! needs a tokio reactor for its connection: [`OnOwnRuntime`] gives the gRPC exporter a
//! single-threaded runtime that exists only for it, so exporting never depends on (or
//! blocks) the application's runtime, and keeps working while that runtime shuts down.

use std::path::Path;

use anyhow::Context as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::{OtlpConfig, OtlpTls};

/// The http/protobuf exporter. The exporter resolves the URL from the `OTEL_*` variables when
/// [`OtlpConfig::endpoint`] is `None`.
pub(crate) fn http(otlp: &OtlpConfig) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(otlp.timeout);
    if let Some(endpoint) = &otlp.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    if otlp.gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    if otlp.tls != OtlpTls::default() {
        builder = builder.with_http_client(http_client(otlp)?);
    }
    builder
        .build()
        .context("cannot build the OTLP/HTTP exporter")
}

/// A blocking client that trusts the extra CA and presents the client identity. Built on a
/// thread of its own: the blocking client starts (and on drop stops) a runtime, which tokio
/// forbids inside another runtime's context.
fn http_client(otlp: &OtlpConfig) -> anyhow::Result<reqwest::blocking::Client> {
    let files = TlsFiles::load(&otlp.tls)?;
    let timeout = otlp.timeout;
    std::thread::spawn(move || -> anyhow::Result<reqwest::blocking::Client> {
        let mut builder = reqwest::blocking::Client::builder().timeout(timeout);
        for certificate in files.ca_certificates()? {
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(identity) = files.identity()? {
            builder = builder.identity(identity);
        }
        builder.build().context("cannot build the OTLP/HTTP client")
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the OTLP/HTTP client panicked"))?
}

/// The TLS files' contents, read and checked at start so a wrong path or a file that is not
/// PEM stops the process with the variable's name instead of failing every export.
struct TlsFiles {
    ca: Option<Vec<u8>>,
    /// Certificate chain and private key.
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsFiles {
    fn load(tls: &OtlpTls) -> anyhow::Result<TlsFiles> {
        let files = TlsFiles {
            ca: tls
                .ca_certificate
                .as_deref()
                .map(|path| read_pem(path, "OTEL_EXPORTER_OTLP_CERTIFICATE"))
                .transpose()?,
            identity: tls
                .client_identity
                .as_ref()
                .map(|id| -> anyhow::Result<_> {
                    Ok((
                        read_pem(&id.certificate, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")?,
                        read_pem(&id.key, "OTEL_EXPORTER_OTLP_CLIENT_KEY")?,
                    ))
                })
                .transpose()?,
        };
        files.ca_certificates()?;
        files.identity()?;
        Ok(files)
    }

    fn ca_certificates(&self) -> anyhow::Result<Vec<reqwest::Certificate>> {
        let Some(pem) = &self.ca else {
            return Ok(Vec::new());
        };
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .context("OTEL_EXPORTER_OTLP_CERTIFICATE is not a PEM certificate bundle")?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "OTEL_EXPORTER_OTLP_CERTIFICATE holds no PEM certificate"
        );
        Ok(certificates)
    }

    fn identity(&self) -> anyhow::Result<Option<reqwest::Identity>> {
        let Some((certificate, key)) = &self.identity else {
            return Ok(None);
        };
        let mut pem = certificate.clone();
        pem.push(b'\n');
        pem.extend_from_slice(key);
        reqwest::Identity::from_pem(&pem)
            .context(
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY are not \
                 a PEM certificate and its private key",
            )
            .map(Some)
    }
}

/// The gRPC exporter on a runtime of its own. `https://` endpoints use TLS (the built-in web
/// roots plus [`OtlpTls::ca_certificate`]); `http://` ones plaintext HTTP/2.
pub(crate) fn grpc(
    otlp: &OtlpConfig,
) -> anyhow::Result<OnOwnRuntime<opentelemetry_otlp::SpanExporter>> {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};

    let endpoint = otlp
        .endpoint
        .clone()
        .unwrap_or_else(|| "http://localhost:4317".to_owned());
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .with_timeout(otlp.timeout)
        .with_endpoint(endpoint.clone());
    if otlp.gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    if endpoint
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        let files = TlsFiles::load(&otlp.tls)?;
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = files.ca {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((certificate, key)) = files.identity {
            tls = tls.identity(Identity::from_pem(certificate, key));
        }
        builder = builder.with_tls_config(tls);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the OTLP/gRPC exporter's runtime")?;
    // The channel connects lazily; its background task is spawned on the runtime entered here.
    let built = {
        let _entered = runtime.enter();
        builder.build()
    };
    match built {
        Ok(exporter) => Ok(OnOwnRuntime { exporter, runtime }),
        Err(e) => {
            // Dropping a runtime inside the caller's async context would panic.
            runtime.shutdown_background();
            Err(e).context("cannot build the OTLP/gRPC exporter")
        }
    }
}

/// Reads a PEM file named by `variable`, naming both on failure.
fn read_pem(path: &Path, variable: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{variable}: cannot read {}", path.display()))
}

/// A span exporter whose exports run to completion on `runtime`, a current-thread runtime
/// owned by the exporter. Only for the batch processor, which calls `export` from its own
/// thread: `block_on` inside another runtime's worker would panic.
#[derive(Debug)]
pub(crate) struct OnOwnRuntime<E> {
    exporter: E,
    runtime: tokio::runtime::Runtime,
}

impl<E: SpanExporter> SpanExporter for OnOwnRuntime<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self.runtime.block_on(self.exporter.export(batch));
        std::future::ready(result)
    }

    fn shutdown_with_timeout(&mut self, timeout: std::time::Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.exporter.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientIdentity, OtlpProtocol};

    #[test]
    fn unreadable_tls_files_are_named_with_their_variable() {
        let mut otlp = OtlpConfig::new("https://collector:4317", OtlpProtocol::Grpc);
        otlp.tls.ca_certificate = Some("/nonexistent/ca.pem".into());
        let err = format!("{:#}", grpc(&otlp).unwrap_err());
        assert!(err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{err}");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");

        let mut otlp = OtlpConfig::new(
            "https://collector:4318/v1/traces",
            OtlpProtocol::HttpProtobuf,
        );
        otlp.tls.client_identity = Some(ClientIdentity {
            certificate: "/nonexistent/me.pem".into(),
            key: "/nonexistent/me.key".into(),
        });
        let err = format!("{:#}", http(&otlp).unwrap_err());
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_pem_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("telemetry-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let mut otlp = OtlpConfig::new(
            "https://collector:4318/v1/traces",
            OtlpProtocol::HttpProtobuf,
        );
        otlp.tls.ca_certificate = Some(junk);
        let err = format!("{:#}", http(&otlp).unwrap_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{err}");
    }
}
