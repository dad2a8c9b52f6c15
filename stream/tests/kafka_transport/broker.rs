//! The broker itself going away or requiring authentication: a killed broker, a restarted
//! one, and SASL/SCRAM (tansu only).

use super::*;

#[tokio::test]
async fn a_killed_broker_is_unavailable_within_the_deadline_and_a_restart_keeps_every_record_on_tansu()
 {
    // Arrange
    let retry_deadline = Duration::from_secs(2);
    let request_timeout = Duration::from_secs(2);
    let mut test = TestBroker::start_with(|config| {
        config.retry_deadline = retry_deadline;
        config.request_timeout = request_timeout;
    })
    .await;
    test.log.ensure_topics(&[TOPIC]).await.unwrap();
    for start in [0, 4, 8] {
        test.log
            .produce(TOPIC, 1, numbered(start..start + 4))
            .await
            .unwrap();
    }

    // Act 1: SIGKILL, then produce and fetch.
    test.tansu().kill();
    let started = Instant::now();
    let produce_error = test
        .log
        .produce(TOPIC, 1, numbered(100..101))
        .await
        .unwrap_err();
    let produce_elapsed = started.elapsed();
    let fetch_error = test
        .log
        .fetch(TOPIC, 1, 0, 100, Duration::from_millis(100))
        .await
        .unwrap_err();

    // Assert 1
    assert!(
        matches!(produce_error, LogError::Unavailable(_)),
        "{produce_error:?}"
    );
    assert!(
        produce_elapsed <= retry_deadline + request_timeout + Duration::from_secs(1),
        "produce gave up after {produce_elapsed:?}"
    );
    assert!(fetch_error.is_transient(), "{fetch_error:?}");

    // Act 2: restart on the same storage; the same KafkaLog goes on.
    test.tansu().restart().await.unwrap();
    let after_restart = test.log.produce(TOPIC, 1, numbered(12..14)).await;

    // Assert 2
    assert_eq!(after_restart.unwrap(), [12, 13]);
    let fetched = test
        .log
        .fetch(TOPIC, 1, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();
    let keys: Vec<_> = fetched
        .records
        .iter()
        .map(|r| r.key.clone().unwrap())
        .collect();
    let expected: Vec<_> = (0..14).map(|n| format!("task-{n}")).collect();
    // The produce that failed while the broker was dead never reached it.
    assert_eq!(keys, expected);
    assert_eq!(offsets(&fetched.records), (0..14).collect::<Vec<_>>());
    assert_eq!(test.log.high_watermark(TOPIC, 1).await.unwrap(), 14);
}

#[tokio::test]
async fn sasl_scram_users_authenticate_and_wrong_credentials_are_refused_on_tansu() {
    // Arrange: a SCRAM-SHA-512 user, then the broker restarted with authentication required.
    let mut broker = TansuBroker::start().await.unwrap();
    let relay = SaslSettings {
        mechanism: SaslMechanism::ScramSha512,
        username: "relay".to_owned(),
        password: "correct horse".to_owned(),
    };
    broker
        .create_scram_user(relay.mechanism, &relay.username, &relay.password)
        .unwrap();
    broker.require_authentication(relay.clone());
    broker.restart().await.unwrap();
    let config_as = |sasl: Option<SaslSettings>| {
        let mut config = KafkaConfig::from_brokers(&broker.brokers()).unwrap();
        config.retry_deadline = Duration::from_millis(500);
        config.connect_timeout = Duration::from_secs(5);
        config.sasl = sasl;
        config
    };

    // Act
    let authenticated = KafkaLog::connect(config_as(Some(relay.clone()))).await;
    let wrong_password = KafkaLog::connect(config_as(Some(SaslSettings {
        password: "wrong".to_owned(),
        ..relay.clone()
    })))
    .await;
    let anonymous = KafkaLog::connect(config_as(None)).await;

    // Assert
    let log = authenticated.expect("the SCRAM user connects");
    log.ensure_topics(&[TOPIC]).await.unwrap();
    assert_eq!(log.produce(TOPIC, 0, numbered(0..2)).await.unwrap(), [0, 1]);
    let wrong_password = wrong_password.expect_err("a wrong password is refused");
    assert!(
        wrong_password.to_string().contains("Sasl"),
        "{wrong_password}"
    );
    assert!(
        !wrong_password.to_string().contains("wrong"),
        "{wrong_password}"
    );
    assert!(
        anonymous.is_err(),
        "a client without credentials is refused"
    );
}

#[tokio::test]
async fn a_stopped_broker_restarts_with_its_records_on_tansu() {
    // Arrange
    let mut test = TestBroker::with_topic().await;
    let t = test.topic.clone();
    test.log
        .produce(t.as_str(), 0, numbered(0..3))
        .await
        .unwrap();

    // Act
    let started = Instant::now();
    test.tansu().stop().await.unwrap();
    let stop_took = started.elapsed();
    test.tansu().restart().await.unwrap();

    // Assert
    assert_eq!(test.tansu().pid().map(|_| ()), Some(()));
    // tansu 0.6.0 takes 2-5 s to exit on SIGTERM; at 10 s stop() would SIGKILL it.
    assert!(
        stop_took < Duration::from_secs(9),
        "tansu ignored SIGTERM: {stop_took:?}"
    );
    let fetched = test
        .log
        .fetch(t.as_str(), 0, 0, 100, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(offsets(&fetched.records), [0, 1, 2]);
}
