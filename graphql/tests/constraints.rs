//! Database constraint violations are mapped by the constraint's name
//! (`graphql::error::constraints`), on SQLite and PostgreSQL:
//!
//! - the one a request can violate, `uq_tags_owner_name`, through `createTag` and `updateTag`
//!   (also many at once: exactly one wins);
//! - every entry of the table, violated by a statement on a database the API filled, resolves
//!   to that entry on both databases (except foreign keys on SQLite, which SQLite does not
//!   identify) and becomes CONFLICT with its message or INTERNAL with the name in its cause;
//! - the table matches both databases' catalogs, so a migration that adds or renames a
//!   constraint fails here until the table has it.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use graphql::error::ApiError;
use graphql::error::constraints::{CONSTRAINTS, ConstraintKind, Violation, ViolationKind};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use serde_json::json;
use support::{Backend, TestApp, TestDb};

const ALICE: &str = "alice";
const BOB: &str = "bob";

const TAG_TAKEN: &str = "name is already the name of another of your tags (tag names ignore case)";

const CREATE_TAG: &str = "mutation($name: String!) { createTag(name: $name) { id name } }";
const UPDATE_TAG: &str =
    "mutation($id: ID!, $name: String) { updateTag(id: $id, name: $name) { id name } }";

on_both_databases!(a_taken_tag_name_is_a_conflict_naming_the_field, |t| {
    let app = TestApp::on(t);
    let work = app.ok(ALICE, CREATE_TAG, json!({ "name": "Work" })).await;
    assert_eq!(
        app.err(ALICE, CREATE_TAG, json!({ "name": " work " }))
            .await,
        ("CONFLICT".to_owned(), TAG_TAKEN.to_owned())
    );
    let home = app.ok(ALICE, CREATE_TAG, json!({ "name": "Home" })).await;
    let home_id = &home["createTag"]["id"];
    assert_eq!(
        app.err(ALICE, UPDATE_TAG, json!({ "id": home_id, "name": "WORK" }))
            .await,
        ("CONFLICT".to_owned(), TAG_TAKEN.to_owned())
    );
    assert_eq!(
        app.error_field(ALICE, r#"mutation { createTag(name: "WORK") { id } }"#)
            .await,
        ("CONFLICT".to_owned(), Some("name".to_owned()))
    );
    // Nothing was written by any refusal.
    let tags = app.ok(ALICE, "{ tags { id name } }", json!({})).await;
    assert_eq!(
        tags["tags"],
        json!([
            { "id": home_id, "name": "Home" },
            { "id": work["createTag"]["id"], "name": "Work" }
        ])
    );
    // A tag's own name in another case is no conflict; another user's tags are none either.
    let renamed = app
        .ok(ALICE, UPDATE_TAG, json!({ "id": home_id, "name": "HOME" }))
        .await;
    assert_eq!(renamed["updateTag"]["name"], "HOME");
    app.ok(BOB, CREATE_TAG, json!({ "name": "work" })).await;
});

on_both_databases!(concurrent_creations_of_one_tag_name_leave_one_winner, |t| {
    let app = std::sync::Arc::new(TestApp::on(t));
    app.ok(ALICE, CREATE_TAG, json!({ "name": "first" })).await; // the user row exists
    let attempts = (0..8).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let name = if i % 2 == 0 { "Errand" } else { "errand" };
            app.exec(ALICE, CREATE_TAG, json!({ "name": name })).await
        })
    });
    let mut created = 0;
    for attempt in attempts {
        let response = attempt.await.unwrap();
        match response.errors.first() {
            None => created += 1,
            Some(err) => {
                let code = err.extensions.as_ref().and_then(|e| e.get("code"));
                assert_eq!(
                    code.map(|c| c.clone().into_json().unwrap()),
                    Some(json!("CONFLICT")),
                    "{err:?}"
                );
                assert_eq!(err.message, TAG_TAKEN);
            }
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.count("tags").await, 2);
});

/// Tasks A (tags t1, t2; reminders 10 and 20 minutes before due), B (due, no rule) and an
/// unused tag `lonely` for alice, task C for bob; and outbox rows from all of it.
async fn fill(app: &TestApp) {
    app.create_task(
        ALICE,
        json!({
            "title": "A",
            "dueAt": "2030-01-01T09:00:00Z",
            "tags": ["t1", "t2"],
            "reminders": [{ "minutesBeforeDue": 10 }, { "minutesBeforeDue": 20 }]
        }),
    )
    .await;
    app.create_task(
        ALICE,
        json!({ "title": "B", "dueAt": "2030-01-01T09:00:00Z" }),
    )
    .await;
    app.ok(ALICE, CREATE_TAG, json!({ "name": "lonely" })).await;
    app.create_task(BOB, json!({ "title": "C" })).await;
}

const NEW_ID: &str = "01900000-0000-7000-8000-00000000000f";

/// Statements that end in a violation of constraint `name` (the ones before it succeed), in
/// SQL both databases run. Panics for a constraint without one, so a new entry needs a trigger.
fn trigger(name: &str) -> Vec<String> {
    let task = |title: &str| format!("(SELECT id FROM tasks WHERE title = '{title}')");
    let tag = |key: &str| format!("(SELECT id FROM tags WHERE name_key = '{key}')");
    let notification = |id: u8, event: u8, owner: &str| {
        format!(
            "INSERT INTO notifications (id, owner_id, kind, title, body, event_id, created_at) \
             VALUES ('{}', '{owner}', 'REMINDER_DUE', 't', 'b', '{}', CURRENT_TIMESTAMP)",
            uuid(id),
            uuid(event)
        )
    };
    let delivery = |id: u8, event: u8, owner: &str| {
        format!(
            "INSERT INTO webhook_deliveries (id, event_id, owner_id, url, body, source_topic, \
             source_partition, source_offset, source_headers, status, attempts, \
             next_attempt_at, created_at, updated_at) VALUES ('{}', '{}', '{owner}', \
             'https://example.com/hook', '{{}}', 'notifications', 0, 0, '{{}}', 'PENDING', 0, \
             CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            uuid(id),
            uuid(event)
        )
    };
    let idempotency = |key: &str, state: &str| {
        format!(
            "INSERT INTO idempotency_keys (owner_id, key, request_hash, state, created_at, \
             expires_at) VALUES ('alice', '{key}', 'h', '{state}', CURRENT_TIMESTAMP, \
             CURRENT_TIMESTAMP)"
        )
    };
    let feed = |id: u8, secret: u8, owner: &str| {
        format!(
            "INSERT INTO calendar_feeds (id, owner_id, name, secret_hash, created_at) \
             VALUES ('{}', '{owner}', 'f', '{secret:064x}', CURRENT_TIMESTAMP)",
            uuid(id)
        )
    };
    let twice = |sql: String| vec![sql.clone(), sql];
    let one = |sql: String| vec![sql];
    match name {
        "users_pkey" => one("UPDATE users SET id = 'alice' WHERE id = 'bob'".into()),
        "tasks_pkey" => one(format!(
            "UPDATE tasks SET id = {} WHERE title = 'C'",
            task("A")
        )),
        "uq_tasks_generated_from" => one(format!(
            "UPDATE tasks SET generated_from_task_id = {} WHERE title IN ('A', 'B')",
            task("C")
        )),
        "fk_tasks_owner" => one("UPDATE tasks SET owner_id = 'nobody' WHERE title = 'A'".into()),
        "ck_tasks_priority" => one("UPDATE tasks SET priority = 9 WHERE title = 'A'".into()),
        "ck_tasks_recurrence_needs_due" => one(
            "UPDATE tasks SET recurrence_rule = 'FREQ=DAILY', due_at = NULL WHERE title = 'B'"
                .into(),
        ),
        "tags_pkey" => one(format!(
            "UPDATE tags SET id = {} WHERE name_key = 'lonely'",
            tag("t1")
        )),
        "uq_tags_owner_name" => {
            one("UPDATE tags SET name_key = 't1' WHERE name_key = 'lonely'".into())
        }
        "fk_tags_owner" => {
            one("UPDATE tags SET owner_id = 'nobody' WHERE name_key = 'lonely'".into())
        }
        "pk_task_tags" => one(format!(
            "UPDATE task_tags SET tag_id = {} WHERE tag_id = {}",
            tag("t1"),
            tag("t2")
        )),
        "fk_task_tags_task" => one(format!(
            "UPDATE task_tags SET task_id = '{NEW_ID}' WHERE tag_id = {}",
            tag("t1")
        )),
        "fk_task_tags_tag" => one(format!(
            "UPDATE task_tags SET tag_id = '{NEW_ID}' WHERE tag_id = {}",
            tag("t1")
        )),
        "reminders_pkey" => one(
            "UPDATE reminders SET id = (SELECT id FROM reminders WHERE minutes_before_due = 10) \
             WHERE minutes_before_due = 20"
                .into(),
        ),
        "fk_reminders_task" => one(format!(
            "UPDATE reminders SET task_id = '{NEW_ID}' WHERE minutes_before_due = 10"
        )),
        "ck_reminders_one_kind" => one(
            "UPDATE reminders SET minutes_before_due = NULL WHERE minutes_before_due = 10".into(),
        ),
        "outbox_pkey" => one("UPDATE outbox SET id = (SELECT MIN(id) FROM outbox) \
             WHERE id = (SELECT MAX(id) FROM outbox)"
            .into()),
        "uq_outbox_event_id" => one("UPDATE outbox SET event_id = \
             (SELECT event_id FROM outbox WHERE id = (SELECT MIN(id) FROM outbox)) \
             WHERE id = (SELECT MAX(id) FROM outbox)"
            .into()),
        "pk_consumer_offsets" => twice(
            "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, updated_at) \
             VALUES ('c', 't', 0, 0, CURRENT_TIMESTAMP)"
                .into(),
        ),
        "pk_processed_events" => twice(format!(
            "INSERT INTO processed_events (consumer, event_id, processed_at) \
             VALUES ('c', '{NEW_ID}', CURRENT_TIMESTAMP)"
        )),
        "dead_letters_pkey" => twice(
            "INSERT INTO dead_letters (id, consumer, topic, partition, \"offset\", payload, \
             headers, error, attempts, created_at, updated_at) VALUES (1, 'c', 't', 0, 0, '{}', \
             '{}', 'e', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                .into(),
        ),
        "notifications_pkey" => vec![notification(1, 1, ALICE), notification(1, 2, ALICE)],
        "uq_notifications_event" => vec![notification(3, 3, ALICE), notification(4, 3, ALICE)],
        "fk_notifications_owner" => one(notification(5, 5, "nobody")),
        "webhook_deliveries_pkey" => vec![delivery(1, 1, ALICE), delivery(1, 2, ALICE)],
        "uq_webhook_deliveries_event" => vec![delivery(3, 3, ALICE), delivery(4, 3, ALICE)],
        "fk_webhook_deliveries_owner" => one(delivery(5, 5, "nobody")),
        "pk_idempotency_keys" => twice(idempotency("k", "DONE")),
        "ck_idempotency_keys_state" => one(idempotency("k2", "BOGUS")),
        "ck_tasks_recurrence_anchor" => {
            one("UPDATE tasks SET recurrence_anchor = 'WHENEVER' WHERE title = 'A'".into())
        }
        "ck_reminders_status" => {
            one("UPDATE reminders SET status = 'BOGUS' WHERE minutes_before_due = 10".into())
        }
        "ck_notifications_kind" => one(notification(6, 6, ALICE).replace("REMINDER_DUE", "BOGUS")),
        "ck_webhook_deliveries_status" => {
            one(delivery(6, 6, ALICE).replace("'PENDING'", "'BOGUS'"))
        }
        "ck_dead_letters_status" => one(
            "INSERT INTO dead_letters (id, consumer, topic, partition, \"offset\", payload, \
             headers, error, attempts, status, created_at, updated_at) VALUES (2, 'c', 't', 0, \
             0, '{}', '{}', 'e', 1, 'BOGUS', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                .into(),
        ),
        "pk_consumer_members" => twice(
            "INSERT INTO consumer_members (consumer, topic, instance, expires_at_ms) \
             VALUES ('c', 't', 'i', 0)"
                .into(),
        ),
        "pk_consumer_leases" => twice(
            "INSERT INTO consumer_leases (consumer, topic, partition, owner, expires_at_ms) \
             VALUES ('c', 't', 0, NULL, 0)"
                .into(),
        ),
        "ck_consumer_leases_partition" => one(
            "INSERT INTO consumer_leases (consumer, topic, partition, owner, expires_at_ms) \
             VALUES ('c', 't', -1, NULL, 0)"
                .into(),
        ),
        "pk_task_versions" => twice(format!(
            "INSERT INTO task_versions (task_id, version, owner_id, kind, snapshot, event_id, \
             changed_at) VALUES ('{NEW_ID}', 1, 'alice', 'CREATED', '{{}}', '{NEW_ID}', \
             CURRENT_TIMESTAMP)"
        )),
        "ck_task_versions_kind" => one(format!(
            "INSERT INTO task_versions (task_id, version, owner_id, kind, snapshot, event_id, \
             changed_at) VALUES ('{NEW_ID}', 2, 'alice', 'BOGUS', '{{}}', '{NEW_ID}', \
             CURRENT_TIMESTAMP)"
        )),
        "pk_calendar_feeds" => vec![feed(1, 1, ALICE), feed(1, 2, ALICE)],
        "uq_calendar_feeds_secret_hash" => vec![feed(3, 3, ALICE), feed(4, 3, ALICE)],
        "fk_calendar_feeds_owner" => one(feed(5, 5, "nobody")),
        other => panic!("no statement violates {other}: add one to `trigger`"),
    }
}

fn uuid(n: u8) -> String {
    format!("01900000-0000-7000-8000-0000000000{n:02x}")
}

/// Runs `statements`; all but the last must succeed, the last must fail.
async fn violate(db: &DatabaseConnection, name: &str) -> DbErr {
    let mut statements = trigger(name);
    let last = statements.pop().unwrap();
    for sql in statements {
        db.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("setting up {name}: {sql}: {e}"));
    }
    match db.execute_unprepared(&last).await {
        Ok(_) => panic!("{last} did not violate {name}"),
        Err(err) => err,
    }
}

on_both_databases!(
    every_constraint_resolves_by_name_and_maps_to_its_error,
    |t| {
        let app = TestApp::on(t);
        fill(&app).await;
        for constraint in CONSTRAINTS {
            let name = constraint.name;
            let err = violate(&t.db, name).await;
            let violation = graphql::error::constraints::violation(&err)
                .unwrap_or_else(|| panic!("{name}: {err} is not a violation"));
            match violation {
                Violation::Known(found) => assert_eq!(found.name, name, "{err}"),
                Violation::Unidentified { kind, ref reported } => assert!(
                    t.backend == Backend::Sqlite
                        && constraint.kind == ConstraintKind::ForeignKey
                        && kind == ViolationKind::ForeignKey,
                    "{name} not identified: {reported}"
                ),
            }
            match (ApiError::from(err), &constraint.conflict) {
                (ApiError::Conflict { message, field }, Some(conflict)) => {
                    assert_eq!(message, conflict.message());
                    assert_eq!(field.as_deref(), Some(conflict.field));
                }
                (ApiError::Internal(cause), None) => {
                    let cause = format!("{cause:#}");
                    if let Violation::Known(_) = violation {
                        assert!(cause.contains(name), "{cause}");
                    } else {
                        assert!(cause.contains("FOREIGN KEY constraint failed"), "{cause}");
                    }
                }
                (other, _) => panic!("{name} became {} ({other})", other.code()),
            }
        }
    }
);

/// Runs `sql` and returns each row's text columns.
async fn rows(db: &DatabaseConnection, sql: &str, columns: &[&str]) -> Vec<Vec<String>> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.try_get::<String>("", c).unwrap())
                .collect()
        })
        .collect()
}

/// (kind, table, columns, name) of every constraint in the database; `name` is `None` where
/// SQLite keeps none (keys and foreign keys). Sea-ORM's own table is left out, and on SQLite
/// the tables `CONSTRAINTS` does not name: the PostgreSQL comparison makes it name every table
/// both databases have, so these are SQLite's search machinery (FTS5 tables, their shadow
/// tables and rowid maps, written only by triggers).
async fn catalog(t: &TestDb) -> BTreeSet<(String, String, String, Option<String>)> {
    let named = |kind: &str, r: &[String]| {
        (
            kind.to_owned(),
            r[1].clone(),
            r[2].clone(),
            Some(r[0].clone()),
        )
    };
    match t.backend {
        Backend::Postgres => {
            let keys = rows(
                &t.db,
                "SELECT i.relname::text AS name, c.relname::text AS tbl, \
                   string_agg(a.attname::text, ',' ORDER BY k.ord) AS cols, 'key' AS kind \
                 FROM pg_index x \
                 JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class c ON c.oid = x.indrelid \
                 CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE c.relnamespace = 'public'::regnamespace AND x.indisunique \
                   AND c.relname <> 'seaql_migrations' \
                 GROUP BY i.relname, c.relname",
                &["name", "tbl", "cols", "kind"],
            )
            .await;
            let others = rows(
                &t.db,
                "SELECT con.conname::text AS name, c.relname::text AS tbl, \
                   string_agg(a.attname::text, ',' ORDER BY k.ord) AS cols, \
                   con.contype::text AS kind \
                 FROM pg_constraint con \
                 JOIN pg_class c ON c.oid = con.conrelid \
                 CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE con.connamespace = 'public'::regnamespace AND con.contype IN ('f', 'c') \
                 GROUP BY con.conname, c.relname, con.contype",
                &["name", "tbl", "cols", "kind"],
            )
            .await;
            keys.iter()
                .chain(&others)
                .map(|r| {
                    let kind = match r[3].as_str() {
                        "f" => "foreign key",
                        "c" => "check",
                        _ => "key",
                    };
                    let mut entry = named(kind, r);
                    if kind == "check" {
                        entry.2 = sorted(&entry.2);
                    }
                    entry
                })
                .collect()
        }
        Backend::Sqlite => {
            const TABLES: &str = "SELECT name FROM sqlite_master WHERE type = 'table'";
            let primary_keys = format!(
                "SELECT m.name AS tbl, group_concat(p.name, ',') AS cols \
                 FROM ({TABLES}) m JOIN pragma_table_info(m.name) p \
                 WHERE p.pk > 0 GROUP BY m.name"
            );
            let unique_indexes = format!(
                "SELECT m.name AS tbl, group_concat(ii.name, ',') AS cols \
                 FROM ({TABLES}) m JOIN pragma_index_list(m.name) il \
                 JOIN pragma_index_info(il.name) ii \
                 WHERE il.\"unique\" = 1 AND il.origin <> 'pk' GROUP BY m.name, il.name"
            );
            let foreign_keys = format!(
                "SELECT m.name AS tbl, f.\"from\" AS cols \
                 FROM ({TABLES}) m JOIN pragma_foreign_key_list(m.name) f"
            );
            let mut found = BTreeSet::new();
            for (kind, sql) in [
                ("key", primary_keys),
                ("key", unique_indexes),
                ("foreign key", foreign_keys),
            ] {
                for r in rows(&t.db, &sql, &["tbl", "cols"]).await {
                    found.insert((kind.to_owned(), r[0].clone(), r[1].clone(), None));
                }
            }
            // Named CHECKs live only in the table's SQL: `CONSTRAINT "name" CHECK (...)`.
            let tables =
                format!("SELECT name AS tbl, sql FROM sqlite_master WHERE name IN ({TABLES})");
            for r in rows(&t.db, &tables, &["tbl", "sql"]).await {
                const OPEN: &str = "CONSTRAINT \"";
                for (i, _) in r[1].match_indices(OPEN) {
                    let Some((name, rest)) = r[1][i + OPEN.len()..].split_once('"') else {
                        continue;
                    };
                    if rest.trim_start().starts_with("CHECK") {
                        found.insert((
                            "check".to_owned(),
                            r[0].clone(),
                            columns_of_check(name),
                            Some(name.to_owned()),
                        ));
                    }
                }
            }
            // Checks added to existing tables are triggers `<name>_insert` (and `_update`) that
            // abort with the constraint's name.
            let triggers = "SELECT name, tbl_name AS tbl FROM sqlite_master \
                            WHERE type = 'trigger' AND name LIKE 'ck\\_%\\_insert' ESCAPE '\\'";
            for r in rows(&t.db, triggers, &["name", "tbl"]).await {
                let name = r[0].trim_end_matches("_insert");
                found.insert((
                    "check".to_owned(),
                    r[1].clone(),
                    columns_of_check(name),
                    Some(name.to_owned()),
                ));
            }
            let shared: BTreeSet<&str> = CONSTRAINTS.iter().map(|c| c.table).collect();
            found.retain(|(_, table, _, _)| shared.contains(table.as_str()));
            found
        }
    }
}

fn sorted(columns: &str) -> String {
    let mut c: Vec<&str> = columns.split(',').collect();
    c.sort_unstable();
    c.join(",")
}

/// SQLite does not say which columns a CHECK reads; the table's own list stands in.
fn columns_of_check(name: &str) -> String {
    CONSTRAINTS
        .iter()
        .find(|c| c.name == name)
        .map(|c| sorted(&c.columns.join(",")))
        .unwrap_or_else(|| "?".to_owned())
}

/// The table as `catalog` reports it on `backend`.
fn table(backend: Backend) -> BTreeSet<(String, String, String, Option<String>)> {
    CONSTRAINTS
        .iter()
        .map(|c| {
            let (kind, named_on_sqlite) = match c.kind {
                ConstraintKind::PrimaryKey | ConstraintKind::Unique => ("key", false),
                ConstraintKind::ForeignKey => ("foreign key", false),
                ConstraintKind::Check => ("check", true),
            };
            let columns = match c.kind {
                ConstraintKind::Check => sorted(&c.columns.join(",")),
                _ => c.columns.join(","),
            };
            let name = (backend == Backend::Postgres || named_on_sqlite).then(|| c.name.to_owned());
            (kind.to_owned(), c.table.to_owned(), columns, name)
        })
        .collect()
}

on_both_databases!(the_constraint_table_matches_the_database_catalog, |t| {
    let found = catalog(t).await;
    let expected = table(t.backend);
    let missing: Vec<_> = found.difference(&expected).collect();
    let stale: Vec<_> = expected.difference(&found).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "graphql/src/error/constraints.rs is out of step with the migrations on {:?}:\n\
         in the database, not in CONSTRAINTS: {missing:#?}\n\
         in CONSTRAINTS, not in the database: {stale:#?}",
        t.backend
    );
});
