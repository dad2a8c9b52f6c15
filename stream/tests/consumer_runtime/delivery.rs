//! Every record applied exactly once and in order: a steady stream, a restart, a redelivered
//! event, and a shutdown in the middle of a batch.

use super::*;

on_both_databases!(
    every_record_is_applied_exactly_once_in_order_and_the_offset_reaches_the_end,
    |t| {
        create_effects_table(&t.db).await;
        // Interleave another topic, so this topic's offsets (outbox ids) are sparse.
        let mut expected = Vec::new();
        for _ in 0..4 {
            expected.extend(append(&t.db, TOPIC, 500).await);
            append(&t.db, OTHER_TOPIC, 10).await;
        }
        let handler = TestHandler::new();
        let started = std::time::Instant::now();
        let running = Running::start(&t.db, handler.clone(), config());
        wait_caught_up(&t.db).await;
        let elapsed = started.elapsed();
        eprintln!(
            "{:?}: {} records in {elapsed:?} ({:.0} records/s)",
            t.backend,
            expected.len(),
            expected.len() as f64 / elapsed.as_secs_f64()
        );

        // Events committed while the consumer runs are picked up too.
        for _ in 0..5 {
            expected.extend(append(&t.db, TOPIC, 50).await);
        }
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        assert_eq!(effects(&t.db).await, expected);
        assert_eq!(stored_offset(&t.db).await, Some(log_end(&t.db).await));
        assert!(expected.iter().all(|id| handler.calls(*id) == 1));
    }
);

on_both_databases!(
    a_restarted_consumer_resumes_from_the_stored_offset_without_reapplying,
    |t| {
        create_effects_table(&t.db).await;
        let first = append(&t.db, TOPIC, 40).await;
        let running = Running::start(&t.db, TestHandler::new(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        let second = append(&t.db, TOPIC, 40).await;
        let restarted = TestHandler::new();
        let running = Running::start(&t.db, restarted.clone(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        let all: Vec<Uuid> = first.iter().chain(&second).copied().collect();
        assert_eq!(effects(&t.db).await, all);
        assert!(first.iter().all(|id| restarted.calls(*id) == 0));
        assert!(second.iter().all(|id| restarted.calls(*id) == 1));
    }
);

on_both_databases!(a_redelivered_event_is_applied_once, |t| {
    create_effects_table(&t.db).await;
    // The outbox's unique event_id forbids a literal duplicate row; a relay retry delivers the
    // same CloudEvent (same ce_id header and payload) at another offset, as `redeliver` does.
    let ids = append(&t.db, TOPIC, 2).await;
    redeliver(&t.db, ids[0]).await;
    let third = append(&t.db, TOPIC, 1).await;
    let handler = TestHandler::new();
    let running = Running::start(&t.db, handler.clone(), config());
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();

    // A later duplicate, applied through one-record transactions this time.
    redeliver(&t.db, ids[1]).await;
    let running = Running::start(
        &t.db,
        handler.clone(),
        ConsumerConfig {
            max_batch_records: 1,
            ..config()
        },
    );
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();

    assert_eq!(effects(&t.db).await, [ids[0], ids[1], third[0]]);
    assert_eq!(handler.calls(ids[0]), 1);
    assert_eq!(handler.calls(ids[1]), 1);
    let processed = entities::processed_event::Entity::find()
        .filter(entities::processed_event::Column::Consumer.eq(CONSUMER))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(processed.len(), 3);
});

on_both_databases!(
    a_batch_of_new_events_and_one_applied_before_applies_only_the_new,
    |t| {
        create_effects_table(&t.db).await;
        let first = append(&t.db, TOPIC, 2).await;
        let handler = TestHandler::new();
        let running = Running::start(&t.db, handler.clone(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        // One batch: a new event, a copy of one applied in an earlier transaction, a new one.
        // Recording them as all new fails on the copy, so the batch is made again knowing which.
        let before = append(&t.db, TOPIC, 1).await;
        redeliver(&t.db, first[1]).await;
        let after = append(&t.db, TOPIC, 1).await;
        let running = Running::start(&t.db, handler.clone(), config());
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();

        assert_eq!(
            effects(&t.db).await,
            [first[0], first[1], before[0], after[0]]
        );
        assert_eq!(handler.calls(first[1]), 1, "the copy was not applied again");
        let processed = entities::processed_event::Entity::find()
            .filter(entities::processed_event::Column::Consumer.eq(CONSUMER))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(processed.len(), 4);
    }
);

on_both_databases!(shutdown_finishes_and_commits_the_batch_in_flight, |t| {
    create_effects_table(&t.db).await;
    let ids = append(&t.db, TOPIC, 10).await;
    let handler = TestHandler::new();
    let gate = Gate {
        event: ids[4],
        entered: Arc::default(),
        release: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    handler.script().gate = Some(gate.clone());
    let mut running = Running::start(&t.db, handler.clone(), config());
    tokio::time::timeout(Duration::from_secs(30), gate.entered.notified())
        .await
        .unwrap();

    // Shutdown arrives while the handler is in the middle of the batch (the yields let the
    // consumer's task see it before the handler is released).
    running.request_stop();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.release.add_permits(1);
    running.stop().await.unwrap();

    assert_eq!(effects(&t.db).await, ids, "the whole batch committed");
    assert_eq!(stored_offset(&t.db).await, Some(log_end(&t.db).await));
});
