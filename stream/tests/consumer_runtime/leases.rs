//! Partition leases (`stream::consumer::leases`) on the embedded log, whose topics have one
//! partition: instances of one consumer agree on a single owner, a graceful shutdown hands
//! the partition over, a killed owner's lease lapses and moves, and an instance whose lease was
//! taken while it was paused applies nothing (the fence in the offset compare-and-set).
//! Sharing several partitions among processes is tested with real brokers in the gateway's
//! `distributed` tests.

use super::*;
use stream::consumer::LeaseConfig;

/// A short lease period, so that takeovers happen within a test's patience.
const TTL: Duration = Duration::from_millis(1000);

fn leased(instance: &str) -> ConsumerConfig {
    ConsumerConfig {
        lease: Some(LeaseConfig::new(instance, TTL)),
        ..config()
    }
}

/// The instance holding an unexpired lease on the partition, if any.
async fn owner(db: &DatabaseConnection) -> Option<String> {
    let rows = entities::consumer_lease::Entity::find()
        .filter(entities::consumer_lease::Column::Consumer.eq(CONSUMER))
        .filter(entities::consumer_lease::Column::Topic.eq(TOPIC))
        .all(db)
        .await
        .unwrap();
    assert!(rows.len() <= 1, "one lease row per partition: {rows:?}");
    let now = Utc::now().timestamp_millis();
    rows.into_iter()
        .find(|row| row.expires_at_ms > now)
        .and_then(|row| row.owner)
}

/// The members' ids and their expiries.
async fn members(db: &DatabaseConnection) -> Vec<(String, i64)> {
    entities::consumer_member::Entity::find()
        .filter(entities::consumer_member::Column::Consumer.eq(CONSUMER))
        .order_by_asc(entities::consumer_member::Column::Instance)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.instance, m.expires_at_ms))
        .collect()
}

async fn wait_owner(db: &DatabaseConnection, want: &str) {
    wait_until(&format!("{want} holds the lease"), || async {
        owner(db).await.as_deref() == Some(want)
    })
    .await;
}

on_both_databases!(
    two_leased_instances_agree_on_one_owner_and_a_graceful_shutdown_hands_it_over,
    |t| {
        create_effects_table(&t.db).await;
        let first_batch = append(&t.db, TOPIC, 40).await;
        let (a, b) = (TestHandler::new(), TestHandler::new());
        let first = Running::start(&t.db, a.clone(), leased("instance-a"));
        let second = Running::start(&t.db, b.clone(), leased("instance-b"));

        // One partition over two members: the first id in order holds it.
        wait_owner(&t.db, "instance-a").await;
        wait_caught_up(&t.db).await;
        // instance-b may join after instance-a has caught up: both start at once, but nothing
        // orders instance-b's first heartbeat before instance-a's catching up.
        wait_until("both instances are members", || async {
            members(&t.db).await.len() == 2
        })
        .await;
        assert_eq!(owner(&t.db).await.as_deref(), Some("instance-a"));

        // The owner keeps its lease and goes on consuming across heartbeats.
        let renewed_at = members(&t.db).await[0].1;
        wait_until("several heartbeats", || async {
            members(&t.db).await[0].1 > renewed_at + 2 * TTL.as_millis() as i64
        })
        .await;
        let more = append(&t.db, TOPIC, 10).await;
        wait_caught_up(&t.db).await;
        assert_eq!(owner(&t.db).await.as_deref(), Some("instance-a"));
        assert!(more.iter().all(|id| a.calls(*id) == 1));

        // A graceful shutdown releases the lease and leaves; the other takes over.
        first.stop().await.unwrap();
        assert_eq!(
            members(&t.db)
                .await
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            vec!["instance-b".to_owned()],
            "the stopped instance left the group"
        );
        wait_owner(&t.db, "instance-b").await;
        let second_batch = append(&t.db, TOPIC, 20).await;
        wait_caught_up(&t.db).await;
        second.stop().await.unwrap();

        let all: Vec<Uuid> = first_batch
            .iter()
            .chain(&more)
            .chain(&second_batch)
            .copied()
            .collect();
        assert_eq!(
            effects(&t.db).await,
            all,
            "each event applied once, in order"
        );
        let calls: u32 = all.iter().map(|id| a.calls(*id) + b.calls(*id)).sum();
        assert_eq!(calls, 70, "no handler ran for an event applied elsewhere");
        assert!(
            second_batch.iter().all(|id| b.calls(*id) == 1),
            "the new owner applied what came after the handover"
        );
        assert_eq!(
            owner(&t.db).await,
            None,
            "nobody holds the lease after both left"
        );
    }
);

on_both_databases!(
    a_killed_owners_lease_lapses_and_the_other_instance_takes_the_partition,
    |t| {
        create_effects_table(&t.db).await;
        let before = append(&t.db, TOPIC, 10).await;
        let (a, b) = (TestHandler::new(), TestHandler::new());
        let first = Running::start(&t.db, a.clone(), leased("instance-a"));
        wait_owner(&t.db, "instance-a").await;
        wait_caught_up(&t.db).await;
        let second = Running::start(&t.db, b.clone(), leased("instance-b"));
        wait_until("instance-b is a member", || async {
            members(&t.db).await.len() == 2
        })
        .await;

        // Killed: no release, no goodbye. Its lease and membership lapse after the period.
        first.task.abort();
        let after = append(&t.db, TOPIC, 10).await;
        wait_owner(&t.db, "instance-b").await;
        wait_caught_up(&t.db).await;
        second.stop().await.unwrap();

        let all: Vec<Uuid> = before.iter().chain(&after).copied().collect();
        assert_eq!(
            effects(&t.db).await,
            all,
            "nothing lost, nothing applied twice"
        );
        assert!(
            after
                .iter()
                .all(|id| b.calls(*id) == 1 && a.calls(*id) == 0)
        );
    }
);

on_both_databases!(
    an_instance_whose_lease_was_taken_while_it_was_paused_applies_nothing,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 30).await;
        let (log, fetched, release) = instances::PausedLog::new(&t.db);
        let zombie = TestHandler::new();
        let running = Running::on(&t.db, log, zombie.clone(), leased("zombie"));
        // It holds the lease and has fetched all 30 records, then stalls before applying them.
        tokio::time::timeout(Duration::from_secs(30), fetched.notified())
            .await
            .unwrap();
        assert_eq!(owner(&t.db).await.as_deref(), Some("zombie"));

        // Meanwhile its lease lapsed and another instance took it (written as that instance
        // would: a conditional update of the lease row).
        t.db.execute_unprepared(&format!(
            "UPDATE consumer_leases SET owner = 'other', expires_at_ms = {} \
             WHERE consumer = '{CONSUMER}' AND topic = '{TOPIC}' AND partition = 0",
            Utc::now().timestamp_millis() + 3_600_000
        ))
        .await
        .unwrap();

        // Woken, its batch fails the fence: nothing is applied, the offset does not move, and
        // its heartbeats (the membership's expiry moves) do not take the lease back.
        release.add_permits(1);
        let renewed_at = members(&t.db).await[0].1;
        wait_until("two more heartbeats of the zombie", || async {
            members(&t.db).await[0].1 > renewed_at + 2 * TTL.as_millis() as i64 / 3
        })
        .await;
        assert!(
            effects(&t.db).await.is_empty(),
            "the zombie applied nothing"
        );
        assert!(ids.iter().all(|id| zombie.calls(*id) == 0));
        assert_eq!(stored_offset(&t.db).await, Some(0));
        assert_eq!(owner(&t.db).await.as_deref(), Some("other"));

        // Once the lease is free again, the same instance takes it and applies everything once.
        t.db.execute_unprepared("UPDATE consumer_leases SET owner = NULL, expires_at_ms = 0")
            .await
            .unwrap();
        wait_caught_up(&t.db).await;
        running.stop().await.unwrap();
        assert_eq!(effects(&t.db).await, ids);
    }
);

on_both_databases!(bad_lease_settings_are_refused_before_anything_runs, |t| {
    for (lease, problem) in [
        (LeaseConfig::new("", TTL), "instance id"),
        (
            LeaseConfig::new("a", Duration::from_millis(5)),
            "lease period",
        ),
    ] {
        let config = ConsumerConfig {
            lease: Some(lease),
            ..config()
        };
        let error = Running::start(&t.db, TestHandler::new(), config)
            .ended()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ConsumerError::Config(why) if why.contains(problem)),
            "{error}"
        );
    }
    assert!(members(&t.db).await.is_empty(), "nothing was written");
});
