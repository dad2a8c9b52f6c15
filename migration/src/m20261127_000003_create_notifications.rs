//! Creates `notifications`: the in-app inbox, one row per source event (`uq_notifications_event`
//! makes the notification subscriber idempotent). `task_id` has no foreign key: a notification
//! outlives the task it was about.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn index(name: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table("notifications");
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
                    .table("notifications")
                    .col(uuid("id").primary_key())
                    .col(string_len("owner_id", 255))
                    .col(uuid_null("task_id"))
                    .col(string_len("kind", 64))
                    .col(text("title"))
                    .col(text("body"))
                    .col(uuid("event_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("read_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_owner")
                            .from("notifications", "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_notifications_event")
                    .table("notifications")
                    .col("event_id")
                    .unique()
                    .take(),
            )
            .await?;
        // The inbox is listed newest first by (created_at, id) and filtered by read state.
        manager
            .create_index(index(
                "ix_notifications_owner_created",
                &["owner_id", "created_at", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_notifications_owner_read",
                &["owner_id", "read_at"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("notifications").take())
            .await
    }
}
