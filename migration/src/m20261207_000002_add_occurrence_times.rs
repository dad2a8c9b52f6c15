//! Adds `tasks.occurrence_local`: the wall-clock time, in the rule's zone, that the recurrence
//! rule gave an occurrence (RFC 5545's RECURRENCE-ID). It differs from the local time of
//! `due_at` only when that time fell in a daylight-saving gap (02:30 on the day clocks skip from
//! 02:00 to 03:00 is due at 03:30), and the next occurrence is computed from it, so a series
//! keeps its wall-clock time after such a day. NULL means "the local time of `due_at`", which
//! is what every row written before this migration had.
//!
//! Adds `tasks.series_start_local`: the wall-clock time the series started at (its DTSTART).
//! A rule with `BYSETPOS` picks positions within each period of the rule, and the first period
//! is cut at DTSTART, so such a rule is expanded from the series' start rather than from the
//! occurrence at hand. NULL means "this occurrence started its series".

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    OccurrenceLocal,
    SeriesStartLocal,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tasks::OccurrenceLocal, Tasks::SeriesStartLocal] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tasks::Table)
                        .add_column(ColumnDef::new(column).date_time().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tasks::SeriesStartLocal, Tasks::OccurrenceLocal] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tasks::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
