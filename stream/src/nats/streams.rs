//! Streams: checking JetStream, creating the topics' streams, partition counts and watermarks.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{
    Config, DiscardPolicy, Info, RetentionPolicy, StorageType, Stream,
};
use futures_util::TryStreamExt;

use super::{NatsLog, lock, records};
use crate::log::LogError;
use crate::topics;

impl NatsLog {
    /// Lists the account's streams once: a server or account without JetStream is
    /// [`LogError::Fatal`] (start nats-server with `-js`). (The account-info request is not
    /// used: nats-server 2.9 answers it in a shape async-nats 0.52 does not read.)
    pub(super) async fn check_jetstream(&self) -> Result<(), LogError> {
        let operation = "list JetStream streams";
        self.bounded(operation, Duration::ZERO, async {
            let mut names = self.js.stream_names();
            match names.try_next().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let text = e.to_string();
                    let message = format!("{operation}: {text}");
                    if ["not enabled", "no responders", "does not exist"]
                        .iter()
                        .any(|sign| text.contains(sign))
                    {
                        Err(LogError::Fatal(format!(
                            "{message}: the NATS server has no JetStream for this account \
                             (start nats-server with -js, or enable JetStream for the account)"
                        )))
                    } else {
                        Err(LogError::Unavailable(message))
                    }
                }
            }
        })
        .await
    }

    /// The names of every stream of the account.
    async fn stream_names(&self) -> Result<Vec<String>, LogError> {
        let operation = "list JetStream streams";
        self.bounded(operation, Duration::ZERO, async {
            self.js
                .stream_names()
                .try_collect()
                .await
                .map_err(|e| LogError::Unavailable(format!("{operation}: {e}")))
        })
        .await
    }

    /// How many partitions `topic` has among `names`: its streams must be numbered 0, 1, …
    /// without a gap.
    fn count_in(&self, topic: &str, names: &[String]) -> Result<i32, LogError> {
        let mut partitions: Vec<i32> = names
            .iter()
            .filter_map(|name| self.config.partition_of(topic, name))
            .collect();
        partitions.sort_unstable();
        for (expected, found) in (0..).zip(&partitions) {
            if expected != *found {
                return Err(LogError::Fatal(format!(
                    "the streams of NATS topic {topic} skip partition {expected} (found {}): \
                     recreate the missing stream {}",
                    partitions
                        .iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    self.config.stream_name(topic, expected)
                )));
            }
        }
        Ok(i32::try_from(partitions.len()).unwrap_or(i32::MAX))
    }

    /// How many partitions `topic` has (cached after the first listing). A topic without
    /// streams is [`LogError::Fatal`].
    pub async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        if let Some(count) = lock(&self.partition_counts).get(topic) {
            return Ok(*count);
        }
        let names = self.stream_names().await?;
        let count = self.count_in(topic, &names)?;
        if count == 0 {
            return Err(self.unknown_topic(topic));
        }
        lock(&self.partition_counts).insert(topic.to_owned(), count);
        Ok(count)
    }

    fn unknown_topic(&self, topic: &str) -> LogError {
        LogError::Fatal(format!(
            "unknown NATS topic {topic}: no stream {} (create it first, NatsLog::ensure_topics)",
            self.config.stream_name(topic, 0)
        ))
    }

    /// The configuration of the stream holding partition `partition` of `topic`.
    fn stream_config(&self, topic: &str, partition: i32) -> Config {
        Config {
            name: self.config.stream_name(topic, partition),
            description: Some(format!("Taskstream topic {topic}, partition {partition}")),
            subjects: vec![self.config.subject(topic, partition)],
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_age: self.config.max_age,
            max_bytes: self.config.max_bytes,
            max_messages: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_message_size: -1,
            storage: if self.config.memory_storage {
                StorageType::Memory
            } else {
                StorageType::File
            },
            num_replicas: self.config.replicas,
            duplicate_window: self.config.duplicate_window,
            ..Config::default()
        }
    }

    /// Creates the streams of each of `topics` that has none yet, with the configured
    /// partitions, replicas and limits. Idempotent, also when another instance creates them
    /// concurrently. A topic whose creation was interrupted (fewer streams than configured, all
    /// of them empty) is completed; a topic in use keeps its partition count.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), LogError> {
        let names = self.stream_names().await?;
        for topic in topics {
            let existing = self.count_in(topic, &names)?;
            if existing >= self.config.partitions {
                continue;
            }
            if existing > 0 && !self.all_empty(topic, existing).await? {
                continue;
            }
            for partition in existing..self.config.partitions {
                self.create_stream(topic, partition).await?;
            }
            tracing::info!(
                topic,
                partitions = self.config.partitions,
                replicas = self.config.replicas,
                "created NATS JetStream streams"
            );
        }
        // One listing for every topic's count (not one per topic).
        let names = self.stream_names().await?;
        let mut counts = Vec::with_capacity(topics.len());
        for topic in topics {
            match self.count_in(topic, &names)? {
                0 => return Err(self.unknown_topic(topic)),
                count => counts.push(((*topic).to_owned(), count)),
            }
        }
        lock(&self.partition_counts).extend(counts);
        Ok(())
    }

    /// Ensures every Taskstream topic ([`topics::ALL`]) and its dead-letter twin exist.
    pub async fn ensure_taskstream_topics(&self) -> Result<(), LogError> {
        let dead_letter: Vec<String> = topics::ALL.iter().map(|topic| topics::dlq(topic)).collect();
        let mut all: Vec<&str> = topics::ALL.to_vec();
        all.extend(dead_letter.iter().map(String::as_str));
        self.ensure_topics(&all).await
    }

    async fn all_empty(&self, topic: &str, partitions: i32) -> Result<bool, LogError> {
        for partition in 0..partitions {
            if self.info(topic, partition).await?.state.last_sequence > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn create_stream(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let config = self.stream_config(topic, partition);
        let operation = format!("create JetStream stream {}", config.name);
        self.bounded(&operation, Duration::ZERO, async {
            match self.js.get_or_create_stream(config).await {
                Ok(_) => Ok(()),
                // Created by another instance between the lookup and the creation.
                Err(error) => match self.info(topic, partition).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(LogError::Fatal(format!("{operation}: {error}"))),
                },
            }
        })
        .await
    }

    /// The stream holding the partition, with its current information (one request). A
    /// missing stream is [`LogError::Fatal`].
    pub(super) async fn stream(&self, topic: &str, partition: i32) -> Result<Stream, LogError> {
        let name = self.config.stream_name(topic, partition);
        let operation = format!("read JetStream stream {name}");
        self.bounded(&operation, Duration::ZERO, async {
            self.js.get_stream(&name).await.map_err(|e| {
                let message = format!("{operation}: {e}");
                match e.kind() {
                    GetStreamErrorKind::JetStream(error)
                        if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                    {
                        LogError::Fatal(message)
                    }
                    _ => LogError::Unavailable(message),
                }
            })
        })
        .await
    }

    /// The stream's current information (state: first and last sequence).
    pub(super) async fn info(&self, topic: &str, partition: i32) -> Result<Info, LogError> {
        Ok(self.stream(topic, partition).await?.cached_info().clone())
    }

    /// The offset the next record published to the partition will get.
    pub async fn high_watermark(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        let info = self.info(topic, partition).await?;
        i64::try_from(info.state.last_sequence).map_err(|_| {
            LogError::Fatal(format!(
                "{name}: sequence overflow",
                name = info.config.name
            ))
        })
    }

    /// The offset of the oldest record still kept in the partition (its high watermark when
    /// it keeps none).
    pub async fn low_watermark(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        let info = self.info(topic, partition).await?;
        let state = &info.state;
        if state.messages == 0 {
            return i64::try_from(state.last_sequence)
                .map_err(|_| LogError::Fatal("sequence overflow".to_owned()));
        }
        records::sequence_to_offset(state.first_sequence)
    }
}
