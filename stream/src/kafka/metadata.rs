//! Topics: listing them with their partition counts, creating the missing ones, and choosing a
//! key's partition.

use std::collections::BTreeMap;
use std::time::Duration;

use rskafka::client::error::{Error as KafkaError, ProtocolError};

use super::{KafkaLog, errors, lock};
use crate::log::LogError;
use crate::{partitioner, topics};

impl KafkaLog {
    /// Every (non-internal) topic of the cluster with its partition count, freshly asked.
    pub async fn topic_partitions(&self) -> Result<BTreeMap<String, i32>, LogError> {
        let operation = "list topics";
        let topics = self
            .bounded(operation, Duration::ZERO, async {
                self.client
                    .list_topics()
                    .await
                    .map_err(|e| errors::log_error(operation, &e))
            })
            .await?;
        let counts: BTreeMap<String, i32> = topics
            .into_iter()
            .map(|topic| {
                let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                (topic.name, count)
            })
            .collect();
        *lock(&self.partition_counts) = counts.clone().into_iter().collect();
        Ok(counts)
    }

    /// Creates each of `topics` that does not exist yet, with the configured partitions and
    /// replication factor. Idempotent, also when another instance creates them concurrently.
    /// Existing topics are left as they are, whatever their partition count.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), LogError> {
        let existing = self.topic_partitions().await?;
        let missing: Vec<&str> = topics
            .iter()
            .copied()
            .filter(|topic| !existing.contains_key(*topic))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let controller = self
            .client
            .controller_client()
            .map_err(|e| errors::log_error("controller client", &e))?;
        let timeout_ms = i32::try_from(self.config.request_timeout.as_millis()).unwrap_or(i32::MAX);
        for topic in missing {
            let operation = format!("create topic {topic}");
            self.bounded(&operation, Duration::ZERO, async {
                let created = controller
                    .create_topic(
                        topic,
                        self.config.partitions,
                        self.config.replication_factor,
                        timeout_ms,
                    )
                    .await;
                match created {
                    Ok(()) => {
                        tracing::info!(
                            topic,
                            partitions = self.config.partitions,
                            replication_factor = self.config.replication_factor,
                            "created Kafka topic"
                        );
                        Ok(())
                    }
                    Err(KafkaError::ServerError {
                        protocol_error: ProtocolError::TopicAlreadyExists,
                        ..
                    }) => Ok(()),
                    Err(error) => Err(errors::log_error(&operation, &error)),
                }
            })
            .await?;
        }
        let now = self.topic_partitions().await?;
        match topics.iter().find(|topic| !now.contains_key(**topic)) {
            Some(topic) => Err(LogError::Unavailable(format!(
                "topic {topic} was created but the cluster metadata does not list it yet"
            ))),
            None => Ok(()),
        }
    }

    /// Ensures every Taskstream topic ([`topics::ALL`]) and its dead-letter twin exist.
    pub async fn ensure_taskstream_topics(&self) -> Result<(), LogError> {
        let dead_letter: Vec<String> = topics::ALL.iter().map(|topic| topics::dlq(topic)).collect();
        let mut all: Vec<&str> = topics::ALL.to_vec();
        all.extend(dead_letter.iter().map(String::as_str));
        self.ensure_topics(&all).await
    }

    /// How many partitions `topic` has (cached after the first metadata request). An unknown
    /// topic is [`LogError::Fatal`].
    pub async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        if let Some(count) = lock(&self.partition_counts).get(topic) {
            return Ok(*count);
        }
        let counts = self.topic_partitions().await?;
        counts.get(topic).copied().ok_or_else(|| {
            LogError::Fatal(format!(
                "unknown Kafka topic {topic}: create it first (KafkaLog::ensure_topics)"
            ))
        })
    }

    /// The partition of `topic` that `key` belongs to, as Kafka's Java client would pick it.
    pub async fn partition_for_key(&self, topic: &str, key: &str) -> Result<i32, LogError> {
        let count = self.partition_count(topic).await?;
        Ok(partitioner::partition_for_key(key.as_bytes(), count))
    }
}
