//! Deliveries that succeed: a signed POST, a 5xx retried after the backoff, and no delivery
//! for a user without a webhook.

use super::*;

on_both_databases!(
    a_notification_is_posted_to_the_users_webhook_signed_with_hmac_sha256,
    |t| {
        // Arrange
        let receiver = alice_notified_with_webhook(t, &[], Some(SECRET), None).await;

        // Act
        let report = dispatcher_at(&t.db, settings(3), "2030-01-07T08:30:01Z")
            .deliver_due()
            .await
            .unwrap();

        // Assert: one signed POST whose body is the CloudEvent on `notifications`, byte for byte.
        assert_eq!(report.delivered.len(), 1);
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        let event = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(NOTIFICATIONS))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got[0].body, event.payload.as_bytes());
        let header = |name: &str| {
            got[0]
                .headers
                .get(name)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            header(dispatcher::SIGNATURE_HEADER),
            format!("sha256={}", hmac_hex(SECRET, &got[0].body))
        );
        assert_eq!(
            header(dispatcher::EVENT_ID_HEADER),
            event.event_id.to_string()
        );
        assert_eq!(header(dispatcher::ATTEMPT_HEADER), "1");
        assert!(header("content-type").starts_with("application/cloudevents+json"));
        let cloud_event: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(cloud_event["type"], "taskstream.notification.created");
        assert_eq!(cloud_event["data"]["title"], "Pay rent");
        let row = only_delivery(&t.db).await;
        assert_eq!(header(dispatcher::DELIVERY_HEADER), row.id.to_string());
        assert_eq!(row.status, webhook_delivery::DeliveryStatus::Delivered);
        assert_eq!((row.attempts, row.last_status_code), (1, Some(200)));
        assert!(row.delivered_at.is_some());

        // A second pass sends nothing more.
        let again = dispatcher_at(&t.db, settings(3), "2030-01-07T09:30:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(again.claimed(), 0);
        assert_eq!(receiver.received().len(), 1);
    }
);

on_both_databases!(
    a_5xx_answer_is_retried_after_the_backoff_and_then_delivered,
    |t| {
        // Arrange
        let receiver =
            alice_notified_with_webhook(t, &[Answer::Status(503)], Some(SECRET), None).await;

        // Act + Assert: 503 → retrying, next attempt 10 s later, not before.
        let first = dispatcher_at(&t.db, settings(3), "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(first.retrying.len(), 1);
        let row = only_delivery(&t.db).await;
        assert_eq!(row.status, webhook_delivery::DeliveryStatus::Pending);
        assert_eq!(row.last_status_code, Some(503));
        assert_eq!(row.next_attempt_at, at("2030-01-07T08:31:10Z"));
        let early = dispatcher_at(&t.db, settings(3), "2030-01-07T08:31:09Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(early.claimed(), 0, "never before the backoff");
        let second = dispatcher_at(&t.db, settings(3), "2030-01-07T08:31:10Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(second.delivered.len(), 1);
        let row = only_delivery(&t.db).await;
        assert_eq!(
            (row.status, row.attempts),
            (webhook_delivery::DeliveryStatus::Delivered, 2)
        );
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, got[1].body, "a retry sends the same bytes");
        assert_eq!(got[1].headers[dispatcher::ATTEMPT_HEADER], "2");
    }
);

on_both_databases!(
    a_user_without_a_webhook_gets_no_delivery_and_a_redelivery_adds_none,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        notify_alice(&app, &t.db).await;
        assert!(deliveries(&t.db).await.is_empty());
        let receiver = Receiver::start(&[]).await;
        set_webhook(&t.db, ALICE, &receiver.url(), Some(SECRET)).await;
        let event = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(NOTIFICATIONS))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        let record = LogRecord {
            topic: NOTIFICATIONS.into(),
            partition: 0,
            offset: event.id,
            key: Some(event.key.clone()),
            value: Some(event.payload.clone().into_bytes()),
            headers: Default::default(),
            timestamp: event.created_at,
        };

        // Act: the same event handled twice.
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let txn = stream::outbox::begin_write(&t.db).await.unwrap();
            outcomes.push(WebhookHandler::new().handle(&txn, &record).await.unwrap());
            txn.commit().await.unwrap();
        }

        // Assert
        assert_eq!(outcomes, [HandlerOutcome::Applied, HandlerOutcome::Ignored]);
        assert_eq!(deliveries(&t.db).await.len(), 1);
    }
);
