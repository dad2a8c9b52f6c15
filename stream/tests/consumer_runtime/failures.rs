//! Handler failures: transient ones are retried in order, persistent ones and unreadable
//! records are parked as dead letters with a DLQ copy, and replays apply them once.

use super::*;

on_both_databases!(a_transient_failure_is_retried_and_later_records_wait, |t| {
    create_effects_table(&t.db).await;
    let ids = append(&t.db, TOPIC, 5).await;
    let handler = TestHandler::new();
    handler.script().fail_times.insert(ids[2], 2);
    let running = Running::start(
        &t.db,
        handler.clone(),
        ConsumerConfig {
            max_attempts: 5,
            ..config()
        },
    );
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();

    assert_eq!(effects(&t.db).await, ids, "order kept across the retries");
    assert_eq!(handler.calls(ids[2]), 3, "two failures, then success");
    assert!(
        dead_letters::list(&t.db, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a record that recovers is not parked"
    );
});

on_both_databases!(
    a_record_that_keeps_failing_is_parked_with_its_dlq_copy_and_replays_once_after_a_fix,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 4).await;
        let poison = ids[1];
        let handler = TestHandler::new();
        handler.script().broken.insert(poison);
        let running = Running::start(&t.db, handler.clone(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        // Later records were applied; the poison one was not.
        assert_eq!(effects(&t.db).await, [ids[0], ids[2], ids[3]]);

        // Its dead letter...
        let original = outbox_row(&t.db, poison).await;
        let parked = dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 1);
        let dead = &parked[0];
        assert_eq!(dead.consumer, CONSUMER);
        assert_eq!(dead.topic, TOPIC);
        assert_eq!(dead.partition, 0);
        assert_eq!(dead.offset, original.id);
        assert_eq!(dead.event_id, Some(poison));
        assert_eq!(dead.key.as_deref(), Some(original.key.as_str()));
        assert_eq!(dead.payload, original.payload);
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.status, DeadLetterStatus::Parked);
        assert!(dead.error.contains("dependency down"), "{}", dead.error);

        // ...and its copy on task-events.dlq, with the original headers and the DLQ headers.
        let copies = dlq_rows(&t.db).await;
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].payload, original.payload);
        assert_eq!(copies[0].key, original.key);
        let headers = headers_of(&copies[0]);
        assert_eq!(headers["ce_id"], poison.to_string());
        assert_eq!(headers["dlq_original_topic"], TOPIC);
        assert_eq!(headers["dlq_original_partition"], "0");
        assert_eq!(headers["dlq_original_offset"], original.id.to_string());
        assert_eq!(headers["dlq_consumer"], CONSUMER);
        assert_eq!(headers["dlq_attempts"], "3");
        assert!(headers["dlq_error"].contains("dependency down"));

        // Replaying before the fix fails, keeps it parked and counts the attempt.
        let err = dead_letters::replay(&t.db, dead.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::Handler { .. }), "{err}");
        let still = dead_letters::show(&t.db, dead.id).await.unwrap();
        assert_eq!((still.status.as_str(), still.attempts), ("PARKED", 4));

        // After the fix it applies exactly once.
        handler.script().broken.clear();
        let outcome = dead_letters::replay(&t.db, dead.id, &handler)
            .await
            .unwrap();
        assert_eq!(outcome, ReplayOutcome::Applied);
        assert_eq!(
            dead_letters::show(&t.db, dead.id).await.unwrap().status,
            DeadLetterStatus::Replayed
        );
        let err = dead_letters::replay(&t.db, dead.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::NotParked { .. }), "{err}");
        let err = dead_letters::discard(&t.db, dead.id).await.unwrap_err();
        assert!(matches!(err, DeadLetterError::NotParked { .. }), "{err}");
        let applied: Vec<Uuid> = effects(&t.db)
            .await
            .into_iter()
            .filter(|id| *id == poison)
            .collect();
        assert_eq!(applied, [poison]);

        // Unknown ids are refused clearly.
        assert!(matches!(
            dead_letters::show(&t.db, 999_999).await,
            Err(DeadLetterError::NotFound(999_999))
        ));
        assert!(matches!(
            dead_letters::replay(&t.db, 999_999, &handler).await,
            Err(DeadLetterError::NotFound(999_999))
        ));
        assert!(
            dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(dead_letters::list(&t.db, None, 10).await.unwrap().len(), 1);
    }
);

on_both_databases!(
    records_without_an_event_id_or_with_an_unparsable_payload_are_parked_at_once,
    |t| {
        create_effects_table(&t.db).await;
        let before = append(&t.db, TOPIC, 1).await;
        let no_id = insert_raw(&t.db, "{}", "not json at all").await;
        let garbage_id = Uuid::now_v7();
        let garbage = insert_raw(
            &t.db,
            &json!({ "ce_id": garbage_id.to_string() }).to_string(),
            "{\"truncated",
        )
        .await;
        let after = append(&t.db, TOPIC, 1).await;
        let handler = TestHandler::new();
        let running = Running::start(
            &t.db,
            handler.clone(),
            ConsumerConfig {
                max_attempts: 5,
                ..config()
            },
        );
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        assert_eq!(effects(&t.db).await, [before[0], after[0]]);
        let parked = dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 2);
        let (no_id_row, garbage_row) = (&parked[0], &parked[1]);
        assert_eq!(no_id_row.offset, no_id);
        assert_eq!(no_id_row.event_id, None);
        assert_eq!(no_id_row.attempts, 1, "poison is not retried");
        assert!(
            no_id_row.error.contains("no event id"),
            "{}",
            no_id_row.error
        );
        assert_eq!(garbage_row.offset, garbage);
        assert_eq!(garbage_row.event_id, Some(garbage_id));
        assert_eq!(garbage_row.attempts, 1, "a permanent error is not retried");
        assert_eq!(dlq_rows(&t.db).await.len(), 2);

        // Bad replays are refused with a reason.
        let err = dead_letters::replay(&t.db, no_id_row.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::NoEventId(_)), "{err}");
        let err = dead_letters::replay(&t.db, garbage_row.id, &TestHandler::named("someone-else"))
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::WrongHandler { .. }), "{err}");
        let discarded = dead_letters::discard(&t.db, garbage_row.id).await.unwrap();
        assert_eq!(discarded.status, DeadLetterStatus::Discarded);
        let err = dead_letters::replay(&t.db, garbage_row.id, &handler)
            .await
            .unwrap_err();
        assert!(matches!(err, DeadLetterError::NotParked { .. }), "{err}");
    }
);
