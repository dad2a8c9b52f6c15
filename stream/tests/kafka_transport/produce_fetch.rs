//! The produce/fetch contract: batches come back exactly, offsets continue across batches
//! (with and without compression), and a fetch inside a batch starts at its offset.

use super::*;

#[tokio::test]
async fn a_produced_batch_is_fetched_back_exactly() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
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
    let produced = test
        .log
        .produce(t.as_str(), 1, batch.clone())
        .await
        .unwrap();
    let fetched = test
        .log
        .fetch(t.as_str(), 1, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // Assert
    assert_eq!(produced, [0, 1, 2, 3]);
    assert_eq!(fetched.high_watermark, 4);
    let expected: Vec<LogRecord> = batch
        .into_iter()
        .zip(produced)
        .map(|(sent, offset)| LogRecord {
            topic: t.as_str().to_owned(),
            partition: 1,
            offset,
            key: Some(sent.key),
            value: sent.value,
            headers: sent.headers,
            timestamp: sent.timestamp,
        })
        .collect();
    assert_eq!(fetched.records, expected);
    assert_eq!(
        fetched.records[2].value, None,
        "a tombstone stays a tombstone"
    );
    assert_eq!(test.log.high_watermark(t.as_str(), 1).await.unwrap(), 4);
    assert_eq!(test.log.low_watermark(t.as_str(), 1).await.unwrap(), 0);
    assert_eq!(test.log.high_watermark(t.as_str(), 0).await.unwrap(), 0);
}

#[tokio::test]
async fn batches_continue_the_offsets_with_and_without_compression() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let mut plain_config = test.log.config().clone();
    plain_config.compression = Compression::None;
    let plain = KafkaLog::connect(plain_config).await.unwrap();

    // Act
    let first = test
        .log
        .produce(t.as_str(), 0, numbered(0..3))
        .await
        .unwrap();
    let second = plain.produce(t.as_str(), 0, numbered(3..5)).await.unwrap();
    let fetched = plain
        .fetch(t.as_str(), 0, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // Assert
    assert_eq!((first, second), (vec![0, 1, 2], vec![3, 4]));
    assert_eq!(offsets(&fetched.records), [0, 1, 2, 3, 4]);
    let values: Vec<_> = fetched.records.iter().map(|r| r.value.clone()).collect();
    let expected: Vec<_> = (0..5)
        .map(|n| Some(format!("value-{n}").into_bytes()))
        .collect();
    assert_eq!(values, expected);
}

#[tokio::test]
async fn a_fetch_inside_a_batch_returns_the_rest_of_the_batch_and_nothing_before() {
    // Arrange: one batch of ten records, then one of five.
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 2, numbered(0..10))
        .await
        .unwrap();
    test.log
        .produce(t.as_str(), 2, numbered(10..15))
        .await
        .unwrap();

    // Act
    let rest = test
        .log
        .fetch(t.as_str(), 2, 3, 100, Duration::from_secs(1))
        .await
        .unwrap();
    let two = test
        .log
        .fetch(t.as_str(), 2, 7, 2, Duration::from_secs(1))
        .await
        .unwrap();
    let second_batch = test
        .log
        .fetch(t.as_str(), 2, 12, 100, Duration::from_secs(1))
        .await
        .unwrap();

    // Assert: a broker may return fewer batches than exist, but never a gap or an earlier record.
    let got = offsets(&rest.records);
    assert!(
        got.len() >= 7,
        "at least the rest of the first batch: {got:?}"
    );
    assert_eq!(got, (3..3 + got.len() as i64).collect::<Vec<_>>());
    assert_eq!(rest.records[0].key.as_deref(), Some("task-3"));
    assert_eq!(rest.high_watermark, 15);
    assert_eq!(offsets(&two.records), [7, 8]);
    assert_eq!(offsets(&second_batch.records), [12, 13, 14]);
}
