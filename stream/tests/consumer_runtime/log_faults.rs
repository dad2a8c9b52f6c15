//! The log misbehaving: a stored offset past its end, a lower id committing late (PostgreSQL),
//! and fetches failing while the broker is down.

use super::*;

on_both_databases!(
    a_stored_offset_past_the_end_of_the_log_halts_the_consumer,
    |t| {
        create_effects_table(&t.db).await;
        append(&t.db, TOPIC, 3).await;
        let end = log_end(&t.db).await;
        entities::consumer_offset::ActiveModel {
            consumer: Set(CONSUMER.to_owned()),
            topic: Set(TOPIC.to_owned()),
            partition: Set(0),
            next_offset: Set(end + 100),
            updated_at: Set(entities::to_db_precision(Utc::now())),
        }
        .insert(&t.db)
        .await
        .unwrap();

        let result = Running::start(&t.db, TestHandler::new(), config())
            .ended()
            .await;

        match result {
            Err(ConsumerError::OffsetOutOfRange {
                offset,
                high_watermark,
                partition: 0,
                ..
            }) => assert_eq!((offset, high_watermark), (end + 100, end)),
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
        assert!(effects(&t.db).await.is_empty());
        assert_eq!(stored_offset(&t.db).await, Some(end + 100), "never skipped");
    }
);

/// PostgreSQL only: there, ids are allocated at INSERT but visible at COMMIT, so a row can
/// appear below rows already visible. (SQLite serialises writers; the case cannot arise.)
#[tokio::test]
async fn a_late_committing_lower_id_is_neither_skipped_nor_reordered_on_postgres() {
    let Some(t) = support::TestDb::migrated(support::Backend::Postgres).await else {
        return;
    };
    create_effects_table(&t.db).await;
    let first = append(&t.db, TOPIC, 1).await;
    let running = Running::start(&t.db, TestHandler::new(), config());
    wait_until("the first event is applied", || async {
        effects(&t.db).await == first
    })
    .await;

    // A writer takes the next id and stays open; a later writer commits a higher id.
    let slow = sea_orm::TransactionTrait::begin(&t.db).await.unwrap();
    let late = CloudEvent::new("taskstream.test.happened", "late", Utc::now(), json!({}));
    stream::outbox::append(&slow, TOPIC, "late", &late, Utc::now())
        .await
        .unwrap();
    let high = append(&t.db, TOPIC, 1).await;
    let late_id: i64 = slow
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id FROM outbox WHERE event_id = '{}'", late.id),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    assert!(late_id < outbox_row(&t.db, high[0]).await.id);

    // The committed higher row is visible (the end moved) but held back behind the open one.
    let held = EmbeddedLog::new(t.db.clone())
        .fetch(TOPIC, 0, late_id, 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(held.records.is_empty(), "delivered past an open writer");
    assert_eq!(held.high_watermark, outbox_row(&t.db, high[0]).await.id + 1);
    assert_eq!(effects(&t.db).await, first, "the consumer waits too");

    slow.commit().await.unwrap();
    stream::outbox::notify_committed();
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();
    assert_eq!(effects(&t.db).await, [first[0], late.id, high[0]]);
    t.cleanup().await;
}

/// The embedded log, except that its first fetches fail as if the broker were down.
struct FlakyLog {
    inner: EmbeddedLog,
    failures_left: std::sync::atomic::AtomicU32,
}

impl LogReader for FlakyLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<stream::log::Fetched, stream::log::LogError> {
        let left = self.failures_left.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.failures_left
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(stream::log::LogError::Unavailable("broker down".into()));
        }
        self.inner
            .fetch(topic, partition, offset, max_records, max_wait)
            .await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, stream::log::LogError> {
        self.inner.partition_count(topic).await
    }
}

on_both_databases!(
    an_unavailable_log_is_fetched_again_from_the_stored_offset,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 20).await;
        let log = FlakyLog {
            inner: EmbeddedLog::new(t.db.clone()),
            failures_left: 3.into(),
        };
        let running = Running::on(&t.db, log, TestHandler::new(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();
        assert_eq!(effects(&t.db).await, ids);
    }
);
