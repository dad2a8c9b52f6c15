//! Competing instances on one partition, and a paused instance that wakes up behind the stored
//! offset.

use super::*;

on_both_databases!(
    two_instances_on_one_partition_never_apply_an_event_twice,
    |t| {
        create_effects_table(&t.db).await;
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.extend(append(&t.db, TOPIC, 50).await);
        }
        // Small batches, so the two instances interleave and collide on the offset often.
        let small = ConsumerConfig {
            fetch_max_records: 20,
            max_batch_records: 7,
            ..config()
        };
        let (a, b) = (TestHandler::new(), TestHandler::new());
        let first = Running::start(&t.db, a.clone(), small.clone());
        let second = Running::start(&t.db, b.clone(), small);
        wait_caught_up(&t.db).await;
        first.stop().await.unwrap();
        second.stop().await.unwrap();

        assert_eq!(
            effects(&t.db).await,
            ids,
            "each event applied once, in order"
        );
        let calls: u32 = ids.iter().map(|id| a.calls(*id) + b.calls(*id)).sum();
        assert_eq!(
            calls, 300,
            "the offset compare-and-set comes first: a losing instance never runs its handler"
        );
    }
);

/// The embedded log, except that the first fetch holds its records until released: an
/// instance paused between fetching and applying (a long GC pause, a network partition).
pub(crate) struct PausedLog {
    inner: EmbeddedLog,
    first: std::sync::atomic::AtomicBool,
    fetched: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
}

impl PausedLog {
    /// The log, a signal notified when the first fetch holds its records, and the semaphore
    /// that lets it go on (one permit).
    pub(crate) fn new(
        db: &DatabaseConnection,
    ) -> (
        PausedLog,
        Arc<tokio::sync::Notify>,
        Arc<tokio::sync::Semaphore>,
    ) {
        let fetched = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let log = PausedLog {
            inner: EmbeddedLog::new(db.clone()),
            first: true.into(),
            fetched: fetched.clone(),
            release: release.clone(),
        };
        (log, fetched, release)
    }
}

impl LogReader for PausedLog {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<stream::log::Fetched, stream::log::LogError> {
        let fetched = self
            .inner
            .fetch(topic, partition, offset, max_records, max_wait)
            .await?;
        if self.first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.fetched.notify_one();
            let _permit = self.release.acquire().await.unwrap();
        }
        Ok(fetched)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, stream::log::LogError> {
        self.inner.partition_count(topic).await
    }
}

on_both_databases!(
    a_paused_instance_that_wakes_behind_the_stored_offset_applies_nothing,
    |t| {
        create_effects_table(&t.db).await;
        let ids = append(&t.db, TOPIC, 30).await;
        let (log, fetched, release) = PausedLog::new(&t.db);
        let zombie = TestHandler::new();
        let zombie_running = Running::on(&t.db, log, zombie.clone(), config());
        // The zombie holds all 30 records, read at offset 0, while a healthy instance applies them.
        tokio::time::timeout(Duration::from_secs(30), fetched.notified())
            .await
            .unwrap();
        let healthy = Running::start(&t.db, TestHandler::new(), config());
        wait_caught_up(&t.db).await;
        healthy.stop().await.unwrap();

        // Woken, the zombie's compare-and-set fails: it reloads the offset instead of applying.
        release.add_permits(1);
        let more = append(&t.db, TOPIC, 5).await;
        wait_caught_up(&t.db).await;
        zombie_running.stop().await.unwrap();

        let all: Vec<Uuid> = ids.iter().chain(&more).copied().collect();
        assert_eq!(effects(&t.db).await, all);
        assert!(
            ids.iter().all(|id| zombie.calls(*id) == 0),
            "the zombie applied nothing stale"
        );
        assert!(
            more.iter().all(|id| zombie.calls(*id) == 1),
            "and then carried on"
        );
    }
);
