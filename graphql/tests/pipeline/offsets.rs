//! Consumers started from a stored offset: inside a batch, and past the log end.

use super::*;

on_every_log!(
    consumer_restarted_from_an_offset_inside_a_batch_gets_the_rest,
    |t, transport| {
        // Arrange: one task's first event in one batch, its next five in one batch of their own
        // (one relay round: one produce per partition), all on the task's partition.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        let relay = Relay::new(app.db.clone(), connect(&broker).await, relay_config());
        let id = app.create_task(ALICE, json!({ "title": "Batched" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(relay.publish_round().await.unwrap().published, 2);
        for n in 1..=4 {
            app.ok(
            ALICE,
            "mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": { "title": format!("Batched, edit {n}") } }),
        )
        .await;
        }
        complete(&app, &id).await;
        let round = relay.publish_round().await.unwrap();
        assert_eq!((round.published, round.failed), (10, 0), "one round");
        let events = task_events(&app).await;
        let at: Vec<(i32, i64)> = events.iter().map(|e| e.at.unwrap()).collect();
        let partition = at[0].0;
        assert_eq!(
            at,
            (0..6).map(|o| (partition, o)).collect::<Vec<_>>(),
            "one partition, offsets 0..6; the second batch spans 1..6"
        );

        // Act: the stored offset points at the middle of the second batch.
        set_stored_offset(&t.db, partition, 3).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();

        // Assert: exactly offsets 3, 4 and 5, once, in order.
        let applied: Vec<(i64, i64)> = effects(&t.db)
            .await
            .iter()
            .map(|e| (e.offset, e.version))
            .collect();
        assert_eq!(applied, [(3, 4), (4, 5), (5, 6)]);
        assert_applied_exactly_once(&t.db, &events[3..]).await;
        assert!(
            handler.calls().iter().all(|c| c.1 >= 3),
            "nothing before the stored offset reached the handler: {:?}",
            handler.calls()
        );
    }
);

on_every_log!(
    a_stored_offset_past_the_log_end_halts_with_a_clear_error,
    |t, transport| {
        // Arrange: records on the log; one partition's stored offset 10 past its end, the others
        // at their ends (so nothing would be applied even before the halt).
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        let ids = write_tasks(&app, 6).await;
        publish_all(&app, &broker).await;
        let target = stream::partitioner::partition_for_key(ids[0].as_bytes(), partitions);
        let end = log.high_watermark(TOPIC, target).await.unwrap();
        assert!(end > 0);
        for p in 0..partitions {
            let p_end = log.high_watermark(TOPIC, p).await.unwrap();
            set_stored_offset(&t.db, p, if p == target { end + 10 } else { p_end }).await;
        }
        let before = stored_offsets(&t.db, partitions).await;

        // Act
        let handler = RecordingHandler::new();
        let result =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await
                .ended(DEADLINE)
                .await;

        // Assert
        let message = result.as_ref().err().map(ToString::to_string);
        match result {
            Err(ConsumerError::OffsetOutOfRange {
                consumer,
                topic,
                partition,
                offset,
                high_watermark,
            }) => assert_eq!(
                (
                    consumer.as_str(),
                    topic.as_str(),
                    partition,
                    offset,
                    high_watermark
                ),
                (CONSUMER, TOPIC, target, end + 10, end)
            ),
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
        let message = message.unwrap();
        assert!(
            message.contains("consumer_offsets"),
            "the error says what to fix: {message}"
        );
        assert!(effects(&t.db).await.is_empty(), "nothing applied");
        assert!(handler.calls().is_empty());
        assert_eq!(
            stored_offsets(&t.db, partitions).await,
            before,
            "never skipped"
        );
    }
);
