//! Commit wake-ups between processes (`stream::wakeup`): on PostgreSQL another process's
//! notification wakes this process's readers, this process's commits are announced to the
//! others (and not echoed back to itself); on SQLite another pool's commit to the file wakes
//! this process's readers through `PRAGMA data_version`.

use super::*;

/// Whether a wake-up registered before the call arrives within `within`.
async fn woken_within(woken: tokio::sync::futures::Notified<'static>, within: Duration) -> bool {
    tokio::time::timeout(within, woken).await.is_ok()
}

#[tokio::test]
async fn commits_wake_readers_across_processes_on_postgres() {
    let Some(t) = support::TestDb::migrated(support::Backend::Postgres).await else {
        return;
    };
    // Another process: its own pool, which listens on the channel too.
    let other = sea_orm::Database::connect(&t.url).await.unwrap();
    let mut others_listener =
        sea_orm::sqlx::postgres::PgListener::connect_with(other.get_postgres_connection_pool())
            .await
            .unwrap();
    others_listener
        .listen(stream::wakeup::CHANNEL)
        .await
        .unwrap();

    let shutdown = tokio_util::sync::CancellationToken::new();
    // The bridge wakes everyone once when it starts listening: wait for that, so that what
    // follows is the notifications' doing.
    let listening = stream::outbox::committed();
    let bridge = tokio::spawn(stream::wakeup::run(t.db.clone(), shutdown.clone()));
    assert!(
        woken_within(listening, Duration::from_secs(10)).await,
        "the bridge announces that it listens"
    );

    // Another process's commit, announced with its own name, wakes this process's readers.
    let woken = stream::outbox::committed();
    other
        .execute_unprepared(&format!(
            "SELECT pg_notify('{}', 'taskstream-another')",
            stream::wakeup::CHANNEL
        ))
        .await
        .unwrap();
    assert!(
        woken_within(woken, Duration::from_secs(10)).await,
        "another process's commit wakes this one"
    );
    let seen = tokio::time::timeout(Duration::from_secs(10), others_listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.payload(), "taskstream-another");

    // This process's commit: announced to the other process under this process's name...
    stream::outbox::notify_committed();
    let woken_again = stream::outbox::committed();
    let announced = tokio::time::timeout(Duration::from_secs(10), others_listener.recv())
        .await
        .expect("the commit is announced")
        .unwrap();
    assert_eq!(announced.payload(), stream::wakeup::application_name());
    // ...and not echoed back: the writer already woke this process's readers.
    assert!(
        !woken_within(woken_again, Duration::from_millis(500)).await,
        "this process's own announcement does not wake it again"
    );

    shutdown.cancel();
    bridge.await.unwrap();
    drop(others_listener);
    other.close().await.unwrap();
    t.cleanup().await;
}

#[tokio::test]
async fn another_processs_commit_to_the_sqlite_file_wakes_readers_and_idle_wakes_nobody() {
    let t = support::TestDb::migrated(support::Backend::Sqlite)
        .await
        .unwrap();
    // Another process: its own pool on the same file.
    let other = sea_orm::Database::connect(&t.url).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(stream::wakeup::run(t.db.clone(), shutdown.clone()));
    let interval = stream::wakeup::SQLITE_WATCH_INTERVAL;

    // Idle: the counter does not move, nobody is woken.
    let idle = stream::outbox::committed();
    assert!(
        !woken_within(idle, interval * 4).await,
        "no commit, no wake-up"
    );

    // A commit by the other pool wakes this process's readers within a few intervals.
    let woken = stream::outbox::committed();
    other
        .execute_unprepared(
            "INSERT INTO consumer_members (consumer, topic, instance, expires_at_ms) \
             VALUES ('c', 't', 'other-process', 0)",
        )
        .await
        .unwrap();
    assert!(
        woken_within(woken, interval * 8).await,
        "another process's commit wakes this one"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("the watcher stops at shutdown")
        .unwrap();
    other.close().await.unwrap();
    t.cleanup().await;
}
