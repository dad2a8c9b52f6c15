//! Creates `webhook_deliveries`: the delivery log and queue of webhook POSTs, one row per
//! notification event sent to a user's webhook (`uq_webhook_deliveries_event` makes the webhook
//! subscriber idempotent). The row keeps the exact body that is signed and sent, where the
//! event came from on the log (for the dead letter after the last attempt), and the outcome of
//! the latest attempt. `ix_webhook_deliveries_due` is the dispatcher's claim order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "webhook_deliveries";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(uuid("id").primary_key())
                    .col(uuid("event_id"))
                    .col(string_len("owner_id", 255))
                    .col(uuid_null("notification_id"))
                    .col(text("url"))
                    .col(text("body"))
                    .col(string_len("source_topic", 255))
                    .col(integer("source_partition"))
                    .col(big_integer("source_offset"))
                    .col(text("source_headers"))
                    .col(string_len("status", 16))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(integer_null("last_status_code"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_owner")
                            .from(TABLE, "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_webhook_deliveries_event")
                    .table(TABLE)
                    .col("event_id")
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_due")
                    .table(TABLE)
                    .col("status")
                    .col("next_attempt_at")
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_owner_created")
                    .table(TABLE)
                    .col("owner_id")
                    .col("created_at")
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TABLE).take()).await
    }
}
