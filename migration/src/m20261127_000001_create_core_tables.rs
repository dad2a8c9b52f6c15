//! Creates the core tables: users, tasks, tags, task_tags, reminders, outbox,
//! consumer_offsets, processed_events, dead_letters, with their indexes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Tables in creation order; dropped in reverse.
const TABLES: [&str; 9] = [
    "users",
    "tasks",
    "tags",
    "task_tags",
    "reminders",
    "outbox",
    "consumer_offsets",
    "processed_events",
    "dead_letters",
];

fn ts(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
}

fn ts_null(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(name)
}

fn index(name: &'static str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(*c);
    }
    idx.take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(string_len("id", 255).primary_key())
                    .col(string_len("timezone", 64).default("UTC"))
                    .col(text_null("webhook_url"))
                    .col(text_null("webhook_secret"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("tasks")
                    .col(uuid("id").primary_key())
                    .col(string_len("owner_id", 255))
                    .col(text("title"))
                    .col(text("description").default(""))
                    .col(small_integer("priority").default(0))
                    .col(boolean("completed").default(false))
                    .col(ts_null("completed_at"))
                    .col(ts_null("due_at"))
                    .col(text_null("recurrence_rule"))
                    .col(string_len_null("recurrence_timezone", 64))
                    .col(string_len_null("recurrence_anchor", 16))
                    .col(uuid_null("series_id"))
                    .col(integer_null("occurrence_index"))
                    .col(uuid_null("generated_from_task_id"))
                    .col(integer("version").default(1))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_owner")
                            .from("tasks", "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_tasks_priority",
                        Expr::cust("priority BETWEEN 0 AND 4"),
                    ))
                    .check(Check::named(
                        "ck_tasks_recurrence_needs_due",
                        Expr::cust("recurrence_rule IS NULL OR due_at IS NOT NULL"),
                    ))
                    .take(),
            )
            .await?;
        // Every list query filters by owner first; each sort key gets an index that leads with
        // the owner and ends with the id tie-breaker, so keyset pages are index range scans.
        for (name, cols) in [
            (
                "ix_tasks_owner_created",
                &["owner_id", "created_at", "id"][..],
            ),
            (
                "ix_tasks_owner_updated",
                &["owner_id", "updated_at", "id"][..],
            ),
            ("ix_tasks_owner_due", &["owner_id", "due_at", "id"][..]),
            (
                "ix_tasks_owner_priority",
                &["owner_id", "priority", "id"][..],
            ),
            (
                "ix_tasks_owner_completed_due",
                &["owner_id", "completed", "due_at"][..],
            ),
            ("ix_tasks_series", &["series_id"][..]),
        ] {
            manager.create_index(index(name, "tasks", cols)).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("uq_tasks_generated_from")
                    .table("tasks")
                    .col("generated_from_task_id")
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_tasks_owner_title ON tasks (owner_id, LOWER(title), id)",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("tags")
                    .col(uuid("id").primary_key())
                    .col(string_len("owner_id", 255))
                    .col(string_len("name", 64))
                    .col(string_len("name_key", 64))
                    .col(string_len_null("color", 32))
                    .col(ts("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tags_owner")
                            .from("tags", "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_tags_owner_name")
                    .table("tags")
                    .col("owner_id")
                    .col("name_key")
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("task_tags")
                    .col(uuid("task_id"))
                    .col(uuid("tag_id"))
                    .primary_key(
                        Index::create()
                            .name("pk_task_tags")
                            .col("task_id")
                            .col("tag_id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_tags_task")
                            .from("task_tags", "task_id")
                            .to("tasks", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_tags_tag")
                            .from("task_tags", "tag_id")
                            .to("tags", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_task_tags_tag",
                "task_tags",
                &["tag_id", "task_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("reminders")
                    .col(uuid("id").primary_key())
                    .col(uuid("task_id"))
                    .col(string_len("owner_id", 255))
                    .col(integer_null("minutes_before_due"))
                    .col(ts_null("at"))
                    .col(ts_null("fire_at"))
                    .col(string_len("status", 16).default("PENDING"))
                    .col(ts("created_at"))
                    .col(ts_null("fired_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reminders_task")
                            .from("reminders", "task_id")
                            .to("tasks", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_reminders_one_kind",
                        Expr::cust("(minutes_before_due IS NULL) <> (at IS NULL)"),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("ix_reminders_task", "reminders", &["task_id"]))
            .await?;
        manager
            .create_index(index(
                "ix_reminders_status_fire",
                "reminders",
                &["status", "fire_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .col(big_integer("id").auto_increment().primary_key())
                    .col(uuid("event_id"))
                    .col(string_len("topic", 255))
                    .col(text("key"))
                    .col(text("payload"))
                    .col(text("headers"))
                    .col(ts("created_at"))
                    .col(ts_null("published_at"))
                    .col(integer_null("partition"))
                    .col(big_integer_null("offset"))
                    .col(integer("attempts").default(0))
                    .col(text_null("last_error"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_outbox_event_id")
                    .table("outbox")
                    .col("event_id")
                    .unique()
                    .take(),
            )
            .await?;
        // The relay's work list: pending rows in id order. Partial, so it stays small.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_outbox_pending ON outbox (id) WHERE published_at IS NULL",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("consumer_offsets")
                    .col(string_len("consumer", 255))
                    .col(string_len("topic", 255))
                    .col(integer("partition"))
                    .col(big_integer("next_offset"))
                    .col(ts("updated_at"))
                    .primary_key(
                        Index::create()
                            .name("pk_consumer_offsets")
                            .col("consumer")
                            .col("topic")
                            .col("partition"),
                    )
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("processed_events")
                    .col(string_len("consumer", 255))
                    .col(uuid("event_id"))
                    .col(ts("processed_at"))
                    .primary_key(
                        Index::create()
                            .name("pk_processed_events")
                            .col("consumer")
                            .col("event_id"),
                    )
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("dead_letters")
                    .col(big_integer("id").auto_increment().primary_key())
                    .col(string_len("consumer", 255))
                    .col(string_len("topic", 255))
                    .col(integer("partition"))
                    .col(big_integer("offset"))
                    .col(uuid_null("event_id"))
                    .col(text_null("key"))
                    .col(text("payload"))
                    .col(text("headers"))
                    .col(text("error"))
                    .col(integer("attempts"))
                    .col(string_len("status", 16).default("PARKED"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_dead_letters_status",
                "dead_letters",
                &["status", "id"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(*table).take())
                .await?;
        }
        Ok(())
    }
}
