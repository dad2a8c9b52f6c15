//! `processed_events`: entries past the horizon go unless their event can still be
//! redelivered; within the horizon a redelivery is still deduplicated.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use entities::processed_event;
use stream::consumer::{Handler, HandlerError, HandlerOutcome};
use stream::log::LogRecord;

use super::*;

/// The consumer name of [`Counter`].
pub(crate) const COUNTER: &str = "counter";

/// A consumer that counts the records it applies.
pub(crate) struct Counter {
    applied: Arc<AtomicUsize>,
    running: support::RunningConsumer,
}

struct CountingHandler(Arc<AtomicUsize>);

impl Handler for CountingHandler {
    fn name(&self) -> &str {
        COUNTER
    }

    async fn handle(
        &self,
        _txn: &sea_orm::DatabaseTransaction,
        _record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(HandlerOutcome::Applied)
    }
}

impl Counter {
    pub(crate) fn start(db: &DatabaseConnection, topic: &str) -> Counter {
        let applied = Arc::new(AtomicUsize::new(0));
        let running =
            support::RunningConsumer::start(db, CountingHandler(Arc::clone(&applied)), topic);
        Counter { applied, running }
    }

    pub(crate) fn applied(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }

    /// Stops the consumer; returns how many records it applied.
    pub(crate) async fn stop(self) -> usize {
        self.running.stop().await;
        self.applied.load(Ordering::SeqCst)
    }
}

async fn processed(db: &DatabaseConnection) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = processed_event::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    ids.sort();
    ids
}

async fn mark_processed(
    db: &DatabaseConnection,
    consumer: &str,
    event_id: Uuid,
    at: DateTime<Utc>,
) {
    processed_event::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id),
        processed_at: Set(at),
    }
    .insert(db)
    .await
    .unwrap();
}

on_both_databases!(
    a_redelivery_within_the_horizon_is_deduplicated_and_entries_past_it_are_pruned,
    |t| {
        // Arrange: a consumer applies three events.
        let now = Utc::now();
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(append(&t.db, TASK_EVENTS, now).await.event_id);
        }
        let counter = Counter::start(&t.db, TASK_EVENTS);
        support::wait_caught_up(&t.db, COUNTER, TASK_EVENTS).await;
        assert_eq!(counter.applied(), 3);
        let mode = embedded(&[(COUNTER, TASK_EVENTS)]);

        // Act: a pass six days later (inside the 7-day horizon), then the first event is
        // delivered again (a copy on the log, as a tool re-appending it would write).
        let report = pass(&t.db, &policy(1_000), &mode, now + Duration::days(6)).await;
        append_copy(&t.db, TASK_EVENTS, Uuid::now_v7(), events[0], now).await;
        support::wait_caught_up(&t.db, COUNTER, TASK_EVENTS).await;

        // Assert: nothing was pruned, and the copy was skipped as a duplicate.
        assert_eq!(report.rows("processed_events"), 0);
        assert_eq!(counter.applied(), 3, "the redelivery is deduplicated");
        assert_eq!(processed(&t.db).await.len(), 3);

        // Act: a pass eight days later.
        let report = pass(&t.db, &policy(1_000), &mode, now + Duration::days(8)).await;

        // Assert
        assert_eq!(report.rows("processed_events"), 3);
        assert!(processed(&t.db).await.is_empty());
        assert_eq!(counter.stop().await, 3);
    }
);

on_both_databases!(
    an_old_entry_whose_event_is_still_ahead_of_the_embedded_offset_is_kept,
    |t| {
        // Arrange: entries a month old for two events; the consumer's offset is between them
        // (as after a restore of the offsets table), and a third entry has no outbox row.
        let now = Utc::now();
        let behind = append(&t.db, TASK_EVENTS, ago(now, 40)).await;
        let ahead = append(&t.db, TASK_EVENTS, ago(now, 40)).await;
        set_offset(&t.db, COUNTER, TASK_EVENTS, ahead.id).await;
        let gone = Uuid::now_v7();
        for id in [behind.event_id, ahead.event_id, gone] {
            mark_processed(&t.db, COUNTER, id, ago(now, 30)).await;
        }
        let policy = RetentionPolicy {
            outbox: None,
            ..policy(1_000)
        };

        // Act
        let report = pass(&t.db, &policy, &embedded(&[(COUNTER, TASK_EVENTS)]), now).await;

        // Assert: only the entry whose event the consumer will read again stays.
        assert_eq!(report.rows("processed_events"), 2);
        assert_eq!(processed(&t.db).await, vec![ahead.event_id]);
    }
);

on_both_databases!(
    in_distributed_mode_entries_of_pending_or_unread_published_events_are_kept,
    |t| {
        use sea_orm::sea_query::Expr;
        // Arrange: month-old entries of four events: one still pending (the relay may publish
        // it again), one published at offset 5 while the consumer's offset is 3 (a copy it
        // has not read), one published at offset 1 (read), one no longer in the outbox.
        let now = Utc::now();
        let pending = append(&t.db, TASK_EVENTS, ago(now, 40)).await;
        let unread = append(&t.db, TASK_EVENTS, ago(now, 40)).await;
        let read = append(&t.db, TASK_EVENTS, ago(now, 40)).await;
        for (row, offset) in [(&unread, 5_i64), (&read, 1)] {
            outbox_rows::Entity::update_many()
                .col_expr(outbox_rows::Column::PublishedAt, Expr::val(ago(now, 1)))
                .col_expr(outbox_rows::Column::Partition, Expr::val(0))
                .col_expr(outbox_rows::Column::Offset, Expr::val(offset))
                .filter(outbox_rows::Column::Id.eq(row.id))
                .exec(&t.db)
                .await
                .unwrap();
        }
        set_offset(&t.db, COUNTER, TASK_EVENTS, 3).await;
        let gone = Uuid::now_v7();
        for id in [pending.event_id, unread.event_id, read.event_id, gone] {
            mark_processed(&t.db, COUNTER, id, ago(now, 30)).await;
        }

        // Act
        let report = pass(
            &t.db,
            &policy(1_000),
            &stream::retention::LogMode::Distributed,
            now,
        )
        .await;

        // Assert
        assert_eq!(report.rows("processed_events"), 2);
        let mut kept = vec![pending.event_id, unread.event_id];
        kept.sort();
        assert_eq!(processed(&t.db).await, kept);
    }
);
