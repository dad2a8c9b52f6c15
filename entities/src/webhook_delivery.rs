//! `webhook_deliveries`: one webhook POST of one notification event, with its retry state and
//! the outcome of its latest attempt (the delivery log).

use sea_orm::entity::prelude::*;

text_enum! {
    /// Where a delivery is: `webhook_deliveries.status` (`ck_webhook_deliveries_status`).
    pub enum DeliveryStatus("webhook delivery status") {
        /// Waiting for its next attempt (`next_attempt_at`).
        Pending = "PENDING",
        /// The receiver answered 2xx.
        Delivered = "DELIVERED",
        /// Given up: the last attempt failed or the failure cannot be retried; parked as a dead
        /// letter.
        Failed = "FAILED",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The id of the event sent (a `taskstream.notification.created`); unique.
    #[sea_orm(unique)]
    pub event_id: Uuid,
    pub owner_id: String,
    pub notification_id: Option<Uuid>,
    /// The user's webhook URL when the event arrived.
    pub url: String,
    /// The exact bytes sent and signed: the CloudEvent as it is on the log.
    pub body: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    /// The source record's headers as a JSON object (copied to the dead letter); read with
    /// [`crate::outbox::decode_headers`].
    pub source_headers: String,
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// The HTTP status of the latest answer, if there was one.
    pub last_status_code: Option<i32>,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
