//! The relay crashed between produce and mark. On Kafka the second publish appends a second
//! copy of every event; on NATS JetStream the server drops it (same `Nats-Msg-Id`, within the
//! duplicate window) and acknowledges the first copy. Either way each event is applied once.

use super::*;

on_every_log!(
    relay_crash_between_produce_and_mark_applies_once,
    |t, transport| {
        // Arrange: a relay produced every pending row and crashed before marking any.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 8).await;
        let rows = app.outbox().await;
        let mut groups: BTreeMap<(String, i32), Vec<OutgoingRecord>> = BTreeMap::new();
        for row in &rows {
            let count = log.partition_count(&row.topic).await.unwrap();
            let partition = stream::partitioner::partition_for_key(row.key.as_bytes(), count);
            groups
                .entry((row.topic.clone(), partition))
                .or_default()
                .push(stream::outbox::to_record(&row.clone().into()).unwrap());
        }
        for ((topic, partition), records) in groups {
            log.produce(&topic, partition, records).await.unwrap();
        }
        assert_eq!(pending(&app).await, 32, "nothing was marked");

        // Act: the relay comes back and publishes them again; a consumer reads the log.
        let relay = RunningRelay::start(&app, &broker).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();
        relay.stop().await;

        // Assert: every event twice on Kafka's log, once on NATS's; the relay's marks on the
        // copy its acknowledgement named (Kafka: the second; NATS: the first)...
        let (copies_expected, marked) = match transport {
            Transport::Kafka => (2, 1),
            Transport::Nats => (1, 0),
        };
        let rows = app.outbox().await;
        for topic in [stream::topics::TASK_EVENTS, stream::topics::TASK_UPDATES] {
            let records = read_all(&log, topic).await;
            let mut copies: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
            for r in &records {
                copies
                    .entry(r.headers["ce_id"].clone())
                    .or_default()
                    .push((r.partition, r.offset));
            }
            let of_topic: Vec<_> = rows.iter().filter(|r| r.topic == topic).collect();
            assert_eq!(of_topic.len(), 16);
            assert_eq!(copies.len(), 16, "{topic}: no other events");
            for row in of_topic {
                let at = &copies[&row.event_id.to_string()];
                assert_eq!(
                    at.len(),
                    copies_expected,
                    "{topic}: event {} on the log {copies_expected} times over {transport:?}",
                    row.event_id
                );
                assert!(
                    at.iter().all(|c| c.0 == at[0].0),
                    "copies on the key's partition"
                );
                assert_eq!(
                    (row.partition, row.offset),
                    (Some(at[marked].0), Some(at[marked].1)),
                    "{topic}: the relay marked the copy it produced"
                );
            }
        }
        // ...and each applied once, the duplicates skipped before the handler.
        let expected = task_events(&app).await;
        assert_applied_exactly_once(&t.db, &expected).await;
        assert_eq!(
            handler.calls().len(),
            expected.len(),
            "a duplicate never reaches the handler"
        );
        let processed = entities::processed_event::Entity::find()
            .filter(entities::processed_event::Column::Consumer.eq(CONSUMER))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(processed.len(), expected.len());
    }
);
