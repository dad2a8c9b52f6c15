//! The readers of one embedded log share their reads of a commit (`stream::embedded`, "Shared
//! reads"). What a reader can observe of it: a row committed without a wake-up (as a one-shot
//! command in another process writes) stays unseen while the answer read for the last wake-up
//! is shared, and is seen after the next wake-up or, without one, after at most a second. An
//! offset past a shared end is checked with a fresh read, never reported out of range on a
//! shared answer.

use super::*;

/// The outbox offsets of `n` events appended without a wake-up.
async fn append_quiet_offsets(db: &DatabaseConnection, n: usize) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(n);
    for id in append_unannounced(db, TOPIC, n).await {
        offsets.push(outbox_row(db, id).await.id);
    }
    offsets
}

async fn offsets_from(log: &EmbeddedLog, offset: i64) -> Vec<i64> {
    log.fetch(TOPIC, 0, offset, 10, Duration::ZERO)
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| r.offset)
        .collect()
}

on_both_databases!(
    readers_of_one_wake_up_share_its_read_until_the_next_wake_up_or_a_second,
    |t| {
        let announced = append(&t.db, TOPIC, 2).await;
        let mut expected = Vec::new();
        for id in &announced {
            expected.push(outbox_row(&t.db, *id).await.id);
        }
        let from = expected[0];
        let log = EmbeddedLog::new(t.db.clone());
        let (first, second) = (log.clone(), log.clone());
        assert_eq!(offsets_from(&first, from).await, expected);

        let quiet = append_quiet_offsets(&t.db, 1).await;
        let next = expected[1] + 1;
        assert_eq!(
            offsets_from(&second, from).await,
            expected,
            "the second reader is answered by the first one's read"
        );
        assert!(
            offsets_from(&second, next).await.is_empty(),
            "an unannounced row is not seen while the last wake-up's answer is shared"
        );
        assert_eq!(
            offsets_from(&EmbeddedLog::new(t.db.clone()), next).await,
            quiet,
            "a log of its own reads afresh"
        );

        stream::outbox::notify_committed();
        assert_eq!(
            offsets_from(&second, next).await,
            quiet,
            "a wake-up ends the sharing"
        );

        let later = append_quiet_offsets(&t.db, 1).await;
        assert!(offsets_from(&first, quiet[0] + 1).await.is_empty());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            offsets_from(&first, quiet[0] + 1).await,
            later,
            "without a wake-up, a shared answer is used for at most a second"
        );
    }
);

on_both_databases!(
    an_offset_past_a_shared_end_is_checked_with_a_fresh_read,
    |t| {
        append(&t.db, TOPIC, 1).await;
        let log = EmbeddedLog::new(t.db.clone());
        let end = log
            .fetch(TOPIC, 0, 0, 10, Duration::ZERO)
            .await
            .unwrap()
            .high_watermark;
        // Rows committed unannounced, and an offset past them stored by someone else (another
        // process's consumer that read them).
        let quiet = append_quiet_offsets(&t.db, 2).await;
        assert!(quiet[1] > end);
        let fetched = log
            .fetch(TOPIC, 0, quiet[1], 10, Duration::ZERO)
            .await
            .expect("not out of range: the end is read again");
        assert_eq!(
            fetched.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [quiet[1]]
        );
        assert_eq!(fetched.high_watermark, quiet[1] + 1);
        match log.fetch(TOPIC, 0, quiet[1] + 5, 10, Duration::ZERO).await {
            Err(stream::log::LogError::OffsetOutOfRange { high_watermark, .. }) => {
                assert_eq!(high_watermark, quiet[1] + 1);
            }
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    }
);
