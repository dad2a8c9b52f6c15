//! Taskstream's observability plumbing, shared by every binary: log output (text or JSON),
//! OpenTelemetry trace export over OTLP, W3C trace context for event headers, and the process's
//! Prometheus metrics.
//!
//! It deliberately knows nothing of tasks, GraphQL, the database or the broker: the crates that
//! do record into [`metrics`] and carry [`trace_context`] strings; this crate only defines
//! the instruments and the wiring. Serving `/metrics` over HTTP is the binaries' job (the
//! gateway's router, `subscribers::metrics_server` elsewhere).
//!
//! Module map:
//! - [`config`]: what to log and where to export, read from `LOG_*` flags and `OTEL_*`
//!   variables;
//! - [`trace_context`]: `traceparent` of the current span, and continuing a trace from one;
//! - [`metrics`]: every metric the processes export, and the Prometheus text rendering;
//! - `exporter`: the OTLP exporters (http/protobuf and gRPC) and their TLS files;
//! - [`init`] (here): installs the global `tracing` subscriber and the OTLP exporter.

pub mod config;
mod exporter;
pub mod metrics;
pub mod trace_context;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use config::{ClientIdentity, LogFormat, OtlpConfig, OtlpProtocol, OtlpTls, TelemetryConfig};
pub use trace_context::{continue_trace, current_traceparent};

/// Whether spans are exported, so per-record propagation work can be skipped when not.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// True once [`init`] installed an OTLP exporter in this process.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The installed telemetry. Keep it alive for the life of the process: dropping it flushes and
/// shuts down the span exporter (pending spans are sent, bounded by the exporter's timeout).
#[must_use = "dropping the guard shuts the span exporter down"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("exporting", &self.provider.is_some())
            .finish()
    }
}

impl Telemetry {
    /// Sends every finished span now (blocking until the exporter answered or timed out).
    /// Call it from a thread that may block (`spawn_blocking` in async code).
    pub fn force_flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "flushing spans failed");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                eprintln!("telemetry: shutting the span exporter down failed: {e}");
            }
        }
    }
}

/// Spans of these targets never reach the exporter: the exporter's own HTTP client would
/// otherwise trace its own exports.
const EXPORT_FILTER: &str = "info,h2=off,hyper=off,hyper_util=off,reqwest=off,tonic=off,tower=off,\
                             opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off";

/// Dependencies whose own logs repeat what Taskstream already reports once, with backoff:
/// rskafka logs three lines (INFO and WARN) per reconnect attempt, several times a second
/// while a broker is down. They log errors only, unless the filter names them.
const QUIET_DEPENDENCIES: [&str; 1] = ["rskafka"];

/// `filter` with `,<dependency>=error` added for each [`QUIET_DEPENDENCIES`] entry it does not
/// mention.
fn with_quiet_dependencies(filter: &str) -> String {
    let mut out = filter.to_owned();
    for dependency in QUIET_DEPENDENCIES {
        if !filter.contains(dependency) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(dependency);
            out.push_str("=error");
        }
    }
    out
}

/// Installs the global `tracing` subscriber: log lines to stderr (filtered by
/// [`TelemetryConfig::log_filter`], text or JSON) and, when [`TelemetryConfig::otlp`] is set,
/// spans at INFO and above exported over OTLP with the batch processor. Errors when a
/// subscriber is already installed or the configuration cannot work.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    let log_filter =
        tracing_subscriber::EnvFilter::try_new(with_quiet_dependencies(&config.log_filter))
            .with_context(|| format!("invalid log filter {:?}", config.log_filter))?;
    let fmt = match config.log_format {
        // Colours only on a terminal: a log collector reading text lines gets plain text.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(log_filter);
    let provider = config
        .otlp
        .as_ref()
        .map(|otlp| tracer_provider(otlp, &config.service_name))
        .transpose()?;
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("taskstream"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(tracing_subscriber::EnvFilter::new(EXPORT_FILTER))
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .context("a tracing subscriber is already installed")?;
    if let (Some(otlp), Some(_)) = (&config.otlp, &provider) {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::info!(
            service = %config.service_name,
            protocol = otlp.protocol.as_str(),
            endpoint = otlp.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"),
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry { provider })
}

/// The tracer provider [`init`] installs: spans batched and exported per `otlp`, under the
/// resource `service_name` (unless `OTEL_SERVICE_NAME` says otherwise). Public for tests and
/// embedders that manage their own `tracing` subscriber; errors name the setting at fault.
pub fn tracer_provider(otlp: &OtlpConfig, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !config::service_name_from_env() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    Ok(match otlp.protocol {
        OtlpProtocol::HttpProtobuf => builder.with_batch_exporter(exporter::http(otlp)?),
        OtlpProtocol::Grpc => builder.with_batch_exporter(exporter::grpc(otlp)?),
    }
    .build())
}

/// A pseudonymous id for a user in traces and logs: the first 16 hex digits of SHA-256 of the
/// id. It links one user's requests without printing the id; it is not anonymous (an
/// attacker who can guess ids can hash them too), so traces stay access-controlled.
pub fn hash_user_id(user_id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(user_id.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod quiet_tests {
    use super::with_quiet_dependencies;

    #[test]
    fn noisy_dependencies_log_errors_only_unless_the_filter_names_them() {
        assert_eq!(with_quiet_dependencies("info"), "info,rskafka=error");
        assert_eq!(with_quiet_dependencies(""), "rskafka=error");
        assert_eq!(
            with_quiet_dependencies("info,rskafka=debug"),
            "info,rskafka=debug"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_hashes_are_stable_short_and_hide_the_id() {
        let h = hash_user_id("alice");
        assert_eq!(h.len(), 16);
        assert_eq!(h, hash_user_id("alice"));
        assert_ne!(h, hash_user_id("bob"));
        assert!(!h.contains("alice"));
    }
}
