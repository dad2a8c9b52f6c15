//! Fetching: one ordered pull consumer per partition, created at the requested offset and kept
//! while each fetch continues where the previous one ended.
//!
//! The ordered consumer is ephemeral and unacknowledged; async-nats keeps pull requests open
//! so that the server pushes new messages into the client's buffer as they are stored, and
//! recreates the consumer itself when it sees a gap. A fetch takes the first message (waiting
//! up to `max_wait`), then whatever else is already buffered, up to `max_records`; while the
//! server reports more messages pending (a backlog), it also waits for those on their way, for
//! at most [`BACKLOG_WAIT`] in all, so that a consumer catching up gets full batches. A fetch at
//! any other offset, or after an error, drops the consumer and creates one at the new offset.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use futures_util::{FutureExt, StreamExt};

use super::{CursorSlot, NatsLog, lock, records};
use crate::log::{Fetched, LogError, LogRecord};

/// How long after its first record a fetch goes on waiting for more while the server reports
/// more pending for the partition's consumer (they are on their way): a backlog is read in
/// full batches, and a fetch at the log's end, where nothing is pending, returns at once.
const BACKLOG_WAIT: Duration = Duration::from_millis(20);

/// An ordered consumer of one partition, positioned at `next_offset`.
pub(super) struct Cursor {
    next_offset: i64,
    messages: Ordered,
}

impl NatsLog {
    fn cursor_slot(&self, topic: &str, partition: i32) -> CursorSlot {
        Arc::clone(
            lock(&self.cursors)
                .entry((topic.to_owned(), partition))
                .or_default(),
        )
    }

    pub(super) async fn fetch_from(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        let slot = self.cursor_slot(topic, partition);
        let mut cursor = slot.lock().await;
        let operation = format!("fetch {topic}[{partition}] at {offset}");
        let result = self
            .bounded(
                &operation,
                max_wait,
                self.fetch_with(&mut cursor, topic, partition, offset, max_records, max_wait),
            )
            .await;
        if result.is_err() {
            *cursor = None;
        }
        result
    }

    async fn fetch_with(
        &self,
        cursor: &mut Option<Cursor>,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Fetched, LogError> {
        if cursor.as_ref().map(|c| c.next_offset) != Some(offset) {
            *cursor = None;
            *cursor = Some(self.open(topic, partition, offset).await?);
        }
        let Some(open) = cursor.as_mut() else {
            return Err(LogError::Unavailable(format!(
                "no consumer for {topic}[{partition}]"
            )));
        };
        let first = match tokio::time::timeout(max_wait, open.messages.next()).await {
            Err(_) if !self.connected() => {
                return Err(LogError::Unavailable(format!(
                    "reading {topic}[{partition}]: not connected to NATS (reconnecting)"
                )));
            }
            Err(_) => {
                return Ok(Fetched {
                    records: Vec::new(),
                    high_watermark: offset,
                });
            }
            Ok(next) => next,
        };
        let mut records: Vec<LogRecord> = Vec::new();
        let mut pending: u64;
        let backlog_deadline = tokio::time::Instant::now() + BACKLOG_WAIT;
        let mut next = first;
        loop {
            let message = match next {
                None => {
                    return Err(LogError::Unavailable(format!(
                        "the consumer of {topic}[{partition}] ended"
                    )));
                }
                Some(Err(e)) => {
                    return Err(LogError::Unavailable(format!(
                        "reading {topic}[{partition}]: {e}"
                    )));
                }
                Some(Ok(message)) => message,
            };
            let info = message.info().map_err(|e| {
                LogError::Fatal(format!("a JetStream message without its info: {e}"))
            })?;
            pending = info.pending;
            let record = records::from_message(topic, partition, &message, &info)?;
            open.next_offset = record.offset + 1;
            records.push(record);
            if records.len() >= max_records {
                break;
            }
            next = match open.messages.next().now_or_never() {
                Some(more) => more,
                // The buffer ran dry but the server has more for this consumer (a backlog):
                // they are on their way, so wait for them rather than return a short batch,
                // which would cost the caller a transaction per few records.
                None if pending > 0 => {
                    match tokio::time::timeout_at(backlog_deadline, open.messages.next()).await {
                        Ok(more) => more,
                        Err(_) => break,
                    }
                }
                None => break,
            };
        }
        let high_watermark = open
            .next_offset
            .saturating_add(i64::try_from(pending).unwrap_or(i64::MAX));
        Ok(Fetched {
            records,
            high_watermark,
        })
    }

    /// An ordered consumer of the partition starting at `offset`, which must lie between the
    /// oldest kept record and the end.
    async fn open(&self, topic: &str, partition: i32, offset: i64) -> Result<Cursor, LogError> {
        let stream = self.stream(topic, partition).await?;
        let state = &stream.cached_info().state;
        let end = i64::try_from(state.last_sequence).unwrap_or(i64::MAX);
        let oldest = if state.messages == 0 {
            end
        } else {
            records::sequence_to_offset(state.first_sequence)?
        };
        if offset < oldest || offset > end {
            return Err(LogError::OffsetOutOfRange {
                topic: topic.to_owned(),
                partition,
                offset,
                high_watermark: end,
            });
        }
        let start_sequence = u64::try_from(offset + 1).unwrap_or(u64::MAX);
        let operation = format!(
            "read {} from sequence {start_sequence}",
            self.config.stream_name(topic, partition)
        );
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| LogError::Unavailable(format!("{operation}: {e}")))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| LogError::Unavailable(format!("{operation}: {e}")))?;
        Ok(Cursor {
            next_offset: offset,
            messages,
        })
    }
}
