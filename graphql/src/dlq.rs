//! `taskstream dlq list|show|replay|discard`: the operator's view of dead letters, the records
//! a consumer gave up on (see `stream::dead_letters`).

use sea_orm::DatabaseConnection;
use stream::dead_letters::{self, DeadLetterStatus, ReplayOutcome};
use subscribers::registry::{Subscriber, SubscriberSettings};

use crate::config::DlqCommand;

/// Runs one `dlq` command, printing JSON (one object per line for `list`).
pub async fn run(db: &DatabaseConnection, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { status, limit } => {
            let status = status.map(|s| s.parse::<DeadLetterStatus>()).transpose()?;
            for row in dead_letters::list(db, status, limit).await? {
                println!("{}", summary(&row));
            }
        }
        DlqCommand::Show { id } => {
            let row = dead_letters::show(db, id).await?;
            let mut value = summary(&row);
            value["payload"] = serde_json::from_str(&row.payload)
                .unwrap_or(serde_json::Value::String(row.payload.clone()));
            value["headers"] =
                serde_json::from_str(&row.headers).unwrap_or(serde_json::Value::Null);
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        DlqCommand::Discard { id } => {
            let row = dead_letters::discard(db, id).await?;
            println!("{}", summary(&row));
        }
        DlqCommand::Replay { id } => {
            let row = dead_letters::show(db, id).await?;
            let outcome = replay_with_registered_handler(db, id, &row.consumer).await?;
            let word = match outcome {
                ReplayOutcome::Applied => "applied",
                ReplayOutcome::AlreadyProcessed => "already processed (nothing applied)",
            };
            println!("dead letter {id} replayed through {}: {word}", row.consumer);
        }
    }
    Ok(())
}

/// Replays through the handler of the consumer that parked the record: a subscriber of the
/// registry ([`Subscriber::named`]).
async fn replay_with_registered_handler(
    db: &DatabaseConnection,
    id: i64,
    consumer: &str,
) -> anyhow::Result<ReplayOutcome> {
    let Some(subscriber) = Subscriber::named(consumer) else {
        anyhow::bail!(
            "dead letter {id} belongs to consumer {consumer:?}, which is not built into this \
             binary; nothing was replayed"
        );
    };
    let handler = subscriber.handler(&SubscriberSettings::default());
    Ok(dead_letters::replay(db, id, &handler).await?)
}

fn summary(row: &entities::dead_letter::Model) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "status": row.status,
        "consumer": row.consumer,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "eventId": row.event_id,
        "key": row.key,
        "attempts": row.attempts,
        "error": row.error,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    })
}
