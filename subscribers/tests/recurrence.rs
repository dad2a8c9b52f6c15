//! The recurrence handler in the shared consumer runtime over the embedded log, on SQLite and
//! PostgreSQL, without the gateway (the GraphQL-driven end-to-end tests are in
//! `graphql/tests/recurrence.rs`).
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use stream::topics::TASK_EVENTS;
use subscribers::Clock;
use subscribers::recurrence::{CONSUMER, RecurrenceHandler};
use testkit::{RunningConsumer, insert_raw, on_both_databases, wait_caught_up};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

on_both_databases!(a_poison_record_is_parked_and_the_consumer_moves_on, |t| {
    let running = RunningConsumer::start(
        &t.db,
        RecurrenceHandler::new(Clock::Fixed(at("2030-01-07T10:00:00Z"))),
        TASK_EVENTS,
    );
    let headers = serde_json::json!({ "ce_id": uuid::Uuid::now_v7().to_string() }).to_string();
    insert_raw(
        &t.db,
        TASK_EVENTS,
        "poison",
        &headers,
        "this is not a CloudEvent",
    )
    .await;
    wait_caught_up(&t.db, CONSUMER, TASK_EVENTS).await;

    let parked = entities::dead_letter::Entity::find()
        .filter(entities::dead_letter::Column::Consumer.eq(CONSUMER))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].topic, TASK_EVENTS);
    assert_eq!(parked[0].payload, "this is not a CloudEvent");
    assert_eq!(
        entities::task::Entity::find().count(&t.db).await.unwrap(),
        0
    );
    running.stop().await;
});
