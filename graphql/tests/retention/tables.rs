//! The subscribers' tables and dead letters, zero settings, bounded batches and the loop.

use entities::webhook_delivery::{self, DeliveryStatus};
use entities::{dead_letter, notification, user};
use stream::dead_letters::DeadLetterStatus;

use super::*;

const ALICE: &str = "alice";

async fn user(db: &DatabaseConnection) {
    let now = entities::to_db_precision(Utc::now());
    user::ActiveModel {
        id: Set(ALICE.to_owned()),
        timezone: Set("UTC".to_owned()),
        webhook_url: Set(None),
        webhook_secret: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap();
}

/// A delivery with `status`, last changed at `updated_at`, of the record at `offset` on
/// `notifications`.
async fn delivery(
    db: &DatabaseConnection,
    status: DeliveryStatus,
    updated_at: DateTime<Utc>,
    offset: i64,
) -> Uuid {
    let id = Uuid::now_v7();
    webhook_delivery::ActiveModel {
        id: Set(id),
        event_id: Set(Uuid::now_v7()),
        owner_id: Set(ALICE.to_owned()),
        notification_id: Set(None),
        url: Set("https://example.com/hook".to_owned()),
        body: Set("{}".to_owned()),
        source_topic: Set(stream::topics::NOTIFICATIONS.to_owned()),
        source_partition: Set(0),
        source_offset: Set(offset),
        source_headers: Set("{}".to_owned()),
        status: Set(status),
        attempts: Set(1),
        next_attempt_at: Set(updated_at),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(updated_at),
        updated_at: Set(updated_at),
        delivered_at: Set(None),
    }
    .insert(db)
    .await
    .unwrap();
    id
}

/// A dead letter of consumer `webhook` with `status`, last changed at `updated_at`, of the
/// record at `offset` on `notifications`.
async fn dead_letter(
    db: &DatabaseConnection,
    status: DeadLetterStatus,
    updated_at: DateTime<Utc>,
    offset: i64,
) -> i64 {
    dead_letter::ActiveModel {
        consumer: Set("webhook".to_owned()),
        topic: Set(stream::topics::NOTIFICATIONS.to_owned()),
        partition: Set(0),
        offset: Set(offset),
        event_id: Set(Some(Uuid::now_v7())),
        key: Set(Some(ALICE.to_owned())),
        payload: Set("{}".to_owned()),
        headers: Set("{}".to_owned()),
        error: Set("HTTP 410".to_owned()),
        attempts: Set(1),
        status: Set(status),
        created_at: Set(updated_at),
        updated_at: Set(updated_at),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

async fn notification(db: &DatabaseConnection, read_at: Option<DateTime<Utc>>) -> Uuid {
    let id = Uuid::now_v7();
    notification::ActiveModel {
        id: Set(id),
        owner_id: Set(ALICE.to_owned()),
        task_id: Set(None),
        kind: Set(notification::NotificationKind::ReminderDue),
        title: Set("t".to_owned()),
        body: Set("b".to_owned()),
        event_id: Set(Uuid::now_v7()),
        created_at: Set(read_at.unwrap_or_else(Utc::now)),
        read_at: Set(read_at),
        due_at: Set(None),
        remind_at: Set(None),
    }
    .insert(db)
    .await
    .unwrap();
    id
}

async fn delivery_ids(db: &DatabaseConnection) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = webhook_delivery::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

async fn dead_letter_ids(db: &DatabaseConnection) -> Vec<i64> {
    let mut ids: Vec<i64> = dead_letter::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

async fn notification_ids(db: &DatabaseConnection) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = notification::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

on_both_databases!(
    finished_webhook_deliveries_past_30_days_are_pruned_unless_pending_or_still_parked,
    |t| {
        // Arrange
        user(&t.db).await;
        let now = Utc::now();
        let old = ago(now, 31);
        let delivered_old = delivery(&t.db, DeliveryStatus::Delivered, old, 1).await;
        let delivered_new = delivery(&t.db, DeliveryStatus::Delivered, ago(now, 29), 2).await;
        let pending_old = delivery(&t.db, DeliveryStatus::Pending, old, 3).await;
        let failed_old = delivery(&t.db, DeliveryStatus::Failed, old, 4).await;
        let failed_parked = delivery(&t.db, DeliveryStatus::Failed, old, 5).await;
        dead_letter(&t.db, DeadLetterStatus::Parked, old, 5).await;
        dead_letter(&t.db, DeadLetterStatus::Discarded, ago(now, 1), 4).await;

        // Act
        let report = pass(&t.db, &policy(1_000), &embedded(&[]), now).await;

        // Assert
        assert_eq!(report.rows("webhook_deliveries"), 2);
        assert!(!delivery_ids(&t.db).await.contains(&delivered_old));
        assert!(!delivery_ids(&t.db).await.contains(&failed_old));
        assert_eq!(
            delivery_ids(&t.db).await,
            sorted(vec![delivered_new, pending_old, failed_parked])
        );
    }
);

on_both_databases!(
    discarded_and_replayed_dead_letters_past_30_days_are_pruned_and_parked_ones_never,
    |t| {
        // Arrange
        let now = Utc::now();
        let parked = dead_letter(&t.db, DeadLetterStatus::Parked, ago(now, 400), 1).await;
        dead_letter(&t.db, DeadLetterStatus::Discarded, ago(now, 31), 2).await;
        dead_letter(&t.db, DeadLetterStatus::Replayed, ago(now, 31), 3).await;
        let discarded_new = dead_letter(&t.db, DeadLetterStatus::Discarded, ago(now, 29), 4).await;

        // Act
        let report = pass(&t.db, &policy(1_000), &embedded(&[]), now).await;
        let later = pass(
            &t.db,
            &policy(1_000),
            &embedded(&[]),
            now + Duration::days(3_650),
        )
        .await;

        // Assert: a parked dead letter outlives everything.
        assert_eq!(report.rows("dead_letters"), 2);
        assert_eq!(later.rows("dead_letters"), 1);
        assert_eq!(dead_letter_ids(&t.db).await, vec![parked]);
        assert!(discarded_new > parked);
    }
);

on_both_databases!(
    notifications_read_more_than_90_days_ago_are_pruned_and_unread_ones_kept,
    |t| {
        // Arrange
        user(&t.db).await;
        let now = Utc::now();
        notification(&t.db, Some(ago(now, 91))).await;
        let read_recently = notification(&t.db, Some(ago(now, 89))).await;
        let unread = notification(&t.db, None).await;

        // Act
        let report = pass(&t.db, &policy(1_000), &embedded(&[]), now).await;

        // Assert
        assert_eq!(report.rows("notifications"), 1);
        assert_eq!(
            notification_ids(&t.db).await,
            sorted(vec![read_recently, unread])
        );
    }
);

on_both_databases!(
    expired_idempotency_keys_are_pruned_in_batches_and_live_ones_kept,
    |t| {
        use entities::idempotency_key::{self, IdempotencyState};
        // Arrange: 25 expired keys of two users and one live key.
        let now = entities::to_db_precision(Utc::now());
        for (i, expires) in (0..25)
            .map(|i| (i, ago(now, 1)))
            .chain(std::iter::once((25, now + Duration::hours(1))))
        {
            idempotency_key::ActiveModel {
                owner_id: Set(if i % 2 == 0 { "alice" } else { "bob" }.to_owned()),
                key: Set(format!("k-{i}")),
                request_hash: Set("0".repeat(64)),
                state: Set(IdempotencyState::Done),
                response: Set(Some("{}".to_owned())),
                created_at: Set(ago(now, 2)),
                expires_at: Set(expires),
            }
            .insert(&t.db)
            .await
            .unwrap();
        }

        // Act
        let report = pass(&t.db, &policy(10), &embedded(&[]), now).await;

        // Assert
        assert_eq!(report.rows("idempotency_keys"), 25);
        let left: Vec<String> = idempotency_key::Entity::find()
            .all(&t.db)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.key)
            .collect();
        assert_eq!(left, vec!["k-25".to_owned()]);
    }
);

on_both_databases!(a_setting_of_zero_keeps_that_table_forever, |t| {
    // Arrange: old rows in every table, and settings of 0 from the command line.
    user(&t.db).await;
    let now = Utc::now();
    let old = ago(now, 400);
    for _ in 0..3 {
        append(&t.db, TASK_EVENTS, old).await;
    }
    delivery(&t.db, DeliveryStatus::Delivered, old, 1).await;
    dead_letter(&t.db, DeadLetterStatus::Discarded, old, 2).await;
    notification(&t.db, Some(old)).await;
    let args = <graphql::config::Cli as clap::Parser>::parse_from([
        "taskstream",
        "--retention-outbox-hours=0",
        "--retention-processed-events-hours=0",
        "--retention-webhook-deliveries-days=0",
        "--retention-dead-letters-days=0",
        "--retention-read-notifications-days=0",
    ])
    .server
    .retention;
    assert_eq!(args.policy(), keep_everything());

    // Act
    let report = pass(&t.db, &args.policy(), &embedded(&[]), now).await;

    // Assert
    // Only expired idempotency keys and departed subscriber instances are pruned whatever the
    // settings (they expire by their own TTL or lease); there are none here.
    assert!(
        report
            .pruned
            .iter()
            .all(|(table, _)| ["idempotency_keys", "consumer_members"].contains(table)),
        "no setting-governed table is pruned: {report:?}"
    );
    assert_eq!(report.rows("idempotency_keys"), 0);
    assert_eq!(outbox_ids(&t.db, TASK_EVENTS).await.len(), 3);
    assert_eq!(delivery_ids(&t.db).await.len(), 1);
    assert_eq!(dead_letter_ids(&t.db).await.len(), 1);
    assert_eq!(notification_ids(&t.db).await.len(), 1);
});

on_both_databases!(every_delete_statement_removes_at_most_one_batch, |t| {
    // Arrange: 25 prunable rows in two tables, batches of 10.
    user(&t.db).await;
    let now = Utc::now();
    for _ in 0..25 {
        notification(&t.db, Some(ago(now, 100))).await;
    }
    for _ in 0..26 {
        append(&t.db, TASK_EVENTS, ago(now, 100)).await;
    }

    // Act
    let report = pass(&t.db, &policy(10), &embedded(&[]), now).await;

    // Assert
    let of = |table: &str| {
        report
            .pruned
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, p)| *p)
            .unwrap()
    };
    for table in ["notifications", "outbox"] {
        let pruned = of(table);
        assert_eq!(pruned.rows, 25, "{table}");
        assert_eq!(pruned.batches, 3, "{table}");
        assert_eq!(pruned.largest_batch, 10, "{table}");
    }
});

on_both_databases!(
    the_pruning_loop_runs_a_pass_at_start_counts_it_and_stops_on_shutdown,
    |t| {
        // Arrange
        user(&t.db).await;
        for _ in 0..3 {
            notification(&t.db, Some(Utc::now())).await;
        }
        let shutdown = stream::lifecycle::CancellationToken::new();
        let far_future = Utc::now() + Duration::days(365);

        // Act
        let task = tokio::spawn(graphql::retention::run(
            t.db.clone(),
            policy(1_000),
            embedded(&[]),
            subscribers::Clock::Fixed(far_future),
            shutdown.clone(),
        ));
        // The rows go first, the count when the pass ends: wait for both before stopping it.
        support::wait_until("the first pass pruned the read notifications", || async {
            notification_ids(&t.db).await.is_empty()
                && telemetry::metrics::render()
                    .contains("taskstream_retention_deleted_rows_total{table=\"notifications\"}")
        })
        .await;
        shutdown.cancel();

        // Assert
        tokio::time::timeout(std::time::Duration::from_secs(30), task)
            .await
            .expect("the loop stops on shutdown")
            .unwrap();
        let metrics = telemetry::metrics::render();
        assert!(
            metrics.contains("taskstream_retention_deleted_rows_total{table=\"notifications\"}"),
            "{metrics}"
        );
    }
);

/// A `task_versions` row of task `task` (the snapshot is not read by retention).
async fn version(
    db: &DatabaseConnection,
    task: Uuid,
    version: i32,
    kind: entities::task_version::VersionKind,
    changed_at: DateTime<Utc>,
) {
    entities::task_version::ActiveModel {
        task_id: Set(task),
        version: Set(version),
        owner_id: Set(ALICE.to_owned()),
        kind: Set(kind),
        snapshot: Set("{}".to_owned()),
        event_id: Set(Uuid::now_v7()),
        caused_by: Set(None),
        changed_at: Set(changed_at),
    }
    .insert(db)
    .await
    .unwrap();
}

async fn versions(db: &DatabaseConnection) -> Vec<(Uuid, i32)> {
    entities::task_version::Entity::find()
        .order_by_asc(entities::task_version::Column::TaskId)
        .order_by_asc(entities::task_version::Column::Version)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.task_id, v.version))
        .collect()
}

on_both_databases!(
    task_history_is_kept_by_default_and_pruned_to_each_living_tasks_current_version,
    |t| {
        use entities::task_version::VersionKind::{Created, Deleted, Updated};
        let now = Utc::now();
        let (living, changed, gone, recently_gone) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        version(&t.db, living, 1, Created, ago(now, 90)).await;
        version(&t.db, living, 2, Updated, ago(now, 80)).await;
        version(&t.db, changed, 1, Created, ago(now, 90)).await;
        version(&t.db, changed, 2, Updated, ago(now, 1)).await;
        version(&t.db, gone, 1, Created, ago(now, 90)).await;
        version(&t.db, gone, 2, Deleted, ago(now, 60)).await;
        version(&t.db, recently_gone, 1, Created, ago(now, 90)).await;
        version(&t.db, recently_gone, 2, Deleted, ago(now, 2)).await;
        let all = versions(&t.db).await;

        // The default keeps the whole history.
        pass(&t.db, &policy(1_000), &embedded(&[]), now).await;
        assert_eq!(versions(&t.db).await, all);

        // 30 days, in batches of one: every task still there keeps its current version; a
        // task deleted within the horizon stays restorable; one deleted before it is gone.
        let thirty_days = RetentionPolicy {
            task_history: Some(Duration::days(30)),
            ..policy(1)
        };
        let report = pass(&t.db, &thirty_days, &embedded(&[]), now).await;
        assert_eq!(report.rows("task_versions"), 5);
        let mut want = vec![(living, 2), (changed, 2), (recently_gone, 2)];
        want.sort();
        assert_eq!(versions(&t.db).await, want);
    }
);

on_both_databases!(memberships_of_instances_gone_for_an_hour_are_deleted, |t| {
    let now = Utc::now();
    for (instance, expired) in [("gone", ago(now, 1)), ("live", now + Duration::seconds(10))] {
        entities::consumer_member::ActiveModel {
            consumer: Set("recurrence".to_owned()),
            topic: Set(TASK_EVENTS.to_owned()),
            instance: Set(instance.to_owned()),
            expires_at_ms: Set(expired.timestamp_millis()),
        }
        .insert(&t.db)
        .await
        .unwrap();
    }
    let report = pass(&t.db, &keep_everything(), &embedded(&[]), now).await;
    assert_eq!(report.rows("consumer_members"), 1);
    let left: Vec<String> = entities::consumer_member::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.instance)
        .collect();
    assert_eq!(left, ["live"]);
});
