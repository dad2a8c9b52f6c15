//! Deliveries that fail: timeouts until a dead letter is parked (and a replay re-arms it), and
//! 4xx answers or redirects failing at once.

use super::*;

on_both_databases!(
    a_webhook_that_keeps_timing_out_is_parked_as_a_dead_letter_and_a_replay_rearms_it,
    |t| {
        // Arrange: the receiver is slower than the 700 ms timeout twice.
        let slow = Answer::Slow(Duration::from_millis(1500));
        let _receiver = alice_notified_with_webhook(t, &[slow, slow], Some(SECRET), None).await;

        // Act: two attempts (the maximum), the second after the backoff.
        let first = dispatcher_at(&t.db, settings(2), "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(first.retrying.len(), 1);
        let last = dispatcher_at(&t.db, settings(2), "2030-01-07T08:32:00Z")
            .deliver_due()
            .await
            .unwrap();

        // Assert: FAILED, a dead letter for consumer `webhook` and its copy on the DLQ topic.
        assert_eq!(last.failed.len(), 1);
        let row = only_delivery(&t.db).await;
        assert_eq!(row.status, webhook_delivery::DeliveryStatus::Failed);
        let error = row.last_error.clone().unwrap();
        assert!(
            error.contains("gave up after 2 attempts") && error.contains("no answer"),
            "{error}"
        );
        let parked = dead_letter::Entity::find().all(&t.db).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].consumer, subscribers::webhook::CONSUMER);
        assert_eq!(parked[0].topic, NOTIFICATIONS);
        assert_eq!(parked[0].attempts, 2);
        assert_eq!(parked[0].payload, row.body);
        let dlq = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(stream::topics::dlq(NOTIFICATIONS)))
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(dlq.len(), 1);

        // Replaying the dead letter re-arms the delivery; the receiver now answers 200.
        let outcome = stream::dead_letters::replay(&t.db, parked[0].id, &WebhookHandler::new())
            .await
            .unwrap();
        assert_eq!(outcome, stream::dead_letters::ReplayOutcome::Applied);
        let row = only_delivery(&t.db).await;
        assert_eq!(
            (row.status, row.attempts),
            (webhook_delivery::DeliveryStatus::Pending, 0)
        );
        let report = dispatcher_at(&t.db, settings(2), "2030-01-07T09:00:00Z")
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(report.delivered.len(), 1);
        assert_eq!(
            only_delivery(&t.db).await.status,
            webhook_delivery::DeliveryStatus::Delivered
        );
    }
);

#[tokio::test]
async fn a_4xx_or_a_redirect_fails_at_once_without_a_retry() {
    for code in [410, 302] {
        let t = support::TestDb::migrated(support::Backend::Sqlite)
            .await
            .unwrap();
        let receiver = alice_notified_with_webhook(&t, &[Answer::Status(code)], None, None).await;

        let report = dispatcher_at(&t.db, settings(5), "2030-01-07T08:31:00Z")
            .deliver_due()
            .await
            .unwrap();

        assert_eq!(report.failed.len(), 1, "{code}");
        let row = only_delivery(&t.db).await;
        assert_eq!(
            (row.attempts, row.last_status_code),
            (1, Some(i32::from(code)))
        );
        assert_eq!(
            dead_letter::Entity::find().all(&t.db).await.unwrap().len(),
            1
        );
        // Without a secret the request is sent unsigned.
        let got = receiver.received();
        assert!(got[0].headers.get(dispatcher::SIGNATURE_HEADER).is_none());
    }
}
