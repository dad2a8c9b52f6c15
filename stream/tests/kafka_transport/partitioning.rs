//! Topics and partitions: creation with the configured partition count, the Java client's
//! partitioner, and broker lists.

use super::*;

#[tokio::test]
async fn topics_are_created_once_with_the_configured_partition_count_on_tansu() {
    // Arrange
    let test = TestBroker::start_with(|config| config.partitions = 2).await;

    // Act
    test.log.ensure_taskstream_topics().await.unwrap();
    test.log.ensure_taskstream_topics().await.unwrap();

    // Assert
    let listed = test.log.topic_partitions().await.unwrap();
    for topic in topics::ALL {
        assert_eq!(listed.get(topic), Some(&2), "{topic} in {listed:?}");
        assert_eq!(listed.get(&topics::dlq(topic)), Some(&2), "{topic}.dlq");
    }
    assert_eq!(listed.len(), 2 * topics::ALL.len(), "{listed:?}");
    assert_eq!(
        LogWriter::partition_count(&test.log, TOPIC).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn keyed_records_land_on_the_partition_the_java_client_picks() {
    // Arrange
    let test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    let keys: Vec<String> = (0..12).map(|n| format!("task-{n}")).collect();

    // Act
    for key in &keys {
        let partition = test.log.partition_for_key(t.as_str(), key).await.unwrap();
        test.log
            .produce(t.as_str(), partition, vec![record(key, Some("v"))])
            .await
            .unwrap();
    }

    // Assert
    for partition in 0..3 {
        let fetched = test
            .log
            .fetch(t.as_str(), partition, 0, 100, Duration::from_millis(200))
            .await
            .unwrap();
        let got: Vec<_> = fetched
            .records
            .iter()
            .filter_map(|r| r.key.clone())
            .collect();
        let expected: Vec<_> = keys
            .iter()
            .filter(|key| partitioner::partition_for_key(key.as_bytes(), 3) == partition)
            .cloned()
            .collect();
        assert_eq!(got, expected, "partition {partition}");
    }
}

#[test]
fn malformed_broker_lists_are_rejected_naming_kafka_brokers() {
    for input in ["", "host", "host:abc"] {
        let error = KafkaConfig::from_brokers(input).unwrap_err().to_string();
        assert!(error.contains("KAFKA_BROKERS"), "{input:?}: {error}");
    }
    assert!(
        KafkaConfig::from_brokers("host")
            .unwrap_err()
            .to_string()
            .contains("no port")
    );
    assert!(
        KafkaConfig::from_brokers("host:abc")
            .unwrap_err()
            .to_string()
            .contains("\"abc\"")
    );
}
