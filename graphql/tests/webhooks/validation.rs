//! What is refused up front: private and loopback targets unless allow-listed, bad event
//! payloads, and bad webhook flags.

use super::*;

#[tokio::test]
async fn private_and_loopback_targets_are_refused_without_a_connection_unless_allow_listed() {
    let loopback: fn(&Receiver) -> String = |r| r.url();
    let localhost: fn(&Receiver) -> String = |r| format!("http://localhost:{}/hook", r.addr.port());
    for url_of in [loopback, localhost] {
        // Arrange: the same loopback receiver, but a dispatcher with the default policy.
        let t = support::TestDb::migrated(support::Backend::Sqlite)
            .await
            .unwrap();
        let receiver = alice_notified_with_webhook(&t, &[], Some(SECRET), Some(url_of)).await;
        let public_only = WebhookSettings {
            policy: TargetPolicy::public_only(),
            ..settings(5)
        };

        // Act
        let report = dispatcher_at(&t.db, public_only, "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();

        // Assert
        assert_eq!(report.failed.len(), 1);
        assert!(
            receiver.received().is_empty(),
            "nothing may reach the target"
        );
        let error = only_delivery(&t.db).await.last_error.unwrap();
        assert!(
            error.contains("loopback") && error.contains("WEBHOOK_ALLOW_PRIVATE"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn update_settings_accepts_a_loopback_webhook_only_when_allow_listed() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let allowing = graphql::schema::build_schema(
        t.db.clone(),
        graphql::schema::Clock::System,
        &graphql::schema::SchemaLimits {
            webhook_targets: TargetPolicy::parse("127.0.0.1").unwrap(),
            ..graphql::schema::SchemaLimits::default()
        },
        graphql::live::LiveHub::new(),
    );
    let query = r#"mutation { updateSettings(input: { webhookUrl: "http://127.0.0.1:9/hook" }) { webhookUrl } }"#;
    let request = graphql::schema::prepare_request(
        async_graphql::Request::new(query),
        &t.db,
        graphql::schema::RequestMeta {
            user: graphql::auth::AuthUser { id: ALICE.into() },
            request_id: None,
        },
    );
    let response = graphql::schema::execute(&allowing, request).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);

    let (code, message) = TestApp::on(&t).err(ALICE, query, json!({})).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.contains("input.webhookUrl") && message.contains("loopback"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_event_payloads_are_permanent_errors_and_other_event_types_are_ignored() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    let record = |value: &str| LogRecord {
        topic: NOTIFICATIONS.into(),
        partition: 0,
        offset: 1,
        key: None,
        value: Some(value.as_bytes().to_vec()),
        headers: Default::default(),
        timestamp: Utc::now(),
    };
    let other_type = json!({ "specversion": "1.0", "id": uuid::Uuid::new_v4(), "source": "/t", "subject": "s", "datacontenttype": "application/json",
        "type": "taskstream.something.else", "time": "2030-01-01T00:00:00Z", "data": {} });
    let bad_data = json!({ "specversion": "1.0", "id": uuid::Uuid::new_v4(), "source": "/t", "subject": "s", "datacontenttype": "application/json",
        "type": "taskstream.notification.created", "time": "2030-01-01T00:00:00Z", "data": { "id": 7 } });
    let txn = stream::outbox::begin_write(&t.db).await.unwrap();
    let handler = WebhookHandler::new();
    for bad in ["not json", "{\"id\": 1}", &bad_data.to_string()] {
        let err = handler.handle(&txn, &record(bad)).await.unwrap_err();
        assert!(err.is_permanent(), "{bad}");
    }
    let tombstone = LogRecord {
        value: None,
        ..record("")
    };
    assert!(
        handler
            .handle(&txn, &tombstone)
            .await
            .unwrap_err()
            .is_permanent()
    );
    assert_eq!(
        handler
            .handle(&txn, &record(&other_type.to_string()))
            .await
            .unwrap(),
        HandlerOutcome::Ignored
    );
    txn.rollback().await.unwrap();
}

#[test]
fn bad_webhook_flags_are_rejected_naming_the_flag() {
    use subscribers::webhook::WebhookArgs;
    for (args, flag) in [
        (
            WebhookArgs {
                webhook_allow_private: "10.0.0.0/8,nope".into(),
                ..WebhookArgs::default()
            },
            "WEBHOOK_ALLOW_PRIVATE",
        ),
        (
            WebhookArgs {
                webhook_max_attempts: 0,
                ..WebhookArgs::default()
            },
            "WEBHOOK_MAX_ATTEMPTS",
        ),
        (
            WebhookArgs {
                webhook_timeout_secs: 0,
                ..WebhookArgs::default()
            },
            "WEBHOOK_TIMEOUT_SECS",
        ),
        (
            WebhookArgs {
                webhook_initial_backoff_secs: 0,
                ..WebhookArgs::default()
            },
            "WEBHOOK_INITIAL_BACKOFF_SECS",
        ),
    ] {
        let err = args.settings().unwrap_err().to_string();
        assert!(err.contains(flag), "{err}");
    }
    assert!(WebhookArgs::default().settings().is_ok());
}
