//! The `KAFKA_*` flags (with environment fallbacks) shared by the gateway (and its relay) and
//! every subscriber binary, so one set of variables configures all of them. `KAFKA_BROKERS`
//! itself is each binary's own flag: the gateway treats it as optional (embedded mode without
//! it), the subscriber binaries require it.

use super::config::{Compression, KafkaConfig, SaslMechanism, SaslSettings, TlsSettings};

/// How to reach the brokers and create topics, beyond their addresses.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Partitions of each topic Taskstream creates at start-up when missing.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,

    /// Replication factor of the topics Taskstream creates (3 on a production cluster).
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i16,

    /// Compression of produced batches: `gzip` or `none`.
    #[arg(long, env = "KAFKA_COMPRESSION", default_value = "gzip", value_parser = ["gzip", "none"])]
    pub kafka_compression: String,

    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with KAFKA_SASL_USERNAME and
    /// KAFKA_SASL_PASSWORD).
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])]
    pub kafka_sasl_mechanism: Option<String>,

    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,

    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,

    /// Connect to the brokers over TLS.
    #[arg(long, env = "KAFKA_TLS")]
    pub kafka_tls: bool,

    /// PEM file of the CA that signed the brokers' certificates (implies KAFKA_TLS).
    #[arg(long, env = "KAFKA_TLS_CA_FILE")]
    pub kafka_tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for KafkaArgs {
    fn default() -> KafkaArgs {
        KafkaArgs {
            kafka_partitions: 3,
            kafka_replication_factor: 1,
            kafka_compression: "gzip".into(),
            kafka_sasl_mechanism: None,
            kafka_sasl_username: None,
            kafka_sasl_password: None,
            kafka_tls: false,
            kafka_tls_ca_file: None,
        }
    }
}

impl KafkaArgs {
    /// The transport configuration for `brokers`; errors name the variable.
    pub fn config(&self, brokers: &str) -> anyhow::Result<KafkaConfig> {
        let mut kafka = KafkaConfig::from_brokers(brokers)?;
        if self.kafka_partitions < 1 {
            anyhow::bail!("KAFKA_PARTITIONS must be at least 1");
        }
        if self.kafka_replication_factor < 1 {
            anyhow::bail!("KAFKA_REPLICATION_FACTOR must be at least 1");
        }
        kafka.partitions = self.kafka_partitions;
        kafka.replication_factor = self.kafka_replication_factor;
        kafka.compression = match self.kafka_compression.as_str() {
            "none" => Compression::None,
            _ => Compression::Gzip,
        };
        kafka.sasl = match &self.kafka_sasl_mechanism {
            None => None,
            Some(mechanism) => {
                let mechanism = match mechanism.as_str() {
                    "PLAIN" => SaslMechanism::Plain,
                    "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                    _ => SaslMechanism::ScramSha512,
                };
                let (Some(username), Some(password)) =
                    (&self.kafka_sasl_username, &self.kafka_sasl_password)
                else {
                    anyhow::bail!(
                        "KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                    );
                };
                Some(SaslSettings {
                    mechanism,
                    username: username.clone(),
                    password: password.clone(),
                })
            }
        };
        if self.kafka_tls || self.kafka_tls_ca_file.is_some() {
            kafka.tls = Some(TlsSettings {
                ca_file: self.kafka_tls_ca_file.clone(),
            });
        }
        Ok(kafka)
    }
}
