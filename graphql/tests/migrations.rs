//! Every migration applies, rolls back and applies again, on SQLite and PostgreSQL; data
//! migrations carry existing rows along.
#![allow(clippy::unwrap_used)]

mod support;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::Query;
use sea_orm::{ConnectionTrait, EntityTrait};

async fn table_exists(t: &support::TestDb, table: &str) -> bool {
    let sql = match t.backend {
        support::Backend::Sqlite => {
            format!("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = '{table}'")
        }
        support::Backend::Postgres => format!(
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = '{table}'"
        ),
    };
    count(t, sql).await > 0
}

/// The `n` that `sql` (one row with a count `n`) returns.
async fn count(t: &support::TestDb, sql: String) -> i64 {
    let row =
        t.db.query_one_raw(sea_orm::Statement::from_string(
            t.db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
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
        "calendar_feeds",
    ] {
        assert!(table_exists(&t, table).await, "{table} exists after up");
    }
    Migrator::down(&t.db, None).await.unwrap();
    assert_eq!(
        Migrator::get_pending_migrations(&t.db).await.unwrap().len(),
        all
    );
    for table in [
        "tasks",
        "outbox",
        "task_search_ids",
        "notifications",
        "calendar_feeds",
    ] {
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

/// How many tasks the search of the schema before `m20261207_000003_add_search_terms` finds
/// for `word` (PostgreSQL's `english` tsvector, SQLite's porter FTS5 table).
async fn old_search_count(t: &support::TestDb, word: &str) -> i64 {
    let sql = match t.backend {
        support::Backend::Sqlite => {
            format!("SELECT COUNT(*) AS n FROM task_search WHERE task_search MATCH '\"{word}\"'")
        }
        support::Backend::Postgres => format!(
            "SELECT COUNT(*) AS n FROM tasks WHERE search @@ plainto_tsquery('english', '{word}')"
        ),
    };
    count(t, sql).await
}

/// Inserts a task the way the release before `m20261207_000003_add_search_terms` did: only
/// the columns it knew.
async fn insert_old_style_task(t: &support::TestDb, title: &str, description: &str) {
    let now = entities::to_db_precision(chrono::Utc::now());
    let task = Query::insert()
        .into_table("tasks")
        .columns([
            "id",
            "owner_id",
            "title",
            "description",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            uuid::Uuid::new_v4().into(),
            "alice".into(),
            title.into(),
            description.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    t.db.execute(&task).await.unwrap();
}

/// Migrates `t` to the end and checks that every task is found, sorted and stored as if it
/// had been written now, and that the previous release's search still works.
async fn migrate_and_check_backfill(
    t: &support::TestDb,
    app: &support::TestApp,
    by_title: &[&str],
) {
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(
        app.titles("alice", r#"search: "CAFE strasse""#).await,
        ["Café Straße"]
    );
    assert_eq!(
        app.titles("alice", r#"search: "the plant""#).await,
        ["Café Straße"]
    );
    assert_eq!(app.titles("alice", r#"search: "apples""#).await, ["Äb"]);
    assert_eq!(
        app.titles("alice", "sort: [{ field: TITLE }]").await,
        by_title
    );
    for task in entities::task::Entity::find().all(&t.db).await.unwrap() {
        assert_eq!(task.search_title, entities::search::document(&task.title));
        assert_eq!(
            task.search_body,
            entities::search::document(&task.description)
        );
        assert_eq!(task.title_key, entities::search::title_key(&task.title));
    }
    // Expand only: the previous release's search is still there and maintained.
    assert_eq!(old_search_count(t, "apple").await, 1);
}

/// Tasks written before the search terms existed are backfilled by their migration: search and
/// title sort treat them like new ones. The previous release keeps working on the new schema;
/// the tasks it writes there are derived when the backfill runs again (after a `down` and `up`
/// here; in production the contract migration of a later release runs it).
async fn search_terms_are_backfilled(backend: support::Backend) {
    let Some(t) = support::TestDb::empty(backend).await else {
        return;
    };
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261207_000003_add_search_terms")
        .unwrap();
    Migrator::up(&t.db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    let now = entities::to_db_precision(chrono::Utc::now());
    let user = Query::insert()
        .into_table("users")
        .columns(["id", "created_at", "updated_at"])
        .values_panic(["alice".into(), now.into(), now.into()])
        .to_owned();
    t.db.execute(&user).await.unwrap();
    for (title, description) in [
        ("Zebra", ""),
        ("Café Straße", "Watering the plants"),
        ("Äb", "an apple"),
        ("äa", ""),
    ] {
        insert_old_style_task(&t, title, description).await;
    }

    let app = support::TestApp::on(&t);
    migrate_and_check_backfill(&t, &app, &["äa", "Äb", "Café Straße", "Zebra"]).await;

    // The previous release writing on the new schema: its own search finds the task.
    insert_old_style_task(&t, "Ölwechsel", "plants again").await;
    assert_eq!(old_search_count(&t, "plants").await, 2);

    let steps = Migrator::migrations().len() - before;
    Migrator::down(&t.db, Some(u32::try_from(steps).unwrap()))
        .await
        .unwrap();
    assert_eq!(old_search_count(&t, "plants").await, 2);
    migrate_and_check_backfill(&t, &app, &["äa", "Äb", "Café Straße", "Ölwechsel", "Zebra"]).await;
    t.cleanup().await;
}

#[tokio::test]
async fn search_terms_are_backfilled_on_sqlite() {
    search_terms_are_backfilled(support::Backend::Sqlite).await;
}

#[tokio::test]
async fn search_terms_are_backfilled_on_postgres() {
    search_terms_are_backfilled(support::Backend::Postgres).await;
}
