//! What to log and where to export spans. Logging comes from the binaries' flags; export from
//! the standard OpenTelemetry variables, so a collector is configured the same way as for any
//! other OpenTelemetry service:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL; for http/protobuf `/v1/traces` is appended) or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (full URL): export is on when either is set; both
//!   must be `http://` or `https://` URLs;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` / `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: `http/protobuf`
//!   (default) or `grpc`;
//! - `OTEL_EXPORTER_OTLP_TIMEOUT` / `_TRACES_TIMEOUT`: milliseconds per export (default 10 000);
//! - `OTEL_EXPORTER_OTLP_COMPRESSION` / `_TRACES_COMPRESSION`: `gzip`; unset for none (the
//!   exporter also reads the variable and refuses `none`, so it is refused here, by name);
//! - `OTEL_EXPORTER_OTLP_CERTIFICATE`, `_CLIENT_CERTIFICATE`, `_CLIENT_KEY` and their `_TRACES_`
//!   variants: PEM files for an `https://` collector signed by a private CA, and for mutual
//!   TLS;
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: the resource (the binary's name when
//!   unset);
//! - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no export;
//! - read by the SDK and exporter themselves: `OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` and their `_TRACES_`
//!   variants.

use std::path::PathBuf;
use std::time::Duration;

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
    /// The collector's URL: for http/protobuf the full traces URL
    /// (`http://host:4318/v1/traces`), for gRPC the server (`http://host:4317`). `None`: the
    /// HTTP exporter resolves it from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` itself (appending `/v1/traces` to the latter).
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    /// How long one export may take before it is abandoned (its spans are dropped and
    /// counted by the SDK); the collector being down never blocks the process longer.
    pub timeout: Duration,
    /// Gzip request bodies (both transports); the collector must accept it (the
    /// OpenTelemetry Collector does).
    pub gzip: bool,
    pub tls: OtlpTls,
}

/// The default per-export timeout, as the OpenTelemetry specification sets it.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl OtlpConfig {
    /// Export to `endpoint` over `protocol` with the default timeout and no extra TLS files.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig {
            endpoint: Some(endpoint.into()),
            protocol,
            timeout: DEFAULT_EXPORT_TIMEOUT,
            gzip: false,
            tls: OtlpTls::default(),
        }
    }
}

/// PEM files for TLS to the collector. Without them an `https://` collector is verified
/// against the built-in web PKI roots (webpki-roots), as browsers would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtlpTls {
    /// CA certificates trusted in addition to the built-in roots (a collector signed by a
    /// private CA).
    pub ca_certificate: Option<PathBuf>,
    /// The client certificate chain and its private key, for collectors that require mutual
    /// TLS.
    pub client_identity: Option<ClientIdentity>,
}

impl OtlpTls {
    fn is_set(&self) -> bool {
        self.ca_certificate.is_some() || self.client_identity.is_some()
    }
}

/// A client certificate (chain) and its key, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    pub certificate: PathBuf,
    pub key: PathBuf,
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

/// The export settings from the environment (`env` looks a variable up). Every error names the
/// variable at fault.
fn otlp_from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<OtlpConfig>> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    // The traces-specific variable wins over the general one; the name is kept for errors.
    let setting = |suffix: &str| {
        let specific = format!("OTEL_EXPORTER_OTLP_TRACES_{suffix}");
        let general = format!("OTEL_EXPORTER_OTLP_{suffix}");
        match get(&specific) {
            Some(value) => Some((specific, value)),
            None => get(&general).map(|value| (general, value)),
        }
    };
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
    {
        return Ok(None);
    }
    let Some((endpoint_var, endpoint)) = setting("ENDPOINT") else {
        return Ok(None);
    };
    let endpoint = endpoint.trim().to_owned();
    let scheme = endpoint
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let https = match scheme.as_deref() {
        Some("https") => true,
        Some("http") => false,
        _ => anyhow::bail!(
            "{endpoint_var} must be an http:// or https:// URL (like http://collector:4318), \
             not {endpoint:?}"
        ),
    };
    let protocol = setting("PROTOCOL").map(|(_, v)| v).unwrap_or_default();
    let protocol = OtlpProtocol::parse(&protocol)?;
    let timeout = match setting("TIMEOUT") {
        None => DEFAULT_EXPORT_TIMEOUT,
        Some((name, value)) => match value.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => anyhow::bail!(
                "{name} must be a positive number of milliseconds (like 10000), not {value:?}"
            ),
        },
    };
    let gzip = match setting("COMPRESSION") {
        None => false,
        Some((name, value)) => match value.trim() {
            "gzip" => true,
            other => anyhow::bail!(
                "{name} must be gzip, not {other:?} (leave it unset for no compression)"
            ),
        },
    };
    let file = |suffix: &str| setting(suffix).map(|(name, path)| (name, PathBuf::from(path)));
    let ca_certificate = file("CERTIFICATE");
    let client_identity = match (file("CLIENT_CERTIFICATE"), file("CLIENT_KEY")) {
        (None, None) => None,
        (Some((_, certificate)), Some((_, key))) => Some(ClientIdentity { certificate, key }),
        (Some((name, _)), None) | (None, Some((name, _))) => anyhow::bail!(
            "{name} is set without its pair: mutual TLS needs both \
             OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY"
        ),
    };
    let tls = OtlpTls {
        ca_certificate: ca_certificate.map(|(_, path)| path),
        client_identity,
    };
    if tls.is_set() && !https {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_CERTIFICATE / _CLIENT_CERTIFICATE / _CLIENT_KEY are set but \
             {endpoint_var} is {endpoint:?}: certificates only apply to an https:// collector"
        );
    }
    Ok(Some(OtlpConfig {
        // gRPC has no path to append, so both variables mean the same URL; the HTTP exporter
        // resolves its own (it appends /v1/traces to the general variable).
        endpoint: (protocol == OtlpProtocol::Grpc).then_some(endpoint),
        protocol,
        timeout,
        gzip,
        tls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: std::collections::HashMap<String, String> = vars
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
        assert_eq!(grpc.endpoint.as_deref(), Some("http://c:4317"));
        assert_eq!(grpc.timeout, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(grpc.tls, OtlpTls::default());
    }

    #[test]
    fn endpoints_must_be_http_or_https_urls() {
        for bad in ["collector:4317", "grpc://collector:4317", "ftp://c"] {
            let err = otlp_from_env(&env_of(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                "{bad}: {err}"
            );
        }
        let upper = otlp_from_env(&env_of(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "HTTPS://c:4318",
        )]));
        assert!(upper.unwrap().is_some());
    }

    #[test]
    fn timeouts_are_positive_milliseconds_named_when_wrong() {
        let with = |value: &str| {
            otlp_from_env(&env_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "9000"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", value),
            ]))
        };
        assert_eq!(
            with("2500").unwrap().unwrap().timeout,
            Duration::from_millis(2500)
        );
        for bad in ["0", "-1", "10s", "1.5"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(
                err.contains("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn compression_is_gzip_or_unset_and_named_when_wrong() {
        let with = |value: &str| {
            otlp_from_env(&env_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", value),
            ]))
        };
        assert!(with("gzip").unwrap().unwrap().gzip);
        let unset = otlp_from_env(&env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]));
        assert!(!unset.unwrap().unwrap().gzip);
        for bad in ["none", "zstd", "GZIP", "deflate"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(
                err.contains("OTEL_EXPORTER_OTLP_COMPRESSION"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn tls_files_need_https_and_client_files_come_in_pairs() {
        let https = otlp_from_env(&env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                "/etc/me.pem",
            ),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/me.key"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            https.tls,
            OtlpTls {
                ca_certificate: Some("/etc/ca.pem".into()),
                client_identity: Some(ClientIdentity {
                    certificate: "/etc/me.pem".into(),
                    key: "/etc/me.key".into(),
                }),
            }
        );
        let plain = otlp_from_env(&env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(plain.contains("https://"), "{plain}");
        let half = otlp_from_env(&env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/me.key"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(half.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"), "{half}");
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
