//! Lazy offsets: records of types the handler skips move only the in-memory position; the
//! stored offset catches up with the next effectful transaction, when the log goes quiet, and at
//! shutdown, and its compare-and-set still stops an instance whose offset was moved under it.

use super::*;

/// The one event type the handler acts on; [`append`] writes `taskstream.test.happened`.
const WANTED: &str = "taskstream.test.wanted";

/// Appends one event of type [`WANTED`] and wakes the consumers; returns its id.
async fn append_wanted(db: &DatabaseConnection) -> Uuid {
    let id = append_wanted_quietly(db).await;
    stream::outbox::notify_committed();
    id
}

/// As [`append_wanted`], without waking anyone: a waiting consumer sees it only at its next
/// wake-up.
async fn append_wanted_quietly(db: &DatabaseConnection) -> Uuid {
    let event = CloudEvent::new(WANTED, "task-w", Utc::now(), json!({ "wanted": true }));
    let txn = stream::outbox::begin_write(db).await.unwrap();
    stream::outbox::append(&txn, TOPIC, &event.subject, &event, Utc::now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    event.id
}

/// How many records the test consumer has skipped so far (its `ignored` records counter, which
/// counts skipped records without any database write).
fn skipped_so_far() -> u64 {
    telemetry::metrics::render()
        .lines()
        .filter(|l| {
            l.starts_with("taskstream_consumer_records")
                && l.contains(&format!("consumer=\"{CONSUMER}\""))
                && l.contains("outcome=\"ignored\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until the consumer has skipped `n` records in all.
async fn wait_skipped(n: u64) {
    wait_until(&format!("the consumer skipped {n} records"), || async {
        skipped_so_far() >= n
    })
    .await;
}

/// Neither a quiet log nor the interval stores the offset during the test: only an effectful
/// transaction or shutdown can.
fn patient() -> ConsumerConfig {
    ConsumerConfig {
        fetch_max_wait: Duration::from_secs(3600),
        offset_flush_interval: Duration::from_secs(3600),
        offset_quiet: Duration::from_secs(3600),
        ..config()
    }
}

on_both_databases!(
    skipped_records_are_stored_with_the_next_effectful_batch_and_at_shutdown,
    |t| {
        create_effects_table(&t.db).await;
        let handler = TestHandler::new().acting_on(&[WANTED]);
        let running = Running::start(&t.db, handler.clone(), patient());
        let skipped = append(&t.db, TOPIC, 100).await;
        wait_skipped(100).await;
        assert_eq!(
            stored_offset(&t.db).await,
            Some(0),
            "skipping records wrote no offset"
        );

        let wanted = append_wanted(&t.db).await;
        wait_caught_up(&t.db).await;
        assert_eq!(
            effects(&t.db).await,
            vec![wanted],
            "one transaction, past both"
        );

        let more = append(&t.db, TOPIC, 30).await;
        wait_skipped(130).await;
        running.stop().await.unwrap();
        assert_eq!(
            stored_offset(&t.db).await,
            Some(log_end(&t.db).await),
            "shutdown stores the position past the skipped records"
        );
        assert!(
            skipped
                .iter()
                .chain(&more)
                .all(|id| handler.calls(*id) == 0),
            "the handler never saw a skipped record"
        );

        // A restart starts past everything.
        let restarted = TestHandler::new().acting_on(&[WANTED]);
        let running = Running::start(&t.db, restarted.clone(), patient());
        let after = append_wanted(&t.db).await;
        wait_until("the restarted consumer applies a new event", || async {
            restarted.calls(after) == 1
        })
        .await;
        running.stop().await.unwrap();
        assert_eq!(
            restarted.calls(wanted),
            0,
            "nothing before the restart again"
        );
        assert_eq!(effects(&t.db).await, vec![wanted, after]);
    }
);

on_both_databases!(a_quiet_log_stores_the_offset_past_skipped_records, |t| {
    create_effects_table(&t.db).await;
    // Fetches that would wait an hour, but the log is quiet for 100 ms after the records.
    let quick = ConsumerConfig {
        fetch_max_wait: Duration::from_secs(3600),
        offset_flush_interval: Duration::from_secs(3600),
        offset_quiet: Duration::from_millis(100),
        ..config()
    };
    let running = Running::start(&t.db, TestHandler::new().acting_on(&[WANTED]), quick);
    append(&t.db, TOPIC, 50).await;
    wait_caught_up(&t.db).await;
    running.stop().await.unwrap();
    assert!(effects(&t.db).await.is_empty());
});

on_both_databases!(
    an_offset_moved_under_a_lazily_skipping_instance_makes_it_reload_not_reapply,
    |t| {
        create_effects_table(&t.db).await;
        let first = append_wanted(&t.db).await;
        let handler = TestHandler::new().acting_on(&[WANTED]);
        let running = Running::start(&t.db, handler.clone(), patient());
        wait_until("the first wanted event is applied", || async {
            handler.calls(first) == 1
        })
        .await;
        append(&t.db, TOPIC, 20).await;
        wait_skipped(20).await;
        // Another instance (simulated) applies the next wanted event and stores its offset,
        // while this one, waiting for a wake-up, still holds the old stored offset.
        let second = append_wanted_quietly(&t.db).await;
        let past_second = log_end(&t.db).await;
        t.db.execute_unprepared(&format!(
            "UPDATE consumer_offsets SET next_offset = {past_second} \
             WHERE consumer = '{CONSUMER}' AND topic = '{TOPIC}' AND partition = 0"
        ))
        .await
        .unwrap();
        let third = append_wanted(&t.db).await;
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();
        assert_eq!(
            effects(&t.db).await,
            vec![first, third],
            "the conflict made it reload past the other instance's work; nothing twice"
        );
        assert_eq!(handler.calls(second), 0);
    }
);
