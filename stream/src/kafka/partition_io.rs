//! Reading and writing one partition: produce, fetch and the watermarks.

use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{OffsetAt, PartitionClient};

use super::{KafkaLog, Use, errors, records};
use crate::log::{Fetched, LogError, OutgoingRecord};

impl KafkaLog {
    /// The offset the next record produced to the partition will get.
    pub async fn high_watermark(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        self.offset_at(topic, partition, OffsetAt::Latest).await
    }

    /// The offset of the oldest record still kept in the partition.
    pub async fn low_watermark(&self, topic: &str, partition: i32) -> Result<i64, LogError> {
        self.offset_at(topic, partition, OffsetAt::Earliest).await
    }

    async fn offset_at(&self, topic: &str, partition: i32, at: OffsetAt) -> Result<i64, LogError> {
        let operation = &format!("list {at:?} offset of {topic}[{partition}]");
        let work = |client: Arc<PartitionClient>| async move {
            client
                .get_offset(at)
                .await
                .map_err(|e| errors::log_error(operation, &e))
        };
        self.on_partition(
            topic,
            partition,
            Use::Write,
            operation,
            Duration::ZERO,
            work,
        )
        .await
    }

    pub(super) async fn produce_batch(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutgoingRecord>,
    ) -> Result<Vec<i64>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let count = records.len();
        let operation = &format!("produce {count} records to {topic}[{partition}]");
        let records: Vec<_> = records.into_iter().map(records::to_kafka).collect();
        let compression = self.config.rskafka_compression();
        let work = |client: Arc<PartitionClient>| async move {
            // One call, one RecordBatch, appended atomically; rskafka sends acks=-1 (all ISRs).
            let offsets = client
                .produce(records, compression)
                .await
                .map_err(|e| errors::log_error(operation, &e))?;
            if offsets.len() == count {
                Ok(offsets)
            } else {
                Err(LogError::Fatal(format!(
                    "{operation}: the broker returned {} offsets",
                    offsets.len()
                )))
            }
        };
        self.on_partition(
            topic,
            partition,
            Use::Write,
            operation,
            Duration::ZERO,
            work,
        )
        .await
    }

    pub(super) async fn fetch_batch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        let operation = &format!("fetch {topic}[{partition}] from offset {offset}");
        let max_wait_ms = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
        let max_bytes = self.config.fetch_max_bytes.max(2);
        let out_of_range = |high_watermark| LogError::OffsetOutOfRange {
            topic: topic.to_owned(),
            partition,
            offset,
            high_watermark,
        };
        let work = |client: Arc<PartitionClient>| async move {
            if offset < 0 {
                let high_watermark = client.get_offset(OffsetAt::Latest).await.unwrap_or(-1);
                return Err(out_of_range(high_watermark));
            }
            match client
                .fetch_records(offset, 1..max_bytes, max_wait_ms)
                .await
            {
                // tansu 0.6.0 answers a fetch past the end with no records and no error.
                Ok((fetched, high_watermark)) if fetched.is_empty() && offset > high_watermark => {
                    Err(out_of_range(high_watermark))
                }
                Ok((fetched, high_watermark)) => {
                    // Offsets strictly increase in a partition; anything else is a broker bug
                    // (a batch sent twice) and is dropped rather than delivered twice.
                    let mut next = offset;
                    let mut records: Vec<_> = fetched
                        .into_iter()
                        .filter(|record| {
                            let fresh = record.offset >= next;
                            next = next.max(record.offset + 1);
                            fresh
                        })
                        .map(|record| records::from_kafka(topic, partition, record))
                        .collect();
                    records.truncate(max_records);
                    Ok(Fetched {
                        records,
                        high_watermark,
                    })
                }
                Err(error) if errors::is_offset_out_of_range(&error) => {
                    let reported = errors::fetch_error_high_watermark(&error).filter(|h| *h >= 0);
                    let high_watermark = match reported {
                        Some(high_watermark) => high_watermark,
                        None => client.get_offset(OffsetAt::Latest).await.unwrap_or(-1),
                    };
                    Err(out_of_range(high_watermark))
                }
                Err(error) => Err(errors::log_error(operation, &error)),
            }
        };
        self.on_partition(topic, partition, Use::Fetch, operation, max_wait, work)
            .await
    }
}
