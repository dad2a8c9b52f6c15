//! What to log and where to export spans. Logging comes from the binaries' flags; export from
//! the standard OpenTelemetry variables, so a collector is configured the same way as for any
//! other OpenTelemetry service:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL, `/v1/traces` is appended) or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (full URL): export is on when either is set;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` / `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: `http/protobuf`
//!   (default) or `grpc` (needs the `otlp-grpc` feature);
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: the resource (the binary's name when
//!   unset);
//! - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no export;
//! - read by the SDK and exporter themselves: `OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_COMPRESSION`, `OTEL_TRACES_SAMPLER`,
//!   `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` and their `_TRACES_` variants.

use std::collections::HashMap;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, one line per event with its span context (the default).
    Text,
    /// One JSON object per line, with the current span and the span list (production).
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(value: &str) -> anyhow::Result<LogFormat> {
        match value {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => anyhow::bail!("log format must be `text` or `json`, not {other:?}"),
        }
    }
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    HttpProtobuf,
    Grpc,
}

impl OtlpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::Grpc => "grpc",
        }
    }

    /// An `OTEL_EXPORTER_OTLP_PROTOCOL` value. `http/json` is refused rather than silently
    /// sent as protobuf.
    pub fn parse(value: &str) -> anyhow::Result<OtlpProtocol> {
        match value.trim() {
            "" | "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/json" => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/json is not supported; use http/protobuf \
                 (the collector's OTLP/HTTP port accepts both) or grpc"
            ),
            other => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc, not {other:?}"
            ),
        }
    }
}

/// Where and how spans are exported.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// The full traces URL (`http://host:4318/v1/traces`). `None`: the exporter resolves it
    /// from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` itself.
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    /// Extra request headers (tests); in production the exporter reads
    /// `OTEL_EXPORTER_OTLP_HEADERS` itself.
    pub headers: HashMap<String, String>,
}

/// Everything [`crate::init`] needs.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// `service.name` unless `OTEL_SERVICE_NAME` (or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
    pub service_name: String,
    /// A `tracing` filter for log lines (`info`, `subscribers=debug,info`).
    pub log_filter: String,
    pub log_format: LogFormat,
    /// `None`: no span export.
    pub otlp: Option<OtlpConfig>,
}

impl TelemetryConfig {
    /// Log settings from the binary's flags, export settings from the `OTEL_*` variables.
    pub fn from_env(
        service_name: &str,
        log_filter: &str,
        log_format: &str,
    ) -> anyhow::Result<TelemetryConfig> {
        Ok(TelemetryConfig {
            service_name: service_name.to_owned(),
            log_filter: log_filter.to_owned(),
            log_format: LogFormat::parse(log_format)?,
            otlp: otlp_from_env(&|name| std::env::var(name).ok())?,
        })
    }
}

/// Whether `OTEL_SERVICE_NAME` or `service.name` in `OTEL_RESOURCE_ATTRIBUTES` names the
/// service (then the binary's default name is not applied).
pub(crate) fn service_name_from_env() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        })
}

/// The export settings from the environment (`env` looks a variable up).
fn otlp_from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<OtlpConfig>> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
    {
        return Ok(None);
    }
    if get("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
    {
        return Ok(None);
    }
    let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    Ok(Some(OtlpConfig {
        endpoint: None,
        protocol: OtlpProtocol::parse(&protocol)?,
        headers: HashMap::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn export_is_off_without_an_endpoint_and_when_disabled() {
        assert!(otlp_from_env(&env_of(&[])).unwrap().is_none());
        let disabled = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert!(otlp_from_env(&disabled).unwrap().is_none());
        let none = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ]);
        assert!(otlp_from_env(&none).unwrap().is_none());
    }

    #[test]
    fn protocol_defaults_to_http_protobuf_and_the_traces_variable_wins() {
        let base = otlp_from_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]))
            .unwrap()
            .unwrap();
        assert_eq!(base.protocol, OtlpProtocol::HttpProtobuf);
        let grpc = otlp_from_env(&env_of(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(grpc.protocol, OtlpProtocol::Grpc);
    }

    #[test]
    fn unsupported_protocols_are_refused_by_name() {
        for bad in ["http/json", "udp"] {
            let err = otlp_from_env(&env_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", bad),
            ]))
            .unwrap_err()
            .to_string();
            assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{bad}: {err}");
        }
    }

    #[test]
    fn log_formats_are_text_or_json() {
        assert_eq!(LogFormat::parse("json").unwrap(), LogFormat::Json);
        assert!(LogFormat::parse("xml").is_err());
    }
}
