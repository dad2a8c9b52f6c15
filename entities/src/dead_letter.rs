//! `dead_letters`: records a consumer gave up on, kept for inspection, replay or discard.

use sea_orm::entity::prelude::*;

text_enum! {
    /// Where a dead letter is in its life: parked by a consumer, then replayed or discarded by
    /// an operator. `dead_letters.status` (`ck_dead_letters_status`).
    pub enum DeadLetterStatus("dead-letter status") {
        Parked = "PARKED",
        Replayed = "REPLAYED",
        Discarded = "DISCARDED",
    }
}

/// Case-insensitive, for command-line flags.
impl std::str::FromStr for DeadLetterStatus {
    type Err = crate::UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeadLetterStatus::ALL
            .iter()
            .copied()
            .find(|status| status.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DeadLetterStatus::unknown(s))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letters")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub consumer: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event_id: Option<Uuid>,
    pub key: Option<String>,
    pub payload: String,
    /// The record's headers as a JSON object of strings; read with
    /// [`crate::outbox::decode_headers`].
    pub headers: String,
    pub error: String,
    pub attempts: i32,
    pub status: DeadLetterStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
