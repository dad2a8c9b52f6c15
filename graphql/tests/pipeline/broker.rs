//! The broker killed and restarted mid-stream.

use super::*;

on_every_log!(
    broker_killed_and_restarted_mid_stream_loses_nothing,
    |t, transport| {
        // Arrange: a consumer slow enough (a pause per record, two records per transaction) to
        // be caught mid-burst.
        let app = TestApp::on(t);
        let db = &t.db;
        create_effects_table(db).await;
        let mut broker = TestBroker::start(transport).await;
        let log = connect(&broker).await;
        let partitions = log.partition_count(TOPIC).await.unwrap();
        let relay = RunningRelay::start(&app, &broker).await;
        let handler = RecordingHandler::new();
        handler.script().delay = Duration::from_millis(50);
        let consumer = RunningConsumer::start(
            db,
            &broker,
            handler.clone(),
            ConsumerConfig {
                max_batch_records: 2,
                ..consumer_config(partitions)
            },
        )
        .await;

        // Act: three times: a burst; a SIGKILL as soon as the consumer has applied part of it; a
        // burst while the broker is down, kept down until the relay has failed on it; a restart on
        // the same storage.
        let mut caught_mid_stream = 0;
        for round in 1..=3 {
            let applied_before = effects(db).await.len();
            write_tasks(&app, 4).await;
            wait_until(
                &format!("the consumer applies part of burst {round}"),
                DEADLINE,
                || async move { effects(db).await.len() > applied_before },
            )
            .await;
            broker.kill();
            if effects(db).await.len() < task_events(&app).await.len() {
                caught_mid_stream += 1;
            }
            write_tasks(&app, 2).await;
            wait_until(
                &format!("the relay fails on the rows written while the broker is down ({round})"),
                DEADLINE,
                || async {
                    app.outbox()
                        .await
                        .iter()
                        .any(|r| r.published_at.is_none() && r.attempts > 0)
                },
            )
            .await;
            broker.restart().await.unwrap();
            wait_until(
                &format!("the relay has published everything after restart {round}"),
                RESTART_DEADLINE,
                || async { pending(&app).await == 0 },
            )
            .await;
        }
        write_tasks(&app, 4).await;
        wait_quiescent(&app, &log, &[&consumer], RESTART_DEADLINE).await;
        consumer.stop().await.unwrap();
        relay.stop().await;

        // Assert: nothing lost on the log, nothing lost or doubled in effect, per-task order kept.
        assert!(
            caught_mid_stream > 0,
            "at least one kill landed while the consumer was behind the log"
        );
        let expected = task_events(&app).await;
        assert_eq!(expected.len(), 44);
        let on_log: BTreeSet<Uuid> = read_all(&log, TOPIC)
            .await
            .iter()
            .map(|r| Uuid::parse_str(&r.headers["ce_id"]).unwrap())
            .collect();
        let outbox: BTreeSet<Uuid> = expected.iter().map(|e| e.id).collect();
        assert_eq!(
            on_log, outbox,
            "the log holds every event (duplicates allowed)"
        );
        assert_applied_exactly_once(db, &expected).await;
        eprintln!(
            "{:?}: {caught_mid_stream} of 3 kills caught the consumer mid-stream; {} handler calls \
         for {} events",
            t.backend,
            handler.calls().len(),
            expected.len()
        );
    }
);
