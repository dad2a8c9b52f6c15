//! Creates `calendar_feeds`: one row per iCalendar feed URL a user made (`createCalendarFeed`).
//! The URL's secret is not stored, only its SHA-256 in hex (`secret_hash`, unique:
//! `uq_calendar_feeds_secret_hash`), which is how `GET /calendar/<secret>.ics` finds the row.
//! `filter` is the feed's `TaskFilter` as JSON text (text on both databases, so the two store
//! it alike). `content_etag` and `content_changed_at` remember the body last served and when
//! it last changed, the feed's `Last-Modified`. Revoking a feed deletes its row; deleting a
//! user deletes their feeds (`fk_calendar_feeds_owner`). `ix_calendar_feeds_owner_created`
//! serves the owner's list, oldest first.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "calendar_feeds";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on both databases (sea-orm-migration uses none on SQLite by default):
    /// the table, its indexes and the migration's record commit together or not at all.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(uuid("id"))
                    .col(string_len("owner_id", 255))
                    .col(text("name"))
                    .col(string_len("secret_hash", 64))
                    .col(text_null("filter"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(string_len_null("content_etag", 80))
                    .col(timestamp_with_time_zone_null("content_changed_at"))
                    .primary_key(Index::create().name("pk_calendar_feeds").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_calendar_feeds_owner")
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
                    .name("uq_calendar_feeds_secret_hash")
                    .table(TABLE)
                    .col("secret_hash")
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_calendar_feeds_owner_created")
                    .table(TABLE)
                    .col("owner_id")
                    .col("created_at")
                    .col("id")
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TABLE).take()).await
    }
}
