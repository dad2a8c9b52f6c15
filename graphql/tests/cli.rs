//! The operator commands behind `taskstream dlq ...` and `taskstream events tail`, run against
//! a real database (their output goes to stdout; here we check their effects and errors).
#![allow(clippy::unwrap_used)]

mod support;

use chrono::Utc;
use graphql::config::DlqCommand;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;
use support::TestApp;

async fn park(db: &sea_orm::DatabaseConnection, consumer: &str) -> i64 {
    entities::dead_letter::ActiveModel {
        consumer: Set(consumer.into()),
        topic: Set("task-events".into()),
        partition: Set(0),
        offset: Set(7),
        event_id: Set(Some(uuid::Uuid::now_v7())),
        key: Set(Some("k".into())),
        payload: Set("{\"not\":\"a cloudevent\"}".into()),
        headers: Set("{}".into()),
        error: Set("payload is not a CloudEvent".into()),
        attempts: Set(1),
        status: Set(entities::dead_letter::DeadLetterStatus::Parked),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

on_both_databases!(dlq_commands_list_show_discard_and_refuse_bad_input, |t| {
    let id = park(&t.db, "recurrence").await;
    let foreign = park(&t.db, "someone-else").await;
    graphql::dlq::run(
        &t.db,
        DlqCommand::List {
            status: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    graphql::dlq::run(
        &t.db,
        DlqCommand::List {
            status: Some("parked".into()),
            limit: 10,
        },
    )
    .await
    .unwrap();
    graphql::dlq::run(&t.db, DlqCommand::Show { id })
        .await
        .unwrap();

    let err = graphql::dlq::run(
        &t.db,
        DlqCommand::List {
            status: Some("LOST".into()),
            limit: 10,
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("LOST"), "{err}");
    let err = graphql::dlq::run(&t.db, DlqCommand::Show { id: id + 1000 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&(id + 1000).to_string()), "{err}");
    let err = graphql::dlq::run(&t.db, DlqCommand::Replay { id: foreign })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not built into this binary"),
        "{err}"
    );
    // The recurrence handler still refuses the broken payload: the record stays parked.
    let err = graphql::dlq::run(&t.db, DlqCommand::Replay { id })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a CloudEvent"), "{err}");
    let row = entities::dead_letter::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, entities::dead_letter::DeadLetterStatus::Parked);

    graphql::dlq::run(&t.db, DlqCommand::Discard { id })
        .await
        .unwrap();
    let row = entities::dead_letter::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.status,
        entities::dead_letter::DeadLetterStatus::Discarded
    );
    let err = graphql::dlq::run(&t.db, DlqCommand::Discard { id })
        .await
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("discarded"),
        "{err}"
    );
});

on_both_databases!(events_tail_reads_the_embedded_outbox, |t| {
    let app = TestApp::on(t);
    app.create_task("alice", json!({ "title": "Tail me" }))
        .await;
    graphql::events::tail(t.db.clone(), None, "task-events", Some(1), false)
        .await
        .unwrap();
    graphql::events::tail(t.db.clone(), None, "task-updates", None, false)
        .await
        .unwrap();
});
