//! Settings of the NATS JetStream transport: where the servers are, how to authenticate, and the
//! streams Taskstream creates when they are missing.

use std::path::PathBuf;
use std::time::Duration;

/// How a [`super::NatsLog`] connects and which streams it creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`, or `host:4222`), tried in order.
    pub servers: Vec<String>,
    /// How to authenticate (besides credentials inside the URL, which async-nats also honours).
    pub auth: NatsAuth,
    /// TLS towards the servers, when set.
    pub tls: Option<NatsTls>,
    /// First token of every subject and first part of every stream name: `taskstream`, so that
    /// one NATS account can hold several Taskstream installations under different prefixes.
    pub prefix: String,
    /// Partitions of each topic Taskstream creates when missing (one stream per partition).
    /// Existing topics keep their count; every key is partitioned by murmur2 over it.
    pub partitions: i32,
    /// Replicas of each created stream: 1 for a single server, 3 in a production cluster.
    pub replicas: usize,
    /// How long a created stream keeps a message (JetStream `max_age`); zero keeps them forever.
    pub max_age: Duration,
    /// The most bytes a created stream keeps (oldest dropped first); `-1` for no limit.
    pub max_bytes: i64,
    /// How long the servers remember a message id to drop a republished duplicate.
    pub duplicate_window: Duration,
    /// Keep created streams in memory instead of files (tests and throwaway installations).
    pub memory_storage: bool,
    /// Bound on connecting to a server.
    pub connect_timeout: Duration,
    /// Bound on each JetStream request (stream management, publish acknowledgements).
    pub request_timeout: Duration,
    /// The connection's name, as the server's monitoring shows it.
    pub client_name: String,
}

/// Credentials beyond the URL.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum NatsAuth {
    /// No credentials, or only those inside the URL.
    #[default]
    None,
    /// A `.creds` file (user JWT and NKey seed), as `nsc` writes them.
    CredentialsFile(PathBuf),
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
}

/// TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NatsTls {
    /// PEM file of the CA that signed the servers' certificates; the system's roots otherwise.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Why a NATS setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NatsConfigError {
    #[error("NATS_URL is empty; give one or more server URLs like nats://127.0.0.1:4222")]
    NoServers,
    #[error(
        "NATS_URL entry {0:?} is not a server URL: expected nats://host:port, tls://host:port or \
         host:port"
    )]
    BadServer(String),
    #[error(
        "NATS_STREAM_PREFIX {0:?} must be 1 to 32 characters of letters, digits, `-` and `_` (it \
         starts every subject and stream name)"
    )]
    BadPrefix(String),
}

impl Default for NatsConfig {
    fn default() -> NatsConfig {
        NatsConfig {
            servers: Vec::new(),
            auth: NatsAuth::None,
            tls: None,
            prefix: "taskstream".to_owned(),
            partitions: 3,
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: -1,
            duplicate_window: Duration::from_secs(120),
            memory_storage: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            client_name: "taskstream".to_owned(),
        }
    }
}

impl NatsConfig {
    /// Defaults with `servers` parsed from a comma-separated NATS_URL.
    pub fn from_url(url: &str) -> Result<NatsConfig, NatsConfigError> {
        Ok(NatsConfig {
            servers: parse_servers(url)?,
            ..NatsConfig::default()
        })
    }

    /// Checks the prefix (servers are checked by [`parse_servers`]).
    pub fn validate(&self) -> Result<(), NatsConfigError> {
        if self.servers.is_empty() {
            return Err(NatsConfigError::NoServers);
        }
        let prefix_ok = (1..=32).contains(&self.prefix.len())
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            return Err(NatsConfigError::BadPrefix(self.prefix.clone()));
        }
        Ok(())
    }

    /// The subject partition `partition` of `topic` is published on:
    /// `<prefix>.<topic>.<partition>` (`taskstream.task-events.0`, `taskstream.task-events.dlq.2`).
    pub fn subject(&self, topic: &str, partition: i32) -> String {
        format!("{}.{topic}.{partition}", self.prefix)
    }

    /// The stream holding partition `partition` of `topic`: `<prefix>-<topic>-<partition>`, with
    /// the topic's dots (not allowed in stream names) as underscores
    /// (`taskstream-task-events-0`, `taskstream-task-events_dlq-2`).
    pub fn stream_name(&self, topic: &str, partition: i32) -> String {
        format!("{}-{}-{partition}", self.prefix, topic.replace('.', "_"))
    }

    /// The partition of `topic` that `stream` holds, if it is one of that topic's streams.
    pub fn partition_of(&self, topic: &str, stream: &str) -> Option<i32> {
        let head = format!("{}-{}-", self.prefix, topic.replace('.', "_"));
        let number = stream.strip_prefix(&head)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if number.len() > 1 && number.starts_with('0') {
            return None;
        }
        number.parse().ok()
    }
}

/// Parses a comma-separated list of server URLs: `nats://host:port`, `tls://host:port`, or
/// `host:port` (scheme `nats://`), optionally with `user:password@` before the host.
pub fn parse_servers(list: &str) -> Result<Vec<String>, NatsConfigError> {
    let servers: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if servers.is_empty() {
        return Err(NatsConfigError::NoServers);
    }
    for server in &servers {
        let parsed =
            server_url(server).ok_or_else(|| NatsConfigError::BadServer(server.clone()))?;
        let scheme_ok = matches!(parsed.scheme(), "nats" | "tls");
        let host_ok = parsed.host_str().is_some_and(|h| !h.is_empty());
        let bare = parsed.path().is_empty() || parsed.path() == "/";
        if !scheme_ok || !host_ok || !bare || parsed.query().is_some() {
            return Err(NatsConfigError::BadServer(server.clone()));
        }
    }
    Ok(servers)
}

/// A server entry as a URL (scheme `nats://` when it names none).
fn server_url(server: &str) -> Option<url::Url> {
    if server.contains("://") {
        url::Url::parse(server).ok()
    } else {
        url::Url::parse(&format!("nats://{server}")).ok()
    }
}

/// The `host:port` a server entry names (port 4222, NATS's, when it names none).
pub fn host_port(server: &str) -> Option<String> {
    let url = server_url(server)?;
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port().unwrap_or(4222)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_are_parsed_and_bad_entries_named() {
        assert_eq!(
            parse_servers(" nats://a:4222, b:4223 ,tls://c:1").unwrap(),
            vec!["nats://a:4222", "b:4223", "tls://c:1"]
        );
        assert_eq!(parse_servers(" , "), Err(NatsConfigError::NoServers));
        for bad in [
            "http://a:4222",
            "nats://",
            "nats://a:1/path",
            "a b",
            "nats://a:x",
        ] {
            assert_eq!(
                parse_servers(bad),
                Err(NatsConfigError::BadServer(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_and_port_default_to_nats_port() {
        assert_eq!(host_port("nats://u:p@a:1").as_deref(), Some("a:1"));
        assert_eq!(host_port("b").as_deref(), Some("b:4222"));
        assert_eq!(host_port("tls://c:7").as_deref(), Some("c:7"));
    }

    #[test]
    fn prefixes_are_checked() {
        let mut config = NatsConfig::from_url("a:1").unwrap();
        assert_eq!(config.validate(), Ok(()));
        for bad in ["", "a.b", "a*", "a b", &"x".repeat(33)] {
            config.prefix = bad.to_owned();
            assert!(config.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subjects_and_stream_names_map_topics_and_partitions() {
        let config = NatsConfig::default();
        assert_eq!(config.subject("task-events", 2), "taskstream.task-events.2");
        assert_eq!(
            config.subject("task-events.dlq", 0),
            "taskstream.task-events.dlq.0"
        );
        assert_eq!(
            config.stream_name("task-events.dlq", 1),
            "taskstream-task-events_dlq-1"
        );
        assert_eq!(
            config.partition_of("task-events", "taskstream-task-events-12"),
            Some(12)
        );
        for other in [
            "taskstream-task-events_dlq-1",
            "taskstream-task-events-",
            "taskstream-task-events-01",
            "taskstream-task-events-1x",
            "other-task-events-1",
        ] {
            assert_eq!(config.partition_of("task-events", other), None, "{other}");
        }
    }
}
