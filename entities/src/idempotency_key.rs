//! `idempotency_keys`: the `Idempotency-Key` of a mutation per owner, the hash of the request
//! it was first used with, its state and the response a retry gets back.

use sea_orm::entity::prelude::*;

/// Where the first request with a key got to. Stored as text under `ck_idempotency_keys_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum IdempotencyState {
    /// Claimed; the mutation is running.
    #[sea_orm(string_value = "IN_PROGRESS")]
    InProgress,
    /// Finished; `response` holds what it returned.
    #[sea_orm(string_value = "DONE")]
    Done,
    /// Cut off (timeout, or the process stopped) after it may have written: its outcome is
    /// unknown, and a retry with the key is refused rather than run again.
    #[sea_orm(string_value = "UNKNOWN")]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 (hex) of the request's query, operation name and variables.
    pub request_hash: String,
    pub state: IdempotencyState,
    /// The GraphQL response (JSON) once `state` is DONE.
    pub response: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
