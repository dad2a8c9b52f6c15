//! `outbox`: events written in the same transaction as the change they describe; the relay
//! (or, in embedded mode, the consumers themselves) reads them in id order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The CloudEvent `id`; unique, so consumers can dedupe.
    #[sea_orm(unique)]
    pub event_id: Uuid,
    pub topic: String,
    /// Record key (the task id), which picks the partition.
    pub key: String,
    /// The CloudEvent in structured JSON mode.
    pub payload: String,
    /// Record headers as a JSON object of strings (`ce_*` copies of the attributes).
    pub headers: String,
    pub created_at: DateTimeUtc,
    /// NULL while pending. A per-row flag, never a watermark: ids commit out of order.
    pub published_at: Option<DateTimeUtc>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
