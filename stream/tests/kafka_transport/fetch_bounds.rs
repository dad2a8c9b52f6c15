//! Fetches at the edges of the log: waiting at the end, not delaying produces, past the end,
//! and unknown topics and partitions.

use super::*;

#[tokio::test]
async fn a_fetch_at_the_end_waits_up_to_max_wait_and_returns_nothing() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 0, numbered(0..2))
        .await
        .unwrap();
    let max_wait = Duration::from_millis(700);

    // Act
    let started = Instant::now();
    let fetched = test
        .log
        .fetch(t.as_str(), 0, 2, 100, max_wait)
        .await
        .unwrap();
    let elapsed = started.elapsed();

    // Assert
    assert!(fetched.records.is_empty(), "{:?}", fetched.records);
    assert_eq!(fetched.high_watermark, 2);
    assert!(
        elapsed < max_wait + Duration::from_secs(3),
        "returned after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_waiting_fetch_does_not_delay_a_produce_to_the_same_partition() {
    // Arrange: a fetch at the end, which the broker holds for its max_wait.
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let log = Arc::new(test.log);
    // Connects the fetch side first, so that the spawned fetch goes straight to the wire.
    log.fetch(t.as_str(), 0, 0, 1, Duration::from_millis(10))
        .await
        .unwrap();
    let max_wait = Duration::from_secs(3);
    let fetching = {
        let log = Arc::clone(&log);
        let t = t.clone();
        tokio::spawn(async move { log.fetch(t.as_str(), 0, 0, 100, max_wait).await })
    };
    wait_until_fetch_is_waiting().await;

    // Act
    let started = Instant::now();
    let produced = log.produce(t.as_str(), 0, numbered(0..1)).await.unwrap();
    let elapsed = started.elapsed();

    // Assert
    assert_eq!(produced, [0]);
    assert!(
        elapsed < Duration::from_secs(1),
        "the produce waited {elapsed:?} behind the fetch"
    );
    let fetched = fetching.await.unwrap().unwrap();
    assert!(fetched.records.len() <= 1);
}

/// On this single-threaded runtime the spawned task runs when the test task yields; with its
/// connection already open it writes the fetch request and then waits for the answer. (Were it
/// still unsent, the produce would simply come first and the test would prove nothing, never
/// fail wrongly.)
async fn wait_until_fetch_is_waiting() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_fetch_past_the_end_is_offset_out_of_range() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 0, numbered(0..2))
        .await
        .unwrap();

    // Act
    let error = test
        .log
        .fetch(t.as_str(), 0, 5, 100, Duration::from_millis(200))
        .await
        .unwrap_err();

    // Assert
    match error {
        LogError::OffsetOutOfRange {
            topic,
            partition,
            offset,
            high_watermark,
        } => assert_eq!(
            (topic.as_str(), partition, offset, high_watermark),
            (t.as_str(), 0, 5, 2)
        ),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    let negative = test
        .log
        .fetch(t.as_str(), 0, -1, 100, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(
            negative,
            LogError::OffsetOutOfRange {
                offset: -1,
                high_watermark: 2,
                ..
            }
        ),
        "{negative:?}"
    );
    // The partition is still usable afterwards.
    let fetched = test
        .log
        .fetch(t.as_str(), 0, 1, 100, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(offsets(&fetched.records), [1]);
}

#[tokio::test]
async fn unknown_topics_and_partitions_are_fatal_and_not_auto_created() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();

    // Act
    let unknown_topic = test
        .log
        .fetch("no-such-topic", 0, 0, 1, Duration::from_millis(100))
        .await
        .unwrap_err();
    let unknown_partition = test
        .log
        .produce(t.as_str(), 3, numbered(0..1))
        .await
        .unwrap_err();

    // Assert
    assert!(
        matches!(&unknown_topic, LogError::Fatal(m) if m.contains("no-such-topic")),
        "{unknown_topic:?}"
    );
    assert!(
        matches!(&unknown_partition, LogError::Fatal(m) if m.contains("partition 3")),
        "{unknown_partition:?}"
    );
    let listed = test.log.topic_partitions().await.unwrap();
    assert!(!listed.contains_key("no-such-topic"), "{listed:?}");
}
