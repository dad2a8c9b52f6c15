//! Every migration applies, rolls back and applies again, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;

async fn table_exists(t: &support::TestDb, table: &str) -> bool {
    let sql = match t.backend {
        support::Backend::Sqlite => {
            format!("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = '{table}'")
        }
        support::Backend::Postgres => format!(
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = '{table}'"
        ),
    };
    let row =
        t.db.query_one_raw(sea_orm::Statement::from_string(
            t.db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() > 0
}

async fn round_trip(backend: support::Backend) {
    let Some(t) = support::TestDb::empty(backend).await else {
        return;
    };
    let all = Migrator::migrations().len();
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(
        Migrator::get_pending_migrations(&t.db).await.unwrap().len(),
        0
    );
    for table in [
        "users",
        "tasks",
        "tags",
        "task_tags",
        "reminders",
        "outbox",
        "consumer_offsets",
        "processed_events",
        "dead_letters",
        "notifications",
    ] {
        assert!(table_exists(&t, table).await, "{table} exists after up");
    }
    Migrator::down(&t.db, None).await.unwrap();
    assert_eq!(
        Migrator::get_pending_migrations(&t.db).await.unwrap().len(),
        all
    );
    for table in ["tasks", "outbox", "task_search_ids", "notifications"] {
        assert!(!table_exists(&t, table).await, "{table} is gone after down");
    }
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(
        Migrator::get_applied_migrations(&t.db).await.unwrap().len(),
        all
    );
    assert!(table_exists(&t, "tasks").await);
    t.cleanup().await;
}

#[tokio::test]
async fn migrations_apply_roll_back_and_reapply_on_sqlite() {
    round_trip(support::Backend::Sqlite).await;
}

#[tokio::test]
async fn migrations_apply_roll_back_and_reapply_on_postgres() {
    round_trip(support::Backend::Postgres).await;
}
