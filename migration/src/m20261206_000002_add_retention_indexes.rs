//! Adds the indexes the retention loop (`graphql::retention`, `stream::retention`) needs so
//! that each of its batches is an index range scan, not a full table scan:
//! - `ix_outbox_topic_id`: the embedded log's rows of one topic in id order (pruning below
//!   the slowest consumer; it also serves the embedded reader's per-topic end and fetch);
//! - `ix_outbox_published`: published rows by publication time (distributed mode), partial
//!   so pending rows are not in it;
//! - `ix_processed_events_processed_at`, `ix_webhook_deliveries_status_updated`,
//!   `ix_dead_letters_status_updated`, `ix_notifications_read`: each table's age column.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(name, table, columns)` of the plain indexes.
const INDEXES: [(&str, &str, &[&str]); 5] = [
    ("ix_outbox_topic_id", "outbox", &["topic", "id"]),
    (
        "ix_processed_events_processed_at",
        "processed_events",
        &["processed_at"],
    ),
    (
        "ix_webhook_deliveries_status_updated",
        "webhook_deliveries",
        &["status", "updated_at"],
    ),
    (
        "ix_dead_letters_status_updated",
        "dead_letters",
        &["status", "updated_at"],
    ),
    ("ix_notifications_read", "notifications", &["read_at"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.take()).await?;
        }
        // Partial, like `ix_outbox_pending`: written once per row, when it is published.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_outbox_published ON outbox (published_at) \
                 WHERE published_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_outbox_published")
            .await?;
        for (name, table, _) in INDEXES.iter().rev() {
            manager
                .drop_index(Index::drop().name(*name).table(*table).to_owned())
                .await?;
        }
        Ok(())
    }
}
