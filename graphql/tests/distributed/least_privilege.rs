//! The application as a PostgreSQL login role that owns nothing: the `migration` binary
//! migrates as the admin and grants the role (`--grant-to`, or `TASKSTREAM_APP_DB_ROLE` as the
//! chart's Job passes it); the gateway, its relay and the subscriber binaries then run as the
//! role with migrations off, and every background task works (no "permission denied" in any
//! log). The role is refused DDL; a role without the grants stops the gateway at start-up,
//! and a missing role stops the migration before it changes anything.

use std::process::Output;

use super::*;

/// Retention as fast as its flags allow, so its passes run (and delete) during the test.
const FAST_RETENTION: [(&str, &str); 4] = [
    ("RETENTION_INTERVAL_SECS", "1"),
    ("RETENTION_OUTBOX_HOURS", "0.0003"),
    ("RETENTION_PROCESSED_EVENTS_HOURS", "0.0003"),
    ("RETENTION_TASK_HISTORY_DAYS", "0.00001"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_gateway_runs_as_a_role_that_only_reads_and_writes_rows_and_that_role_is_refused_ddl()
 {
    let Some(mut cluster) = Cluster::embedded().await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let role = TestRole::create(&cluster.db).await;
    let migrated = migration(&cluster.db.url, &["up", "--grant-to", &role.name], &[]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(
        text(&migrated).contains(&format!("Granted the application role {:?}", role.name)),
        "{}",
        text(&migrated)
    );
    cluster.database_url = role.url();
    let gateway = cluster.start_gateway_with(&app_env()).await;

    // Act and assert: the in-process recurrence, reminder and notification consumers, the
    // reminder scheduler and history retention all do their work as the role.
    let id = complete_a_recurring_task_and_fire_a_reminder(&mut cluster, gateway).await;
    cluster
        .wait_for_count(
            "the completed task's history pruned to its current version",
            &format!("SELECT COUNT(*) FROM task_versions WHERE task_id = '{id}'"),
            1,
        )
        .await;
    cluster
        .assert_ready_without_permission_errors(gateway)
        .await;

    // The role reads and writes rows, and nothing else.
    let app = sea_orm::Database::connect(role.url()).await.unwrap();
    for (sql, refusal) in [
        (
            "CREATE TABLE probe (id integer)",
            "permission denied for schema public",
        ),
        ("DROP TABLE tasks", "must be owner of table tasks"),
        (
            "ALTER TABLE tasks ADD COLUMN probe integer",
            "must be owner of table tasks",
        ),
        (
            "CREATE INDEX probe ON tasks (title)",
            "must be owner of table tasks",
        ),
        ("TRUNCATE outbox", "permission denied for table outbox"),
        (
            "SELECT COUNT(*) FROM seaql_migrations",
            "permission denied for table seaql_migrations",
        ),
    ] {
        match app.execute_unprepared(sql).await {
            Ok(_) => panic!("the application role may run {sql}"),
            Err(e) => assert!(e.to_string().contains(refusal), "{sql}: {e}"),
        }
    }
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM tasks").await, 3);
    app.close().await.unwrap();
    cluster.finish().await;
    drop(role);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_the_gateway_its_relay_and_the_subscriber_binaries_run_as_a_role_that_only_reads_and_writes_rows()
 {
    let Some(mut cluster) = Cluster::start(Transport::Nats).await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let role = TestRole::create(&cluster.db).await;
    // As the chart's migration Job passes it.
    let migrated = migration(
        &cluster.db.url,
        &["up"],
        &[("TASKSTREAM_APP_DB_ROLE", &role.name)],
    );
    assert!(migrated.status.success(), "{}", text(&migrated));
    cluster.database_url = role.url();
    let gateway = cluster.start_gateway_with(&app_env()).await;
    for subscriber in ["recurrence", "reminder", "notification"] {
        // PARTITIONS=auto, the default: the instances share partitions by leases.
        cluster.start_subscriber(subscriber);
    }

    // Act and assert: the relay publishes, the subscriber binaries take their leases and apply.
    complete_a_recurring_task_and_fire_a_reminder(&mut cluster, gateway).await;
    cluster
        .wait_for_count(
            "the recurrence binary's leases on every partition",
            "SELECT COUNT(*) FROM consumer_leases WHERE consumer = 'recurrence' \
             AND owner IS NOT NULL",
            i64::from(cluster.partitions),
        )
        .await;
    cluster
        .wait_caught_up("recurrence", stream::topics::TASK_EVENTS)
        .await;
    cluster
        .wait_for_count(
            "every outbox row published",
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
            0,
        )
        .await;
    cluster
        .assert_ready_without_permission_errors(gateway)
        .await;
    cluster.finish().await;
    drop(role);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_the_grants_stops_the_gateway_at_start_up_and_a_missing_role_stops_the_migration()
 {
    let Some(mut cluster) = Cluster::embedded().await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let role = TestRole::create(&cluster.db).await;
    let tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'";

    // A role that does not exist: refused before migrating, naming it.
    let missing = format!("{}_missing", role.name);
    let refused = migration(&cluster.db.url, &["up", "--grant-to", &missing], &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!("the database role {missing:?} does not exist")),
        "{}",
        text(&refused)
    );
    assert_eq!(cluster.scalar(tables).await, 0, "nothing was migrated");

    // SQLite has no roles: refused, naming the flag.
    let dir = support::TempDir::new();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.0.join("x.db").display());
    let refused = migration(&sqlite, &["up", "--grant-to", &role.name], &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("--grant-to (TASKSTREAM_APP_DB_ROLE) is for PostgreSQL only"),
        "{}",
        text(&refused)
    );

    // Migrated without granting: the role may not use the tables, and the gateway says so at
    // start-up instead of failing every request and background task.
    let migrated = migration(&cluster.db.url, &["up"], &[]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    cluster.database_url = role.url();
    let log = cluster.gateway_failing_at_start_up(&app_env());
    for expected in [
        format!(
            "permission denied: the database role {:?} may not read and write",
            role.name
        ),
        "consumer_offsets".to_owned(),
        "outbox_id_seq".to_owned(),
        format!("run `migration up --grant-to {}`", role.name),
    ] {
        assert!(log.contains(&expected), "{expected:?} not in:\n{log}");
    }

    // A subscriber binary as that role stops at start-up too (before it connects to its
    // broker, so none is needed here), naming the role and the fix.
    let log = cluster.failing_at_start_up(
        "recurrence",
        &[
            ("NATS_URL", "nats://127.0.0.1:1".to_owned()),
            ("METRICS_ADDR", format!("127.0.0.1:{}", free_port())),
        ],
    );
    for expected in [
        format!(
            "permission denied: the database role {:?} may not read and write",
            role.name
        ),
        format!("run `migration up --grant-to {}`", role.name),
    ] {
        assert!(log.contains(&expected), "{expected:?} not in:\n{log}");
    }

    // With migrations on, the role cannot run them either: it may not create anything.
    let log = cluster.gateway_failing_at_start_up(&[]);
    assert!(
        log.contains("running database migrations failed")
            && log.contains("permission denied for schema public"),
        "{log}"
    );
    cluster.finish().await;
    drop(role);
}

// ---------------------------------------------------------------- helpers

/// The gateway's environment as the application role: no migrations, fast retention.
fn app_env() -> Vec<(&'static str, String)> {
    let mut env = vec![("TASKSTREAM_NO_MIGRATE", "true".to_owned())];
    env.extend(FAST_RETENTION.map(|(k, v)| (k, v.to_owned())));
    env
}

/// Runs the `migration` binary with `args` against `database_url`, plus `env`.
fn migration(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary("migration"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Alice's daily task (with a tag and a reminder) is created, renamed and completed, and
/// another task's reminder comes due two seconds later; waits until the task's next occurrence
/// and the reminder's notification exist. Returns the completed task's id.
async fn complete_a_recurring_task_and_fire_a_reminder(
    cluster: &mut Cluster,
    gateway: usize,
) -> String {
    let create = "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }";
    let due = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let created = cluster
        .graphql(
            gateway,
            "alice",
            create,
            json!({ "i": { "title": "Water the plants", "dueAt": due, "tags": ["home"],
                           "reminders": [{ "minutesBeforeDue": 30 }],
                           "recurrence": { "rule": "FREQ=DAILY", "timezone": "Europe/Berlin" } } }),
        )
        .await;
    let id = created["createTask"]["id"].as_str().unwrap().to_owned();
    cluster
        .graphql(
            gateway,
            "alice",
            "mutation($id: ID!) { updateTask(id: $id, input: { title: \"Water the herbs\" }) { id } }",
            json!({ "id": id }),
        )
        .await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    cluster
        .graphql(
            gateway,
            "alice",
            create,
            json!({ "i": { "title": "Call the plumber", "reminders": [{ "at": at }] } }),
        )
        .await;
    cluster.complete(gateway, std::slice::from_ref(&id)).await;

    cluster
        .wait_for_count(
            "the next occurrence",
            &format!("SELECT COUNT(*) FROM tasks WHERE generated_from_task_id = '{id}'"),
            1,
        )
        .await;
    cluster
        .wait_for_count(
            "the fired reminder's notification",
            "SELECT COUNT(*) FROM notifications",
            1,
        )
        .await;
    id
}

impl Cluster {
    /// Checks the gateway reports every component running and no process logged a
    /// permission error (background tasks log theirs and retry).
    async fn assert_ready_without_permission_errors(&mut self, gateway: usize) {
        let ready: Value = reqwest::get(format!("{}/readyz", self.gateways[gateway].1))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready", "{ready}");
        let procs = self
            .gateways
            .iter()
            .map(|(p, _)| p)
            .chain(&self.subscribers);
        for proc in procs {
            let log = std::fs::read_to_string(&proc.log).unwrap();
            assert!(
                !log.contains("permission denied"),
                "{} logged a permission error\n{}",
                proc.name,
                proc.tail()
            );
        }
        for proc in &mut self.subscribers {
            proc.assert_running();
        }
    }

    /// Starts a gateway with `extra` environment that must stop at start-up; returns its log.
    fn gateway_failing_at_start_up(&self, extra: &[(&str, String)]) -> String {
        self.failing_at_start_up("taskstream", extra)
    }

    /// Starts the binary `name` with `extra` environment (on top of the gateway's) that must
    /// stop at start-up; returns its log.
    fn failing_at_start_up(&self, name: &str, extra: &[(&str, String)]) -> String {
        let mut env = self.common_env();
        env.extend(extra.iter().cloned());
        env.push(("JWT_SECRET", SECRET.to_owned()));
        env.push(("LISTEN_ADDR", format!("127.0.0.1:{}", free_port())));
        let mut proc = Proc::spawn(name, &binary(name), &env, &self.dir);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = proc.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} is still running after 60 s\n{}",
                proc.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success(), "{name} exited with {status}");
        std::fs::read_to_string(&proc.log).unwrap()
    }
}

/// A login role of one test's own. Roles are cluster-wide, unlike the test's database, so it
/// is dropped when the test ends however it ends (a panic included), with its privileges in
/// the test's database.
struct TestRole {
    name: String,
    password: String,
    /// The test database's admin URL: where the role's privileges are.
    database_url: String,
    /// `TEST_DATABASE_URL`, the server's.
    admin_url: String,
}

impl TestRole {
    async fn create(db: &support::TestDb) -> TestRole {
        let role = TestRole {
            name: format!("ts_test_role_{}", uuid::Uuid::new_v4().simple()),
            password: uuid::Uuid::new_v4().simple().to_string(),
            database_url: db.url.clone(),
            admin_url: std::env::var("TEST_DATABASE_URL").unwrap(),
        };
        db.db
            .execute_unprepared(&format!(
                "CREATE ROLE {} LOGIN PASSWORD '{}'",
                role.name, role.password
            ))
            .await
            .unwrap();
        role
    }

    /// The test database's URL as this role.
    fn url(&self) -> String {
        let mut url = url::Url::parse(&self.database_url).unwrap();
        url.set_username(&self.name).unwrap();
        url.set_password(Some(&self.password)).unwrap();
        url.into()
    }

    async fn drop_role(
        name: &str,
        database_url: &str,
        admin_url: &str,
    ) -> Result<(), sea_orm::DbErr> {
        let admin = sea_orm::Database::connect(admin_url).await?;
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'"
            ))
            .await?;
        // Its privileges first; none are left when the test's database is already dropped.
        if let Ok(db) = sea_orm::Database::connect(database_url).await {
            db.execute_unprepared(&format!("DROP OWNED BY {name}"))
                .await?;
            db.close().await?;
        }
        admin
            .execute_unprepared(&format!("DROP ROLE IF EXISTS {name}"))
            .await?;
        admin.close().await
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        let (database_url, admin_url) = (self.database_url.clone(), self.admin_url.clone());
        // Drop runs on the test's runtime, which cannot block on a future: a thread of its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(TestRole::drop_role(&name, &database_url, &admin_url))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            // Not a panic: this may run while a failed test unwinds.
            eprintln!("could not drop the test role {}: {dropped:?}", self.name);
        }
    }
}
