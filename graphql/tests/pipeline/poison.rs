//! A poison record parked as a dead letter, and its replay.

use super::*;

on_every_log!(
    a_poison_record_is_parked_and_later_records_still_flow,
    |t, transport| {
        // Arrange: a task whose events the handler cannot take, between healthy ones, and at
        // least one later task on the poison's partition.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 3).await;
        let poison = app.create_task(ALICE, json!({ "title": "Poison" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let poison_partition =
            stream::partitioner::partition_for_key(poison.as_bytes(), partitions);
        let mut later = write_tasks(&app, 3).await;
        while !later.iter().any(|id| {
            stream::partitioner::partition_for_key(id.as_bytes(), partitions) == poison_partition
        }) {
            assert!(
                later.len() < 60,
                "no task lands on partition {poison_partition}"
            );
            later.extend(write_tasks(&app, 1).await);
        }

        // Act
        let relay = RunningRelay::start(&app, &broker).await;
        let handler = RecordingHandler::new();
        handler.script().poison_task = Some(poison.clone());
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();
        relay.stop().await;

        // Assert: everything but the poison applied, later records on its partition included...
        let events = task_events(&app).await;
        let (poisoned, healthy): (Vec<Event>, Vec<Event>) =
            events.into_iter().partition(|e| e.task == poison);
        assert_eq!(poisoned.len(), 1);
        let poisoned = &poisoned[0];
        assert_applied_exactly_once(&t.db, &healthy).await;
        let (p, offset) = poisoned.at.unwrap();
        assert!(
            effects(&t.db)
                .await
                .iter()
                .any(|e| e.partition == p && e.offset > offset),
            "a later record on the poison's partition was applied"
        );
        // ...the poison parked once, without retries...
        let parked = dead_letters::list(&t.db, Some(DeadLetterStatus::Parked), 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 1);
        let dead = &parked[0];
        assert_eq!(
            (
                dead.consumer.as_str(),
                dead.topic.as_str(),
                dead.partition,
                dead.offset
            ),
            (CONSUMER, TOPIC, p, offset)
        );
        assert_eq!(dead.event_id, Some(poisoned.id));
        assert_eq!(dead.attempts, 1, "a permanent error is not retried");
        assert!(dead.error.contains("poison"), "{}", dead.error);
        // ...and its copy published to task-events.dlq with the dlq_* headers.
        let dlq_topic = stream::topics::dlq(TOPIC);
        let dlq_rows: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|r| r.topic == dlq_topic)
            .collect();
        assert_eq!(dlq_rows.len(), 1);
        assert!(dlq_rows[0].published_at.is_some());
        let on_dlq = read_all(&log, &dlq_topic).await;
        assert_eq!(on_dlq.len(), 1, "one record on {dlq_topic}");
        let copy = &on_dlq[0];
        assert_eq!(copy.key.as_deref(), Some(poison.as_str()));
        assert_eq!(
            copy.partition,
            stream::partitioner::partition_for_key(
                poison.as_bytes(),
                log.partition_count(&dlq_topic).await.unwrap()
            )
        );
        let event: CloudEvent = serde_json::from_slice(copy.value.as_deref().unwrap()).unwrap();
        assert_eq!(event.id, poisoned.id, "the original payload");
        let h = &copy.headers;
        assert_eq!(h["ce_id"], poisoned.id.to_string());
        assert_eq!(h["dlq_original_topic"], TOPIC);
        assert_eq!(h["dlq_original_partition"], p.to_string());
        assert_eq!(h["dlq_original_offset"], offset.to_string());
        assert_eq!(h["dlq_consumer"], CONSUMER);
        assert_eq!(h["dlq_attempts"], "1");
        assert!(h["dlq_error"].contains("poison"), "{}", h["dlq_error"]);

        // Act 2: the handler is fixed and the dead letter replayed, twice.
        let fixed = RecordingHandler::new();
        let outcome = dead_letters::replay(&t.db, dead.id, &fixed).await.unwrap();
        let again = dead_letters::replay(&t.db, dead.id, &fixed).await;

        // Assert 2: applied once, then refused.
        assert_eq!(outcome, ReplayOutcome::Applied);
        assert!(
            matches!(again, Err(DeadLetterError::NotParked { .. })),
            "{again:?}"
        );
        let mut all = healthy.clone();
        all.push(poisoned.clone());
        assert_applied_exactly_once(&t.db, &all).await;
        assert_eq!(
            dead_letters::show(&t.db, dead.id).await.unwrap().status,
            DeadLetterStatus::Replayed
        );
    }
);
