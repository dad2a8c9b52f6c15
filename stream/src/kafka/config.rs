//! How to reach the Kafka-protocol brokers: addresses, timeouts, compression, SASL and TLS.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::{Credentials, SaslConfig};

use crate::log::LogError;

/// Settings of a [`super::KafkaLog`]. Build it with [`KafkaConfig::from_brokers`] and adjust the
/// public fields.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// The client id the brokers see in their logs and quotas.
    pub client_id: String,
    /// Partitions of topics created by [`super::KafkaLog::ensure_topics`]. Three lets three
    /// subscriber instances share a topic; a topic's partition count is fixed once events are
    /// keyed to it (a change would move keys to other partitions and break per-task order).
    pub partitions: i32,
    /// Replication factor of created topics: 1 for a single dev broker, 3 in production.
    pub replication_factor: i16,
    /// How long one request may take once sent. rskafka 0.6 has no per-request timeout, so each
    /// whole operation is bounded instead, by `retry_deadline + request_timeout` (plus the
    /// fetch's `max_wait`); past it the operation fails with [`LogError::Unavailable`].
    pub request_timeout: Duration,
    /// Bound on [`super::KafkaLog::connect`] (connection, version handshake, SASL, first
    /// metadata request, including retries).
    pub connect_timeout: Duration,
    /// Bound on rskafka's internal retries. Its default backoff has no deadline, so a produce to a
    /// dead broker would retry forever instead of reaching the caller's own backoff loop.
    pub retry_deadline: Duration,
    /// Compression of produced batches. Gzip: event JSON compresses well and every broker and
    /// client supports it; the other codecs are not compiled in.
    pub compression: Compression,
    /// Largest fetch response asked for, in bytes. A broker still returns a first batch larger
    /// than this, so it bounds memory per fetch, not record size.
    pub fetch_max_bytes: i32,
    /// SASL authentication, if the brokers require it.
    pub sasl: Option<SaslSettings>,
    /// TLS, if the brokers' listeners require it.
    pub tls: Option<TlsSettings>,
}

/// Compression of produced record batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    #[default]
    Gzip,
}

/// SASL credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

/// The SASL mechanisms rskafka implements (OAUTHBEARER is left out: no token source here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

/// TLS towards the brokers (rustls, ring).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the CA certificate(s) to trust. `None` trusts the Mozilla root set
    /// (`webpki-roots`), which suits managed brokers with public certificates.
    pub ca_file: Option<PathBuf>,
}

/// A malformed broker list.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KafkaConfigError {
    #[error("KAFKA_BROKERS is empty: expected host:port[,host:port...]")]
    Empty,
    #[error("KAFKA_BROKERS entry {0:?} has no port: expected host:port")]
    MissingPort(String),
    #[error("KAFKA_BROKERS entry {0:?} has no host: expected host:port")]
    MissingHost(String),
    #[error(
        "KAFKA_BROKERS entry {entry:?} has an invalid port {port:?}: expected a number 1-65535"
    )]
    InvalidPort { entry: String, port: String },
}

impl KafkaConfig {
    /// The defaults, for the brokers in `csv` (`host:port,host:port`, spaces allowed around
    /// entries; an IPv6 host is written in brackets, `[::1]:9092`).
    pub fn from_brokers(csv: &str) -> Result<KafkaConfig, KafkaConfigError> {
        Ok(KafkaConfig::new(parse_brokers(csv)?))
    }

    /// The defaults, for already validated `brokers`.
    pub fn new(brokers: Vec<String>) -> KafkaConfig {
        KafkaConfig {
            brokers,
            client_id: "taskstream".to_owned(),
            partitions: 3,
            replication_factor: 1,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            retry_deadline: Duration::from_secs(10),
            compression: Compression::Gzip,
            fetch_max_bytes: 1024 * 1024,
            sasl: None,
            tls: None,
        }
    }

    /// The wall-clock bound of one operation, `extra` being the time the broker may
    /// legitimately hold it (a fetch's `max_wait`).
    pub(super) fn operation_bound(&self, extra: Duration) -> Duration {
        self.retry_deadline + self.request_timeout + extra
    }

    pub(super) fn rskafka_compression(&self) -> rskafka::client::partition::Compression {
        match self.compression {
            Compression::None => rskafka::client::partition::Compression::NoCompression,
            Compression::Gzip => rskafka::client::partition::Compression::Gzip,
        }
    }

    pub(super) fn rskafka_sasl(&self) -> Option<SaslConfig> {
        self.sasl.as_ref().map(|sasl| {
            let credentials = Credentials::new(sasl.username.clone(), sasl.password.clone());
            match sasl.mechanism {
                SaslMechanism::Plain => SaslConfig::Plain(credentials),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
            }
        })
    }

    /// The rustls client configuration, if TLS is on. A missing or unreadable CA file is a
    /// configuration error, reported as [`LogError::Fatal`].
    pub(super) fn rustls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, LogError> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                use rustls::pki_types::{CertificateDer, pem::PemObject};
                let fatal = |e: &dyn fmt::Display| {
                    LogError::Fatal(format!("Kafka TLS CA file {}: {e}", path.display()))
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| fatal(&e))? {
                    roots
                        .add(cert.map_err(|e| fatal(&e))?)
                        .map_err(|e| fatal(&e))?;
                }
                if roots.is_empty() {
                    return Err(fatal(&"no PEM certificate in it"));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LogError::Fatal(format!("Kafka TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }
}

impl fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Splits and validates `host:port,host:port`.
pub fn parse_brokers(csv: &str) -> Result<Vec<String>, KafkaConfigError> {
    let entries: Vec<&str> = csv
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(KafkaConfigError::Empty);
    }
    entries
        .into_iter()
        .map(|entry| {
            let (host, port) = entry
                .rsplit_once(':')
                .filter(|(host, _)| !host.ends_with(':') && !host.ends_with('['))
                .ok_or_else(|| KafkaConfigError::MissingPort(entry.to_owned()))?;
            // `[::1]` without a port splits inside the brackets.
            if host.starts_with('[') && !host.ends_with(']') {
                return Err(KafkaConfigError::MissingPort(entry.to_owned()));
            }
            if host.is_empty() || host == "[]" {
                return Err(KafkaConfigError::MissingHost(entry.to_owned()));
            }
            match port.parse::<u16>() {
                Ok(port) if port > 0 => Ok(format!("{host}:{port}")),
                _ => Err(KafkaConfigError::InvalidPort {
                    entry: entry.to_owned(),
                    port: port.to_owned(),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_are_split_trimmed_and_kept_in_order() {
        let config = KafkaConfig::from_brokers(" a:9092, b.example:19092 ,[::1]:9093").unwrap();
        assert_eq!(config.brokers, ["a:9092", "b.example:19092", "[::1]:9093"]);
        assert_eq!(config.partitions, 3);
        assert_eq!(config.compression, Compression::Gzip);
    }

    #[test]
    fn bad_broker_lists_name_the_variable() {
        for (input, expected) in [
            ("", KafkaConfigError::Empty),
            (" , ", KafkaConfigError::Empty),
            ("host", KafkaConfigError::MissingPort("host".into())),
            ("[::1]", KafkaConfigError::MissingPort("[::1]".into())),
            ("::1", KafkaConfigError::MissingPort("::1".into())),
            (":9092", KafkaConfigError::MissingHost(":9092".into())),
            (
                "host:abc",
                KafkaConfigError::InvalidPort {
                    entry: "host:abc".into(),
                    port: "abc".into(),
                },
            ),
            (
                "a:1,host:0",
                KafkaConfigError::InvalidPort {
                    entry: "host:0".into(),
                    port: "0".into(),
                },
            ),
        ] {
            let error = KafkaConfig::from_brokers(input).unwrap_err();
            assert_eq!(error, expected, "input {input:?}");
            assert!(error.to_string().contains("KAFKA_BROKERS"), "{error}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mut config = KafkaConfig::from_brokers("a:1").unwrap();
        config.sasl = Some(SaslSettings {
            mechanism: SaslMechanism::ScramSha512,
            username: "relay".into(),
            password: "hunter2".into(),
        });
        let debug = format!("{config:?}");
        assert!(
            debug.contains("relay") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn tls_with_a_missing_ca_file_is_a_configuration_error() {
        let mut config = KafkaConfig::from_brokers("a:1").unwrap();
        config.tls = Some(TlsSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
        });
        assert!(matches!(config.rustls(), Err(LogError::Fatal(m)) if m.contains("ca.pem")));
        config.tls = Some(TlsSettings::default());
        assert!(config.rustls().unwrap().is_some());
    }
}
