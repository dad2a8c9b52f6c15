//! Creates `task_versions`: the append-only history of every task, one row per version, written
//! in the transaction of the change itself (`stream::outbox::append_change`), so it is exactly
//! as durable as the change and outlives outbox pruning and log retention. No foreign key to
//! `tasks`: the history of a deleted task stays (that is how it is restored). Primary key
//! `(task_id, version)`: two changes can never record the same version. The kind is checked
//! (`ck_task_versions_kind`); `ix_task_versions_owner_changed` serves `deletedTasks` and
//! retention.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "task_versions";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(uuid("task_id"))
                    .col(integer("version"))
                    .col(string_len("owner_id", 255))
                    .col(string_len("kind", 16))
                    .col(text("snapshot"))
                    .col(uuid("event_id"))
                    .col(string_len_null("caused_by", 255))
                    .col(timestamp_with_time_zone("changed_at"))
                    .primary_key(
                        Index::create()
                            .name("pk_task_versions")
                            .col("task_id")
                            .col("version"),
                    )
                    .check(Check::named(
                        "ck_task_versions_kind",
                        Expr::cust(
                            "kind IN ('CREATED', 'UPDATED', 'COMPLETED', 'REOPENED', 'DELETED', \
                             'RESTORED')",
                        ),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_task_versions_owner_changed")
                    .table(TABLE)
                    .col("owner_id")
                    .col("changed_at")
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TABLE).take()).await
    }
}
