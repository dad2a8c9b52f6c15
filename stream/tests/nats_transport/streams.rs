//! Streams: one per topic partition, created once (also concurrently), an interrupted creation
//! completed, a topic in use never repartitioned, a gap refused.

use async_nats::jetstream;

use super::*;

async fn jetstream_of(server: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(server.url()).await.unwrap())
}

#[tokio::test]
async fn every_topic_and_its_dead_letter_twin_get_a_stream_per_partition() {
    // Arrange
    let test = TestServer::start().await;
    let js = jetstream_of(&test.server).await;

    // Act: two more instances start at the same moment.
    let (a, b) = tokio::join!(
        NatsLog::connect_with_topics(config(&test.server)),
        NatsLog::connect_with_topics(config(&test.server)),
    );
    a.unwrap();
    b.unwrap();

    // Assert
    for topic in topics::ALL {
        for name in [topic.to_owned(), topics::dlq(topic)] {
            assert_eq!(test.log.partition_count(&name).await.unwrap(), 3, "{name}");
        }
    }
    let mut stream = js.get_stream("taskstream-task-events_dlq-2").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, ["taskstream.task-events.dlq.2"]);
    assert_eq!(info.config.num_replicas, 1);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.config.max_age, Duration::from_secs(7 * 24 * 3600));
    let names: Vec<String> = futures_util::TryStreamExt::try_collect(js.stream_names())
        .await
        .unwrap();
    assert_eq!(names.len(), 8 * 3, "{names:?}");
}

#[tokio::test]
async fn an_interrupted_creation_is_completed_and_a_topic_in_use_is_not_repartitioned() {
    // Arrange: a first start created only partitions 0 and 1 of `alpha`, and `beta` has two
    // partitions and a record.
    let server = NatsServer::start().await.unwrap();
    let mut two = config(&server);
    two.partitions = 2;
    let first = NatsLog::connect(two).await.unwrap();
    first.ensure_topics(&["alpha", "beta"]).await.unwrap();
    first.produce("beta", 0, numbered(0..1)).await.unwrap();

    // Act
    let second = NatsLog::connect(config(&server)).await.unwrap();
    second.ensure_topics(&["alpha", "beta"]).await.unwrap();

    // Assert
    assert_eq!(second.partition_count("alpha").await.unwrap(), 3);
    assert_eq!(second.partition_count("beta").await.unwrap(), 2);
}

#[tokio::test]
async fn a_missing_partition_stream_is_refused_by_name() {
    // Arrange
    let test = TestServer::start().await;
    jetstream_of(&test.server)
        .await
        .delete_stream("taskstream-reminders-1")
        .await
        .unwrap();

    // Act
    let fresh = NatsLog::connect(config(&test.server)).await.unwrap();
    let count = fresh.partition_count(topics::REMINDERS).await;

    // Assert
    match count {
        Err(LogError::Fatal(message)) => {
            assert!(
                message.contains("taskstream-reminders-1"),
                "names the missing stream: {message}"
            );
        }
        other => panic!("expected a fatal error, got {other:?}"),
    }
}
