//! Consumers killed before and after a commit, and two instances on one partition.

use super::*;

on_every_log!(
    consumer_killed_before_and_after_commit_resumes_exactly_once,
    |t, transport| {
        // Arrange: 40 records on the log.
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 20).await;
        publish_all(&app, &broker).await;
        let events = task_events(&app).await;

        // Act: three instances killed at chosen points, each started after the previous one died.
        // 1. Holding the 4th call with its effect written inside an open batch of up to five:
        //    killed before that batch commits.
        // 2. One record per transaction, holding the 9th call before it writes: killed after
        //    the commits of the records before it, with its own transaction open.
        // 3. Free-running with a pause per record: killed right after the first commit seen,
        //    wherever the other partitions stand.
        for kill in 1..=3 {
            let handler = RecordingHandler::new();
            let entered = Arc::new(Notify::new());
            let mut config = consumer_config(partitions);
            match kill {
                1 => {
                    config.max_batch_records = 5;
                    handler.script().hold = Some(Hold {
                        on_call: 4,
                        after_effect: true,
                        entered: entered.clone(),
                    });
                }
                2 => {
                    config.max_batch_records = 1;
                    handler.script().hold = Some(Hold {
                        on_call: 9,
                        after_effect: false,
                        entered: entered.clone(),
                    });
                }
                _ => {
                    config.max_batch_records = 3;
                    handler.script().delay = Duration::from_millis(30);
                }
            }
            let applied_before = effects(&t.db).await.len();
            let consumer = RunningConsumer::start(&t.db, &broker, handler.clone(), config).await;
            if kill < 3 {
                tokio::time::timeout(DEADLINE, entered.notified())
                    .await
                    .expect("the held call is reached");
            } else {
                let db = &t.db;
                wait_until("a batch is committed", DEADLINE, || async move {
                    effects(db).await.len() > applied_before
                })
                .await;
            }
            consumer.abort().await;

            // Assert after each kill: the committed effects are exactly the records below the
            // stored offsets (no half batch, nothing applied twice). Read in one snapshot: a
            // COMMIT the killed instance had already sent may still land meanwhile.
            let (applied, stored) = snapshot(&t.db, partitions).await;
            let below: BTreeSet<Uuid> = events
                .iter()
                .filter(|e| {
                    let (p, offset) = e.at.unwrap();
                    offset < stored[usize::try_from(p).unwrap()].unwrap_or(0)
                })
                .map(|e| e.id)
                .collect();
            let applied_ids: BTreeSet<Uuid> = applied.iter().map(|e| e.event_id).collect();
            assert_eq!(
                applied.len(),
                applied_ids.len(),
                "kill {kill}: nothing twice"
            );
            assert_eq!(
                applied_ids, below,
                "kill {kill}: effects match the stored offsets"
            );
            assert!(
                applied.len() < events.len(),
                "kill {kill}: killed mid-stream"
            );
            eprintln!(
                "{:?}: kill {kill} left {} of {} applied, stored offsets {stored:?}, \
                 {} handler calls",
                t.backend,
                applied.len(),
                events.len(),
                handler.calls().len()
            );
            let hold = handler.script().hold.clone();
            if let Some(hold) = hold {
                let held = handler.calls()[hold.on_call - 1].2;
                assert!(
                    !applied_ids.contains(&held),
                    "kill {kill}: the held record's transaction was rolled back"
                );
            }
        }
        let resume_at = stored_offsets(&t.db, partitions).await;
        let handler = RecordingHandler::new();
        let consumer =
            RunningConsumer::start(&t.db, &broker, handler.clone(), consumer_config(partitions))
                .await;
        wait_quiescent(&app, &log, &[&consumer], DEADLINE).await;
        consumer.stop().await.unwrap();

        // Assert: exactly once overall, and the last instance started at the stored offsets.
        assert_applied_exactly_once(&t.db, &events).await;
        let calls = handler.calls();
        for p in 0..partitions {
            let first = calls.iter().find(|c| c.0 == p).map(|c| c.1);
            let end = log.high_watermark(TOPIC, p).await.unwrap();
            let stored = resume_at[usize::try_from(p).unwrap()];
            if stored.unwrap_or(0) < end {
                assert_eq!(
                    first,
                    stored.or(Some(0)),
                    "partition {p} resumed at its offset"
                );
            } else {
                assert_eq!(first, None, "partition {p} had nothing left");
            }
        }
    }
);

on_every_log!(
    two_instances_on_the_same_partition_never_double_apply,
    |t, transport| {
        // Arrange
        let app = TestApp::on(t);
        create_effects_table(&t.db).await;
        let broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        write_tasks(&app, 8).await;
        publish_all(&app, &broker).await;

        // Act: two instances with one name on every partition, started at the same moment on
        // a log that already holds records, with small batches so they collide; more records
        // arrive while they run.
        let small = ConsumerConfig {
            fetch_max_records: 10,
            max_batch_records: 3,
            ..consumer_config(partitions)
        };
        let (a, b) = (RecordingHandler::new(), RecordingHandler::new());
        let (log_a, log_b) = (connect(&broker).await, connect(&broker).await);
        let first = RunningConsumer::on(&t.db, log_a, a.clone(), small.clone());
        let second = RunningConsumer::on(&t.db, log_b, b.clone(), small);
        let relay = RunningRelay::start(&app, &broker).await;
        write_tasks(&app, 8).await;
        wait_quiescent(&app, &log, &[&first, &second], DEADLINE).await;
        first.stop().await.unwrap();
        second.stop().await.unwrap();
        relay.stop().await;

        // Assert
        eprintln!(
            "{:?}: the first instance ran its handler {} times, the second {}",
            t.backend,
            a.calls().len(),
            b.calls().len()
        );
        let expected = task_events(&app).await;
        assert_eq!(expected.len(), 32);
        assert_applied_exactly_once(&t.db, &expected).await;
        assert_eq!(
            a.calls().len() + b.calls().len(),
            expected.len(),
            "the offset compare-and-set comes first: a losing instance never runs its handler \
         (first {}, second {})",
            a.calls().len(),
            b.calls().len()
        );
    }
);
