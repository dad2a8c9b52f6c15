//! Adds `notifications.due_at` and `notifications.remind_at`: the task's due date when the
//! reminder fired (null if it had none) and the time the reminder was set for, so clients can
//! word a notification in their own time zone. Both are null for notifications created before
//! this migration.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "notifications";
const COLUMNS: [&str; 2] = ["due_at", "remind_at"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(TABLE)
                        .add_column(timestamp_with_time_zone_null(column))
                        .take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager
                .alter_table(Table::alter().table(TABLE).drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
