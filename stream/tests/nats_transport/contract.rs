//! The produce/fetch contract, as on Kafka: batches come back exactly, offsets are dense and
//! continue across batches, a fetch anywhere starts at its offset, an idle fetch waits and
//! returns empty, and offsets outside the partition are refused.

use super::*;

#[tokio::test]
async fn a_produced_batch_is_fetched_back_exactly() {
    // Arrange
    let test = TestServer::start().await;
    let batch = vec![
        record("task-a", Some(r#"{"n":1}"#)),
        record("task-b", Some(r#"{"n":2}"#)),
        record("task-a", None),
        OutgoingRecord {
            headers: BTreeMap::new(),
            ..record("task-c", Some(""))
        },
    ];

    // Act
    let produced = test.log.produce(TOPIC, 1, batch.clone()).await.unwrap();
    let fetched = test
        .log
        .fetch(TOPIC, 1, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // A fetch returns *up to* its maximum (the server may hand over a batch in parts), so
    // the records are compared as read to the end.
    let records = read_from(&test.log, TOPIC, 1, 0, 100).await;

    // Assert
    assert_eq!(produced, [0, 1, 2, 3]);
    assert_eq!(fetched.high_watermark, 4);
    assert!(
        !fetched.records.is_empty() && fetched.records[0].offset == 0,
        "a fetch starts at its offset"
    );
    let expected: Vec<LogRecord> = batch
        .into_iter()
        .zip(produced)
        .map(|(sent, offset)| LogRecord {
            topic: TOPIC.to_owned(),
            partition: 1,
            offset,
            key: Some(sent.key),
            value: sent.value,
            headers: sent.headers,
            timestamp: sent.timestamp,
        })
        .collect();
    assert_eq!(records, expected);
    assert_eq!(records[2].value, None, "a tombstone stays one");
    assert_eq!(
        records[3].value,
        Some(Vec::new()),
        "an empty value is not a tombstone"
    );
    assert_eq!(test.log.high_watermark(TOPIC, 1).await.unwrap(), 4);
    assert_eq!(test.log.low_watermark(TOPIC, 1).await.unwrap(), 0);
    assert_eq!(test.log.high_watermark(TOPIC, 0).await.unwrap(), 0);
}

#[tokio::test]
async fn offsets_continue_across_batches_and_fetches_start_anywhere() {
    // Arrange
    let test = TestServer::start().await;

    // Act
    let first = test.log.produce(TOPIC, 0, numbered(0..3)).await.unwrap();
    let second = test.log.produce(TOPIC, 0, numbered(3..250)).await.unwrap();
    let middle = test
        .log
        .fetch(TOPIC, 0, 2, 2, Duration::from_secs(1))
        .await
        .unwrap();
    let back = test
        .log
        .fetch(TOPIC, 0, 1, 1, Duration::from_secs(1))
        .await
        .unwrap();
    let everything = read_from(&test.log, TOPIC, 0, 0, 100).await;

    // Assert
    assert_eq!(first, [0, 1, 2]);
    assert_eq!(second, (3..250).collect::<Vec<_>>());
    assert_eq!(offsets(&middle.records), [2, 3]);
    assert_eq!(middle.high_watermark, 250);
    assert_eq!(offsets(&back.records), [1], "a fetch may go back");
    assert_eq!(offsets(&everything), (0..250).collect::<Vec<_>>());
    assert_eq!(everything[7].key.as_deref(), Some("task-7"));
    assert_eq!(everything[7].value.as_deref(), Some(&b"value-7"[..]));
}

#[tokio::test]
async fn an_idle_fetch_waits_then_wakes_for_a_new_record() {
    // Arrange
    let test = TestServer::start().await;
    test.log.produce(TOPIC, 2, numbered(0..1)).await.unwrap();
    let started = std::time::Instant::now();

    // Act: at the end, nothing comes within the wait.
    let empty = test
        .log
        .fetch(TOPIC, 2, 1, 10, Duration::from_millis(300))
        .await
        .unwrap();
    let waited = started.elapsed();
    // A record published while a fetch waits ends the wait.
    let (fetched, _) = tokio::join!(
        test.log.fetch(TOPIC, 2, 1, 10, Duration::from_secs(20)),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            test.log.produce(TOPIC, 2, numbered(1..2)).await.unwrap();
        }
    );

    // Assert
    assert!(empty.records.is_empty());
    assert_eq!(empty.high_watermark, 1);
    assert!(waited >= Duration::from_millis(300), "waited {waited:?}");
    let fetched = fetched.unwrap();
    assert_eq!(offsets(&fetched.records), [1]);
}

#[tokio::test]
async fn offsets_outside_the_partition_and_unknown_places_are_refused() {
    // Arrange
    let test = TestServer::start().await;
    test.log.produce(TOPIC, 0, numbered(0..2)).await.unwrap();
    let wait = Duration::from_millis(100);

    // Act
    let past_end = test.log.fetch(TOPIC, 0, 3, 10, wait).await;
    let negative = test.log.fetch(TOPIC, 0, -1, 10, wait).await;
    let unknown_topic = test.log.fetch("no-such-topic", 0, 0, 10, wait).await;
    let unknown_partition = test.log.produce(TOPIC, 3, numbered(0..1)).await;
    let at_end = test.log.fetch(TOPIC, 0, 2, 10, wait).await;

    // Assert
    for (what, result) in [("past the end", past_end), ("negative", negative)] {
        match result {
            Err(LogError::OffsetOutOfRange {
                high_watermark: 2, ..
            }) => {}
            other => panic!("{what}: expected OffsetOutOfRange, got {other:?}"),
        }
    }
    assert!(
        matches!(unknown_topic, Err(LogError::Fatal(ref m)) if m.contains("no-such-topic")),
        "{unknown_topic:?}"
    );
    assert!(
        matches!(unknown_partition, Err(LogError::Fatal(ref m)) if m.contains("no partition 3")),
        "{unknown_partition:?}"
    );
    assert!(at_end.unwrap().records.is_empty(), "the end itself is fine");
}
