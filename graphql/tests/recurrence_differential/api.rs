//! The API calls the differential test makes, through `TestApp` (the schema, no HTTP): each
//! answers its result or the request's first error.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::oracle::Case;
use crate::support::TestApp;

/// The user every case runs as.
const USER: &str = "differential";

const PREVIEW: &str = "query($recurrence: RecurrenceInput!, $dueAt: DateTime!, $count: Int) { \
    previewRecurrence(recurrence: $recurrence, dueAt: $dueAt, count: $count) }";
const CREATE: &str = "mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }";
const UPCOMING: &str =
    "query($id: ID!, $count: Int) { task(id: $id) { recurrence { upcoming(count: $count) } } }";
const COMPLETE: &str = "mutation($id: ID!) { completeTask(id: $id) { id } }";
const NEXT: &str = "query($id: ID!) { task(id: $id) { nextOccurrence { id dueAt } } }";

/// A request's first error: `extensions.code`, `extensions.field` and the message.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = self.field.as_deref().unwrap_or("no field");
        write!(f, "{} ({field}): {}", self.code, self.message)
    }
}

pub type Answer<T> = Result<T, Refusal>;

async fn call(app: &TestApp, query: &str, variables: Value) -> Answer<Value> {
    let response = app.exec(USER, query, variables).await;
    let Some(err) = response.errors.first() else {
        return Ok(response.data.into_json().unwrap());
    };
    let extension = |key: &str| {
        err.extensions
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(|v| v.clone().into_json().ok())
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    Err(Refusal {
        code: extension("code").unwrap_or_default(),
        field: extension("field"),
        message: err.message.clone(),
    })
}

fn date(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn dates(value: &Value) -> Vec<DateTime<Utc>> {
    value.as_array().unwrap().iter().map(date).collect()
}

fn uuid(value: &Value) -> Uuid {
    Uuid::parse_str(value.as_str().unwrap()).unwrap()
}

fn recurrence(case: &Case) -> Value {
    json!({ "rule": case.rule, "timezone": case.zone, "anchor": "SCHEDULE" })
}

/// `previewRecurrence(recurrence, dueAt, count)` of the case.
pub async fn preview(app: &TestApp, case: &Case) -> Answer<Vec<DateTime<Utc>>> {
    let variables = json!({
        "recurrence": { "rule": case.rule, "timezone": case.zone },
        "dueAt": case.due_at,
        "count": case.count,
    });
    let data = call(app, PREVIEW, variables).await?;
    Ok(dates(&data["previewRecurrence"]))
}

/// `createTask` with the case's due date and recurrence (anchor SCHEDULE); the new task's id.
pub async fn create(app: &TestApp, case: &Case) -> Answer<Uuid> {
    let input = json!({
        "title": format!("Differential case {}", case.id),
        "dueAt": case.due_at,
        "recurrence": recurrence(case),
    });
    let data = call(app, CREATE, json!({ "input": input })).await?;
    Ok(uuid(&data["createTask"]["id"]))
}

/// `task(id).recurrence.upcoming(count)`.
pub async fn upcoming(app: &TestApp, id: Uuid, count: usize) -> Answer<Vec<DateTime<Utc>>> {
    let data = call(app, UPCOMING, json!({ "id": id, "count": count })).await?;
    Ok(dates(&data["task"]["recurrence"]["upcoming"]))
}

/// `completeTask(id)`.
pub async fn complete(app: &TestApp, id: Uuid) -> Answer<()> {
    call(app, COMPLETE, json!({ "id": id })).await.map(|_| ())
}

/// `task(id).nextOccurrence`: the successor's id and due date, if there is one.
pub async fn next_occurrence(app: &TestApp, id: Uuid) -> Answer<Option<(Uuid, DateTime<Utc>)>> {
    let data = call(app, NEXT, json!({ "id": id })).await?;
    let next = &data["task"]["nextOccurrence"];
    Ok((!next.is_null()).then(|| (uuid(&next["id"]), date(&next["dueAt"]))))
}
