//! `schema.graphql` at the repository root is the SDL exported from the code. This test fails
//! when they differ; run it with `UPDATE_SCHEMA=1` to rewrite the file after a deliberate change.
#![allow(clippy::unwrap_used)]

#[test]
fn schema_graphql_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let sdl = graphql::schema::sdl();
    if std::env::var("UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(&path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test -p graphql --test schema_drift` and commit it"
    );
}

#[test]
fn schema_keeps_the_public_contract_names() {
    let sdl = graphql::schema::sdl();
    for name in [
        "enum Priority",
        "enum RecurrenceAnchor",
        "enum SortDirection",
        "enum TaskSortField",
        "enum ReminderStatus",
        "type Task ",
        "type Recurrence ",
        "type Reminder ",
        "type Tag ",
        "type User ",
        "type PageInfo ",
        "type TaskEdge ",
        "type TaskConnection ",
        "input TagMatch ",
        "input TaskFilter ",
        "input TaskSort ",
        "input RecurrenceInput ",
        "input ReminderInput ",
        "input CreateTaskInput ",
        "input UpdateTaskInput ",
        "input SettingsInput ",
        "createTask(input: CreateTaskInput!): Task!",
        "updateTask(id: ID!, input: UpdateTaskInput!): Task!",
        "deleteTask(id: ID!): ID!",
        "tagTask(taskId: ID!, tags: [String!]!): Task!",
        "updateSettings(input: SettingsInput!): User!",
        "tasks(filter: TaskFilter, search: String, sort: [TaskSort!], first: Int, after: String, last: Int, before: String): TaskConnection!",
        "upcoming(count: Int = 5): [DateTime!]!",
        "type CalendarFeed ",
        "calendarFeeds: [CalendarFeed!]!",
        "createCalendarFeed(name: String!, filter: TaskFilter): CalendarFeed!",
        "revokeCalendarFeed(id: ID!): ID!",
    ] {
        assert!(sdl.contains(name), "schema lost `{name}`");
    }
}
