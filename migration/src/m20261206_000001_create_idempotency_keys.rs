//! Creates `idempotency_keys`: one row per (owner, `Idempotency-Key`) of a mutation, holding a
//! hash of the request it was first used with, its state and, once finished, the response a
//! retry gets back. No foreign key to `users`: a key may be claimed before the user's row
//! exists (the first request of a new user). `ix_idempotency_keys_expires` serves pruning.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "idempotency_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(string_len("owner_id", 255))
                    .col(string_len("key", 255))
                    .col(string_len("request_hash", 64))
                    .col(string_len("state", 16))
                    .col(text_null("response"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .primary_key(
                        Index::create()
                            .name("pk_idempotency_keys")
                            .col("owner_id")
                            .col("key"),
                    )
                    .check(Check::named(
                        "ck_idempotency_keys_state",
                        Expr::cust("state IN ('IN_PROGRESS', 'DONE', 'UNKNOWN')"),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_expires")
                    .table(TABLE)
                    .col("expires_at")
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TABLE).take()).await
    }
}
