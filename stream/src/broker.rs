//! The broker of distributed mode, whichever it is: a Kafka-protocol cluster ([`crate::kafka`],
//! chosen by `KAFKA_BROKERS`) or NATS JetStream ([`crate::nats`], chosen by `NATS_URL`).
//! [`BrokerConfig`] is the choice, [`BrokerLog`] the connected log, which implements
//! [`LogReader`] and [`LogWriter`] by handing each call to its transport. With neither variable
//! set a process runs in embedded mode ([`crate::embedded`]) instead.
//!
//! It sits above the transports (it names both; they name neither it nor each other).

use std::time::Duration;

use crate::kafka::{KafkaArgs, KafkaConfig, KafkaLog};
use crate::lifecycle::CancellationToken;
use crate::log::{Fetched, LogError, LogReader, LogWriter, OutgoingRecord};
use crate::nats::{NatsArgs, NatsConfig, NatsLog};

/// Which broker to use, and how.
#[derive(Clone, Debug)]
pub enum BrokerConfig {
    Kafka(KafkaConfig),
    Nats(NatsConfig),
}

impl BrokerConfig {
    /// The broker named by `KAFKA_BROKERS` or `NATS_URL` (at most one of them), or `None` when
    /// neither is set (embedded mode). Errors name the variable.
    pub fn from_args(
        kafka_brokers: Option<&str>,
        kafka: &KafkaArgs,
        nats_url: Option<&str>,
        nats: &NatsArgs,
    ) -> anyhow::Result<Option<BrokerConfig>> {
        match (set(kafka_brokers), set(nats_url)) {
            (Some(_), Some(_)) => anyhow::bail!(
                "KAFKA_BROKERS and NATS_URL are both set: the event log is one broker, so set \
                 only one of them"
            ),
            (Some(brokers), None) => Ok(Some(BrokerConfig::Kafka(kafka.config(brokers)?))),
            (None, Some(url)) => Ok(Some(BrokerConfig::Nats(nats.config(url)?))),
            (None, None) => Ok(None),
        }
    }

    /// `Kafka brokers a:9092,b:9092` or `NATS servers nats://a:4222`, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            BrokerConfig::Kafka(kafka) => format!("Kafka brokers {}", kafka.brokers.join(",")),
            BrokerConfig::Nats(nats) => format!("NATS servers {}", nats.servers.join(",")),
        }
    }

    /// `kafka` or `nats`, as the metrics and `/readyz` name the transport.
    pub fn transport(&self) -> &'static str {
        match self {
            BrokerConfig::Kafka(_) => "kafka",
            BrokerConfig::Nats(_) => "nats",
        }
    }

    /// The `host:port` of the first broker or server.
    fn first_address(&self) -> Option<String> {
        match self {
            BrokerConfig::Kafka(kafka) => kafka.brokers.first().cloned(),
            BrokerConfig::Nats(nats) => crate::nats::config::host_port(nats.servers.first()?),
        }
    }

    /// Whether the first broker or server accepts a TCP connection within a second (for
    /// `/readyz`, which reports it without depending on it).
    pub async fn reachable(&self) -> bool {
        let Some(address) = self.first_address() else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(address)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

/// `value`, unless it is missing or blank.
fn set(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A connected broker log (boxed: the two clients differ much in size).
#[derive(Debug)]
pub enum BrokerLog {
    Kafka(Box<KafkaLog>),
    Nats(Box<NatsLog>),
}

/// `$call` on whichever log `$self` holds, bound as `$log`.
macro_rules! on_log {
    ($self:expr, $log:ident => $call:expr) => {
        match $self {
            BrokerLog::Kafka($log) => $call,
            BrokerLog::Nats($log) => $call,
        }
    };
}

impl BrokerLog {
    /// Connects, without creating topics.
    pub async fn connect(config: &BrokerConfig) -> Result<BrokerLog, LogError> {
        Ok(match config {
            BrokerConfig::Kafka(kafka) => {
                BrokerLog::Kafka(Box::new(KafkaLog::connect(kafka.clone()).await?))
            }
            BrokerConfig::Nats(nats) => {
                BrokerLog::Nats(Box::new(NatsLog::connect(nats.clone()).await?))
            }
        })
    }

    /// Connects and creates the Taskstream topics that are missing.
    pub async fn connect_with_topics(config: &BrokerConfig) -> Result<BrokerLog, LogError> {
        let log = BrokerLog::connect(config).await?;
        on_log!(&log, inner => inner.ensure_taskstream_topics().await)?;
        Ok(log)
    }

    /// [`BrokerLog::connect_with_topics`], retrying while the broker is unreachable; `Ok(None)`
    /// once `shutdown` is cancelled (see [`crate::log::retry_while_unavailable`]).
    pub async fn connect_with_retry(
        config: &BrokerConfig,
        shutdown: &CancellationToken,
    ) -> Result<Option<BrokerLog>, LogError> {
        crate::log::retry_while_unavailable(shutdown, || BrokerLog::connect_with_topics(config))
            .await
    }

    /// How many partitions `topic` has.
    pub async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        on_log!(self, log => log.partition_count(topic).await)
    }

    /// The offset the next record produced to the partition will get.
    pub async fn high_watermark(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        on_log!(self, log => log.high_watermark(topic, partition).await)
    }

    /// Creates each of `topics` that does not exist yet.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), LogError> {
        on_log!(self, log => log.ensure_topics(topics).await)
    }
}

impl LogReader for BrokerLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        on_log!(self, log => log.fetch(topic, partition, offset, max_records, max_wait).await)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        BrokerLog::partition_count(self, topic).await
    }
}

impl LogWriter for BrokerLog {
    async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<i64>, LogError> {
        on_log!(self, log => log.produce(topic, partition, records).await)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        BrokerLog::partition_count(self, topic).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_broker_or_none_is_chosen_and_both_are_refused() {
        let (kafka, nats) = (KafkaArgs::default(), NatsArgs::default());
        let choose =
            |k: Option<&str>, n: Option<&str>| BrokerConfig::from_args(k, &kafka, n, &nats);
        assert!(choose(None, None).unwrap().is_none());
        assert!(
            choose(Some(" "), Some("")).unwrap().is_none(),
            "blank is unset"
        );
        assert_eq!(
            choose(Some("a:9092"), None).unwrap().unwrap().transport(),
            "kafka"
        );
        let nats_config = choose(None, Some("nats://n:4222")).unwrap().unwrap();
        assert_eq!(nats_config.transport(), "nats");
        assert_eq!(nats_config.describe(), "NATS servers nats://n:4222");
        assert_eq!(nats_config.first_address().as_deref(), Some("n:4222"));
        let both = choose(Some("a:9092"), Some("n:4222"))
            .unwrap_err()
            .to_string();
        assert!(
            both.contains("KAFKA_BROKERS") && both.contains("NATS_URL"),
            "{both}"
        );
        let bad = choose(None, Some("http://x")).unwrap_err().to_string();
        assert!(bad.contains("NATS_URL"), "{bad}");
    }
}
