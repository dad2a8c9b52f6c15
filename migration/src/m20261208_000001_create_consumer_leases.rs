//! Creates the tables that share a consumer's partitions among its live instances
//! (`stream::consumer::leases`):
//! - `consumer_members`: one row per running instance of a consumer on a topic, renewed by its
//!   heartbeat; a row whose `expires_at_ms` has passed is a dead instance;
//! - `consumer_leases`: one row per partition of a consumer's topic, held by at most one
//!   instance (`owner`) until `expires_at_ms`. A free partition has no owner.
//!
//! Times are milliseconds since the Unix epoch read from the database's clock (not the
//! instances'), stored as integers so both databases compare them the same way.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const MEMBERS: &str = "consumer_members";
const LEASES: &str = "consumer_leases";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MEMBERS)
                    .col(string_len("consumer", 255))
                    .col(string_len("topic", 255))
                    .col(string_len("instance", 255))
                    .col(big_integer("expires_at_ms"))
                    .primary_key(
                        Index::create()
                            .name("pk_consumer_members")
                            .col("consumer")
                            .col("topic")
                            .col("instance"),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LEASES)
                    .col(string_len("consumer", 255))
                    .col(string_len("topic", 255))
                    .col(integer("partition"))
                    .col(string_len_null("owner", 255))
                    .col(big_integer("expires_at_ms"))
                    .primary_key(
                        Index::create()
                            .name("pk_consumer_leases")
                            .col("consumer")
                            .col("topic")
                            .col("partition"),
                    )
                    .check(Check::named(
                        "ck_consumer_leases_partition",
                        Expr::cust("partition >= 0"),
                    ))
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LEASES).take())
            .await?;
        manager
            .drop_table(Table::drop().table(MEMBERS).take())
            .await
    }
}
