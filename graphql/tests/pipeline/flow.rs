//! The healthy pipeline: mutations reach the consumer exactly once.

use super::*;

on_every_log!(
    events_flow_from_mutation_to_consumer_exactly_once,
    |t, transport| {
        // Arrange: some history before anything runs.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 6).await;

        // Act: the relay and a consumer run while more tasks are written.
        let relay = RunningRelay::start(&app, &broker).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        write_tasks(&app, 6).await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();
        relay.stop().await;

        // Assert
        let expected = task_events(&app).await;
        assert_eq!(expected.len(), 24);
        assert_applied_exactly_once(&t.db, &expected).await;
        let used: BTreeSet<i32> = effects(&t.db).await.iter().map(|e| e.partition).collect();
        assert!(used.len() > 1, "12 tasks spread over partitions {used:?}");
        for e in effects(&t.db).await {
            let event = expected.iter().find(|x| x.id == e.event_id).unwrap();
            assert_eq!(
                event.at,
                Some((e.partition, e.offset)),
                "applied from where the relay published it"
            );
            assert_eq!(
                (e.task_id.as_str(), e.version),
                (event.task.as_str(), event.version)
            );
        }
    }
);
