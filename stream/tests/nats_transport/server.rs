//! The server's side: kills and restarts, duplicates dropped by message id within the window
//! (and appended again after it), user and password, and servers that cannot serve the log.

use std::time::Instant;

use super::*;

#[tokio::test]
async fn a_killed_server_is_unavailable_within_the_bound_and_keeps_its_streams() {
    // Arrange
    let mut test = TestServer::start().await;
    test.log.produce(TOPIC, 0, numbered(0..5)).await.unwrap();
    let before = read_from(&test.log, TOPIC, 0, 0, 10).await;

    // Act
    test.server.kill();
    let started = Instant::now();
    let produce = test.log.produce(TOPIC, 0, numbered(5..6)).await;
    let fetch = test
        .log
        .fetch(TOPIC, 0, 5, 10, Duration::from_millis(200))
        .await;
    let elapsed = started.elapsed();
    test.server.restart().await.unwrap();
    let after_restart = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match test.log.produce(TOPIC, 0, numbered(6..7)).await {
                Ok(offsets) => return offsets,
                Err(e) => {
                    assert!(e.is_transient(), "{e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
    .await
    .expect("the client reconnects by itself");

    // Assert
    assert!(
        matches!(produce, Err(LogError::Unavailable(_))),
        "{produce:?}"
    );
    assert!(matches!(fetch, Err(LogError::Unavailable(_))), "{fetch:?}");
    assert!(elapsed < Duration::from_secs(20), "bounded: {elapsed:?}");
    assert_eq!(after_restart, [5], "the file store kept offsets 0 to 4");
    let all = read_from(&test.log, TOPIC, 0, 0, 10).await;
    assert_eq!(&all[..5], &before[..]);
    assert_eq!(offsets(&all), [0, 1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_record_published_again_within_the_window_is_dropped_by_event_id() {
    // Arrange: a relay published a batch, then died before marking its rows.
    let test = TestServer::start().await;
    let batch = numbered(0..3);
    let first = test.log.produce(TOPIC, 1, batch.clone()).await.unwrap();

    // Act: its successor publishes the same rows, and one new one.
    let mut again = batch.clone();
    again.extend(numbered(3..4));
    let second = test.log.produce(TOPIC, 1, again).await.unwrap();

    // Assert: the duplicates get the first copies' offsets; the log holds each event once.
    assert_eq!(first, [0, 1, 2]);
    assert_eq!(second, [0, 1, 2, 3]);
    let all = read_from(&test.log, TOPIC, 1, 0, 10).await;
    assert_eq!(offsets(&all), [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_record_published_again_after_the_window_is_appended_again() {
    // Arrange: streams that remember message ids for one second (the least
    // NATS_DUPLICATE_WINDOW_SECS takes; nats-server's own minimum is 100 ms).
    let server = NatsServer::start().await.unwrap();
    let mut short = config(&server);
    short.duplicate_window = Duration::from_secs(1);
    let log = NatsLog::connect(short).await.unwrap();
    log.ensure_topics(&[TOPIC]).await.unwrap();
    let event = numbered(0..1);
    let first = log.produce(TOPIC, 0, event.clone()).await.unwrap();

    // Act: the same event (same id) is published again once the window has passed (the server
    // forgets ids on a timer, so with a margin).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = log.produce(TOPIC, 0, event.clone()).await.unwrap();

    // Assert: the log holds the event twice; consumers deduplicate by event id.
    assert_eq!((first, second), (vec![0], vec![1]));
    let all = read_from(&log, TOPIC, 0, 0, 10).await;
    assert_eq!(offsets(&all), [0, 1]);
    assert!(
        all.iter()
            .all(|r| r.headers["ce_id"] == event[0].headers["ce_id"])
    );
}

#[tokio::test]
async fn credentials_are_used_and_refused_credentials_are_fatal() {
    // Arrange
    let server = NatsServer::start_with(&["--user", "taskstream", "--pass", "s3cret"])
        .await
        .unwrap();
    let with = |user: &str, password: &str| {
        let (user, password) = (user.to_owned(), password.to_owned());
        config_with(&server, NatsAuth::UserPassword { user, password })
    };

    // Act
    let good = NatsLog::connect(with("taskstream", "s3cret")).await;
    let bad = NatsLog::connect(with("taskstream", "wrong")).await;
    let none = NatsLog::connect(config(&server)).await;

    // Assert
    good.expect("the right password connects");
    assert_fatal("wrong password", bad, &["authorization"]);
    assert_fatal("no credentials", none, &["authorization"]);
}

#[tokio::test]
async fn a_server_without_jetstream_is_fatal_and_no_server_is_unavailable() {
    // Arrange
    let plain = NatsServer::start_without_jetstream().await.unwrap();
    let mut nowhere = NatsConfig::from_url("nats://127.0.0.1:9").unwrap();
    nowhere.connect_timeout = Duration::from_secs(1);

    // Act
    let without = NatsLog::connect(config(&plain)).await;
    let unreachable = NatsLog::connect(nowhere).await;

    // Assert
    match without {
        Err(LogError::Fatal(message)) => assert!(message.contains("JetStream"), "{message}"),
        other => panic!("expected a fatal error, got {other:?}"),
    }
    assert!(
        matches!(unreachable, Err(LogError::Unavailable(_))),
        "{unreachable:?}"
    );
}
