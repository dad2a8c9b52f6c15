//! The `NATS_*` flags (with environment fallbacks) shared by the gateway (and its relay) and
//! every subscriber binary. `NATS_URL` itself is each binary's own flag, next to
//! `KAFKA_BROKERS` (one of the two names the event log).

use std::path::PathBuf;
use std::time::Duration;

use super::config::{NatsAuth, NatsConfig, NatsTls};

/// How to authenticate to NATS and shape the streams Taskstream creates.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// A NATS credentials file (user JWT and NKey seed, as `nsc` writes them).
    #[arg(long, env = "NATS_CREDS_FILE", conflicts_with_all = ["nats_user", "nats_token"])]
    pub nats_creds_file: Option<PathBuf>,

    /// User name for NATS user/password authentication (with NATS_PASSWORD).
    #[arg(
        long,
        env = "NATS_USER",
        requires = "nats_password",
        conflicts_with = "nats_token"
    )]
    pub nats_user: Option<String>,

    #[arg(
        long,
        env = "NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub nats_password: Option<String>,

    /// Token for NATS token authentication.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// Connect to NATS over TLS (also implied by a tls:// URL or any NATS_TLS_* file).
    #[arg(long, env = "NATS_TLS")]
    pub nats_tls: bool,

    /// PEM file of the CA that signed the NATS servers' certificates.
    #[arg(long, env = "NATS_TLS_CA_FILE")]
    pub nats_tls_ca_file: Option<PathBuf>,

    /// PEM client certificate, for servers that verify clients (with NATS_TLS_KEY_FILE).
    #[arg(long, env = "NATS_TLS_CERT_FILE", requires = "nats_tls_key_file")]
    pub nats_tls_cert_file: Option<PathBuf>,

    /// PEM key of NATS_TLS_CERT_FILE.
    #[arg(long, env = "NATS_TLS_KEY_FILE", requires = "nats_tls_cert_file")]
    pub nats_tls_key_file: Option<PathBuf>,

    /// First token of every subject and first part of every stream name (`<prefix>.<topic>.<p>`
    /// in stream `<prefix>-<topic>-<p>`).
    #[arg(long, env = "NATS_STREAM_PREFIX", default_value = "taskstream")]
    pub nats_stream_prefix: String,

    /// Partitions of each topic Taskstream creates at start-up when missing (one JetStream
    /// stream per partition). Existing topics keep theirs.
    #[arg(long, env = "NATS_PARTITIONS", default_value_t = 3)]
    pub nats_partitions: i32,

    /// Replicas of each stream Taskstream creates (3 on a production cluster).
    #[arg(long, env = "NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,

    /// How long created streams keep messages, in hours (0: forever).
    #[arg(long, env = "NATS_MAX_AGE_HOURS", default_value_t = 168)]
    pub nats_max_age_hours: u64,

    /// The most bytes each created stream keeps, oldest dropped first (-1: no limit).
    #[arg(long, env = "NATS_MAX_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub nats_max_bytes: i64,

    /// How long the servers remember a message id (the CloudEvent id) to drop a duplicate a
    /// restarted relay publishes again, in seconds.
    #[arg(long, env = "NATS_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    pub nats_duplicate_window_secs: u64,
}

impl Default for NatsArgs {
    fn default() -> NatsArgs {
        NatsArgs {
            nats_creds_file: None,
            nats_user: None,
            nats_password: None,
            nats_token: None,
            nats_tls: false,
            nats_tls_ca_file: None,
            nats_tls_cert_file: None,
            nats_tls_key_file: None,
            nats_stream_prefix: "taskstream".into(),
            nats_partitions: 3,
            nats_replicas: 1,
            nats_max_age_hours: 168,
            nats_max_bytes: -1,
            nats_duplicate_window_secs: 120,
        }
    }
}

impl NatsArgs {
    /// The transport configuration for the servers in `url`; errors name the variable.
    pub fn config(&self, url: &str) -> anyhow::Result<NatsConfig> {
        let mut nats = NatsConfig::from_url(url)?;
        if self.nats_partitions < 1 {
            anyhow::bail!("NATS_PARTITIONS must be at least 1");
        }
        if !(1..=5).contains(&self.nats_replicas) {
            anyhow::bail!("NATS_REPLICAS must be between 1 and 5 (JetStream's limit)");
        }
        if self.nats_max_bytes == 0 || self.nats_max_bytes < -1 {
            anyhow::bail!("NATS_MAX_BYTES must be -1 (no limit) or a positive number of bytes");
        }
        if self.nats_duplicate_window_secs == 0 {
            anyhow::bail!(
                "NATS_DUPLICATE_WINDOW_SECS must be at least 1: the relay relies on it to drop \
                 duplicates"
            );
        }
        let max_age = Duration::from_secs(self.nats_max_age_hours.saturating_mul(3600));
        let duplicate_window = Duration::from_secs(self.nats_duplicate_window_secs);
        if !max_age.is_zero() && duplicate_window > max_age {
            anyhow::bail!("NATS_DUPLICATE_WINDOW_SECS must not exceed NATS_MAX_AGE_HOURS");
        }
        nats.prefix = self.nats_stream_prefix.clone();
        nats.partitions = self.nats_partitions;
        nats.replicas = self.nats_replicas;
        nats.max_age = max_age;
        nats.max_bytes = self.nats_max_bytes;
        nats.duplicate_window = duplicate_window;
        nats.auth = match (&self.nats_creds_file, &self.nats_user, &self.nats_token) {
            (Some(file), _, _) => NatsAuth::CredentialsFile(file.clone()),
            (None, Some(user), _) => NatsAuth::UserPassword {
                user: user.clone(),
                password: self.nats_password.clone().unwrap_or_default(),
            },
            (None, None, Some(token)) => NatsAuth::Token(token.clone()),
            (None, None, None) => NatsAuth::None,
        };
        let tls_url = nats.servers.iter().any(|s| s.starts_with("tls://"));
        let client_cert = self
            .nats_tls_cert_file
            .clone()
            .zip(self.nats_tls_key_file.clone());
        if self.nats_tls || tls_url || self.nats_tls_ca_file.is_some() || client_cert.is_some() {
            nats.tls = Some(NatsTls {
                ca_file: self.nats_tls_ca_file.clone(),
                client_cert,
            });
        }
        nats.validate()?;
        Ok(nats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_the_documented_streams() {
        let config = NatsArgs::default().config("127.0.0.1:4222").unwrap();
        assert_eq!(config.partitions, 3);
        assert_eq!(config.replicas, 1);
        assert_eq!(config.max_age, Duration::from_secs(168 * 3600));
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        assert_eq!(config.auth, NatsAuth::None);
        assert_eq!(config.tls, None);
    }

    #[test]
    fn bad_settings_are_refused_naming_the_variable() {
        type Change = fn(&mut NatsArgs);
        let cases: [(&str, Change); 6] = [
            ("NATS_PARTITIONS", |a| a.nats_partitions = 0),
            ("NATS_REPLICAS", |a| a.nats_replicas = 7),
            ("NATS_MAX_BYTES", |a| a.nats_max_bytes = 0),
            ("NATS_DUPLICATE_WINDOW_SECS", |a| {
                a.nats_duplicate_window_secs = 0
            }),
            ("NATS_DUPLICATE_WINDOW_SECS", |a| {
                a.nats_max_age_hours = 1;
                a.nats_duplicate_window_secs = 7200;
            }),
            ("NATS_STREAM_PREFIX", |a| {
                a.nats_stream_prefix = "a.b".into()
            }),
        ];
        for (variable, change) in cases {
            let mut args = NatsArgs::default();
            change(&mut args);
            let error = args.config("127.0.0.1:4222").unwrap_err().to_string();
            assert!(error.contains(variable), "{variable}: {error}");
        }
        let error = NatsArgs::default()
            .config("http://x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("NATS_URL"), "{error}");
    }

    #[test]
    fn credentials_and_tls_are_taken_from_their_flags() {
        let args = NatsArgs {
            nats_user: Some("u".into()),
            nats_password: Some("p".into()),
            nats_tls_ca_file: Some("ca.pem".into()),
            ..NatsArgs::default()
        };
        let config = args.config("nats://a:1").unwrap();
        assert_eq!(
            config.auth,
            NatsAuth::UserPassword {
                user: "u".into(),
                password: "p".into()
            }
        );
        assert_eq!(config.tls.unwrap().ca_file, Some(PathBuf::from("ca.pem")));
        let tls = NatsArgs::default().config("tls://a:1").unwrap();
        assert!(tls.tls.is_some(), "a tls:// URL turns TLS on");
    }
}
