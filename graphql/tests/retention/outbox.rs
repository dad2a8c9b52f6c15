//! The outbox: in embedded mode only below the slowest consumer, past the minimum age, and
//! never a topic's newest row; in distributed mode only published rows past the age.

use super::*;

on_both_databases!(
    the_embedded_outbox_is_pruned_only_below_the_slowest_consumer_and_past_the_minimum_age,
    |t| {
        // Arrange: ten week-old events and two fresh ones; the fast consumer has read eight,
        // the slow one five.
        let now = Utc::now();
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(append(&t.db, TASK_EVENTS, ago(now, 8)).await.id);
        }
        for _ in 0..2 {
            ids.push(append(&t.db, TASK_EVENTS, ago(now, 0)).await.id);
        }
        set_offset(&t.db, "fast", TASK_EVENTS, ids[8]).await;
        set_offset(&t.db, "slow", TASK_EVENTS, ids[5]).await;
        let mode = embedded(&[("fast", TASK_EVENTS), ("slow", TASK_EVENTS)]);

        // Act
        let report = pass(&t.db, &policy(1_000), &mode, now).await;

        // Assert: the five rows both consumers passed are gone; what the slow one has not
        // read stays, however old.
        assert_eq!(report.rows("outbox"), 5);
        assert_eq!(outbox_ids(&t.db, TASK_EVENTS).await, ids[5..].to_vec());

        // Act: both consumers catch up.
        let end = ids[11] + 1;
        set_offset(&t.db, "fast", TASK_EVENTS, end).await;
        set_offset(&t.db, "slow", TASK_EVENTS, end).await;
        pass(&t.db, &policy(1_000), &mode, now).await;

        // Assert: every old row went; the fresh ones stay for the minimum age (7 days).
        assert_eq!(outbox_ids(&t.db, TASK_EVENTS).await, ids[10..].to_vec());
    }
);

on_both_databases!(
    a_consumer_that_is_behind_keeps_its_topics_rows_while_other_topics_are_pruned,
    |t| {
        // Arrange: old rows on two topics; the reminders consumer has read nothing yet, and
        // the webhook consumer is registered but has not stored an offset at all.
        let now = Utc::now();
        let mut task_ids = Vec::new();
        for _ in 0..4 {
            task_ids.push(append(&t.db, TASK_EVENTS, ago(now, 30)).await.id);
            append(&t.db, REMINDERS, ago(now, 30)).await;
            append(&t.db, stream::topics::NOTIFICATIONS, ago(now, 30)).await;
        }
        set_offset(&t.db, "recurrence", TASK_EVENTS, task_ids[3] + 1).await;
        set_offset(&t.db, "notification", REMINDERS, 0).await;
        let mode = embedded(&[
            ("recurrence", TASK_EVENTS),
            ("notification", REMINDERS),
            ("webhook", stream::topics::NOTIFICATIONS),
        ]);

        // Act
        pass(&t.db, &policy(1_000), &mode, now + Duration::days(365)).await;

        // Assert
        assert_eq!(outbox_ids(&t.db, TASK_EVENTS).await, vec![task_ids[3]]);
        assert_eq!(outbox_ids(&t.db, REMINDERS).await.len(), 4, "not yet read");
        assert_eq!(
            outbox_ids(&t.db, stream::topics::NOTIFICATIONS).await.len(),
            4,
            "its registered consumer has not started"
        );
    }
);

on_both_databases!(
    the_newest_row_of_a_topic_stays_so_a_caught_up_consumer_keeps_reading,
    |t| {
        // Arrange: a real consumer reads three old events to the end.
        let now = Utc::now();
        for _ in 0..3 {
            append(&t.db, TASK_EVENTS, ago(now, 30)).await;
        }
        let counted = processed_events::Counter::start(&t.db, TASK_EVENTS);
        support::wait_caught_up(&t.db, processed_events::COUNTER, TASK_EVENTS).await;
        let mode = embedded(&[(processed_events::COUNTER, TASK_EVENTS)]);

        // Act
        pass(&t.db, &policy(1_000), &mode, now).await;

        // Assert: the newest row is the topic's end; the consumer is not out of range and
        // goes on with the next event.
        assert_eq!(outbox_ids(&t.db, TASK_EVENTS).await.len(), 1);
        append(&t.db, TASK_EVENTS, now).await;
        support::wait_caught_up(&t.db, processed_events::COUNTER, TASK_EVENTS).await;
        assert_eq!(counted.stop().await, 4);
    }
);

on_both_databases!(
    distributed_mode_prunes_published_rows_past_the_age_and_never_pending_ones,
    |t| {
        use sea_orm::sea_query::Expr;
        // Arrange: three rows published 8 days ago, one published now, two never published
        // (one of them a month old).
        let now = Utc::now();
        let mut ids = Vec::new();
        for days in [30, 8, 8, 8, 0, 0] {
            ids.push(append(&t.db, TASK_EVENTS, ago(now, days)).await.id);
        }
        for (id, days) in [(ids[1], 8), (ids[2], 8), (ids[3], 8), (ids[4], 0)] {
            outbox_rows::Entity::update_many()
                .col_expr(outbox_rows::Column::PublishedAt, Expr::val(ago(now, days)))
                .filter(outbox_rows::Column::Id.eq(id))
                .exec(&t.db)
                .await
                .unwrap();
        }

        // Act
        let report = pass(
            &t.db,
            &policy(1_000),
            &stream::retention::LogMode::Distributed,
            now,
        )
        .await;

        // Assert
        assert_eq!(report.rows("outbox"), 3);
        assert_eq!(
            outbox_ids(&t.db, TASK_EVENTS).await,
            vec![ids[0], ids[4], ids[5]]
        );
    }
);
