//! Search, title sort and date precision through the GraphQL API, with every expected answer
//! stated explicitly. Each test runs on SQLite and on PostgreSQL against the same
//! expectations, so the two databases give exactly the same answers.

use serde_json::{Value, json};

use super::*;

const USER: &str = "alice";

/// The search corpus: (label, title, description).
const CORPUS: &[(&str, &str, &str)] = &[
    ("water", "Water the plants", "Every morning"),
    ("tomato", "Plant tomatoes", "greenhouse, row 3"),
    ("salt", "Salt and pepper", ""),
    ("cafe", "Café au lait", ""),
    ("menu", "CAFÉ MENU", "print the new one"),
    ("meet", "Meet at the cafe", ""),
    ("strasse", "Straße cleaning", ""),
    ("signs", "STRASSE signs", ""),
    ("mail", "Reply to e-mail", ""),
    ("email", "Email Bob", "about Bob's keys"),
    ("dont", "Don't forget", ""),
    ("tokyo", "東京タワーに行く", ""),
    ("kyoto", "京都の寺", ""),
    ("party", "🎉 Party planning 🎂", ""),
    ("passport", "Renew passport", "expires 2026-03-31"),
    ("release", "v2.0 release notes", ""),
    ("schedule", "Watering schedule", ""),
    ("groceries", "Buy milk, eggs & bread!", ""),
];

/// Creates the corpus through `createTask`; returns label by task id.
async fn create_corpus(app: &support::TestApp) -> HashMap<String, &'static str> {
    let mut labels = HashMap::new();
    for (label, title, description) in CORPUS {
        let task = app
            .create_task(USER, json!({ "title": title, "description": description }))
            .await;
        labels.insert(task["id"].as_str().unwrap().to_owned(), *label);
    }
    labels
}

/// The labels of the tasks `search` finds (sorted), checking that `totalCount` agrees.
async fn found(
    app: &support::TestApp,
    labels: &HashMap<String, &'static str>,
    search: &str,
) -> Vec<&'static str> {
    let data = app
        .ok(
            USER,
            "query($s: String) { tasks(search: $s, first: 100) { totalCount nodes { id } } }",
            json!({ "s": search }),
        )
        .await;
    let mut found: Vec<&'static str> = data["tasks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| labels[n["id"].as_str().unwrap()])
        .collect();
    assert_eq!(
        data["tasks"]["totalCount"].as_u64().unwrap(),
        found.len() as u64,
        "totalCount for {search:?}"
    );
    found.sort_unstable();
    found
}

on_both_databases!(search_gives_these_exact_matches_on_every_database, |t| {
    let app = support::TestApp::on(t);
    let labels = create_corpus(&app).await;
    let cases: &[(&str, &[&str])] = &[
        // Stop words are words like any other.
        ("the", &["meet", "menu", "water"]),
        ("the plants", &["water"]),
        ("plants", &["tomato", "water"]),
        ("and", &["salt"]),
        ("salt AND pepper", &["salt"]),
        // Accents and case.
        ("cafe", &["cafe", "meet", "menu"]),
        ("CAFÉ", &["cafe", "meet", "menu"]),
        ("Cafe\u{301}", &["cafe", "meet", "menu"]),
        ("cafés", &["cafe", "meet", "menu"]),
        ("menu CAFE", &["menu"]),
        // ß is ss.
        ("STRASSE", &["signs", "strasse"]),
        ("straße", &["signs", "strasse"]),
        ("strasse", &["signs", "strasse"]),
        // Punctuation, hyphens and apostrophes separate words.
        ("e-mail", &["mail"]),
        ("mail", &["mail"]),
        ("email", &["email"]),
        ("bob's", &["email"]),
        ("bob", &["email"]),
        ("don't", &["dont"]),
        ("dont", &[]),
        ("bread!!", &["groceries"]),
        ("(milk) eggs?", &["groceries"]),
        // Each Han or kana character is a word; all must occur.
        ("東京", &["tokyo"]),
        ("京", &["kyoto", "tokyo"]),
        ("京都", &["kyoto"]),
        ("タワー", &["tokyo"]),
        // Emoji are not words: a search of emoji only matches nothing.
        ("🎉", &[]),
        ("party 🎉", &["party"]),
        // Digits.
        ("2026", &["passport"]),
        ("2026-03-31", &["passport"]),
        ("v2.0", &["release"]),
        ("2", &[]),
        // English stems: every form of a word finds every other.
        ("watering", &["schedule", "water"]),
        ("WATERS", &["schedule", "water"]),
        ("plant", &["tomato", "water"]),
        ("releases", &["release"]),
        // Every word must match; whole words only, no prefixes.
        ("water schedule", &["schedule"]),
        ("water bread", &[]),
        ("pass", &[]),
        ("passport", &["passport"]),
        // Full-text syntax is only ever words.
        ("water & !plants | tomato:*", &[]),
        ("'water' \"plants\"", &["water"]),
        // A word too long to be indexed finds nothing.
        (&"w".repeat(101), &[]),
    ];
    for (search, expected) in cases {
        assert_eq!(
            found(&app, &labels, search).await,
            *expected,
            "search {search:?}"
        );
    }

    // Writes keep the stored words in step: a new title, then a new description.
    let salt = labels
        .iter()
        .find(|(_, l)| **l == "salt")
        .unwrap()
        .0
        .clone();
    let update = "mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }";
    app.ok(
        USER,
        update,
        json!({ "id": salt, "input": { "title": "Salt and vinegar" } }),
    )
    .await;
    assert_eq!(found(&app, &labels, "pepper").await, Vec::<&str>::new());
    assert_eq!(found(&app, &labels, "vinegar salt").await, ["salt"]);
    app.ok(
        USER,
        update,
        json!({ "id": salt, "input": { "description": "Crème brûlée" } }),
    )
    .await;
    assert_eq!(found(&app, &labels, "creme BRULEE").await, ["salt"]);
    assert_eq!(found(&app, &labels, "vinegar").await, ["salt"]);
});

/// Titles of one page of `tasks(sort: TITLE <direction>, ...)`, and its cursors.
async fn title_page(
    app: &support::TestApp,
    direction: &str,
    paging: &str,
) -> (Vec<String>, Option<String>, Option<String>, bool, bool) {
    let data = app
        .ok(
            USER,
            &format!(
                "{{ tasks(sort: [{{ field: TITLE, direction: {direction} }}], {paging}) {{
                    nodes {{ title }}
                    pageInfo {{ startCursor endCursor hasNextPage hasPreviousPage }}
                }} }}"
            ),
            json!({}),
        )
        .await;
    let tasks = &data["tasks"];
    let titles = tasks["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect();
    let info = &tasks["pageInfo"];
    let cursor = |v: &Value| v.as_str().map(str::to_owned);
    (
        titles,
        cursor(&info["startCursor"]),
        cursor(&info["endCursor"]),
        info["hasNextPage"].as_bool().unwrap(),
        info["hasPreviousPage"].as_bool().unwrap(),
    )
}

on_both_databases!(
    title_sort_ignores_case_and_accents_beyond_ascii_when_paging_both_ways,
    |t| {
        let app = support::TestApp::on(t);
        let mut ids = HashMap::new();
        for title in ["Zebra", "émile", "Eve", "Äb", "äa", "Émile"] {
            let task = app.create_task(USER, json!({ "title": title })).await;
            let id = Uuid::parse_str(task["id"].as_str().unwrap()).unwrap();
            ids.insert(title.to_owned(), id);
        }
        // "émile" and "Émile" have the same key: the id decides, in the sort's direction.
        let [tie1, tie2] = if ids["émile"] < ids["Émile"] {
            ["émile", "Émile"]
        } else {
            ["Émile", "émile"]
        };
        let ascending = ["äa", "Äb", tie1, tie2, "Eve", "Zebra"];

        let (all, ..) = title_page(&app, "ASC", "first: 10").await;
        assert_eq!(all, ascending);
        let (all, ..) = title_page(&app, "DESC", "first: 10").await;
        let mut descending = ascending;
        descending.reverse();
        assert_eq!(all, descending);

        // Forward in pages of 3 (the tie straddles the pages), then backward from the end.
        let (page, _, end, next, previous) = title_page(&app, "ASC", "first: 3").await;
        assert_eq!(page, ascending[..3]);
        assert!(next && !previous);
        let after = format!("first: 3, after: {:?}", end.unwrap());
        let (page, start, _, next, previous) = title_page(&app, "ASC", &after).await;
        assert_eq!(page, ascending[3..]);
        assert!(!next && previous);
        let before = format!("last: 3, before: {:?}", start.unwrap());
        let (page, ..) = title_page(&app, "ASC", &before).await;
        assert_eq!(page, ascending[..3]);

        let (page, start, _, next, previous) = title_page(&app, "ASC", "last: 2").await;
        assert_eq!(page, ascending[4..]);
        assert!(!next && previous);
        let before = format!("last: 2, before: {:?}", start.unwrap());
        let (page, start, ..) = title_page(&app, "ASC", &before).await;
        assert_eq!(page, ascending[2..4]);
        let before = format!("last: 2, before: {:?}", start.unwrap());
        let (page, _, _, _, previous) = title_page(&app, "ASC", &before).await;
        assert_eq!(page, ascending[..2]);
        assert!(!previous);

        // Descending, forward over the tie.
        let (page, _, end, ..) = title_page(&app, "DESC", "first: 3").await;
        assert_eq!(page, descending[..3]);
        let after = format!("first: 3, after: {:?}", end.unwrap());
        let (page, ..) = title_page(&app, "DESC", &after).await;
        assert_eq!(page, descending[3..]);

        // Not a language's collation: every character by code point, the same on both
        // databases (whatever PostgreSQL's own collation is).
        for title in ["Ωmega", "ac", "a-c", "9 items", "10 items"] {
            app.create_task(USER, json!({ "title": title })).await;
        }
        let (all, ..) = title_page(&app, "ASC", "first: 20").await;
        assert_eq!(
            all,
            [
                "10 items", "9 items", "a-c", "äa", "Äb", "ac", tie1, tie2, "Eve", "Zebra", "Ωmega"
            ]
        );
    }
);

/// The first error's `extensions.code` and `extensions.field` for `tasks(filter: <filter>)`.
async fn filter_error(app: &support::TestApp, filter: &str) -> (String, Option<String>) {
    app.error_field(
        USER,
        &format!("{{ tasks(filter: {filter}) {{ totalCount }} }}"),
    )
    .await
}

on_both_databases!(
    due_date_bounds_finer_than_a_microsecond_are_rejected_by_path,
    |t| {
        let app = support::TestApp::on(t);
        app.create_task(
            USER,
            json!({ "title": "precise", "dueAt": "2030-01-01T00:00:00.500001Z" }),
        )
        .await;
        for (filter, field) in [
            (
                r#"{ dueAfter: "2030-01-01T00:00:00.5000001Z" }"#,
                "filter.dueAfter",
            ),
            (
                r#"{ dueBefore: "2030-01-01T00:00:00.500001001Z" }"#,
                "filter.dueBefore",
            ),
            (
                r#"{ or: [{ completed: true }, { dueBefore: "2030-01-01T00:00:00.000000001Z" }] }"#,
                "filter.or[1].dueBefore",
            ),
            (
                r#"{ and: [{ not: { dueAfter: "2030-01-01T00:00:00.9999999Z" } }] }"#,
                "filter.and[0].not.dueAfter",
            ),
        ] {
            assert_eq!(
                filter_error(&app, filter).await,
                ("BAD_USER_INPUT".to_owned(), Some(field.to_owned())),
                "{filter}"
            );
        }

        // Whole microseconds are accepted and compare exactly.
        let precise = vec!["precise".to_owned()];
        let none: Vec<String> = Vec::new();
        for (filter, expected) in [
            (r#"{ dueAfter: "2030-01-01T00:00:00.500001Z" }"#, &precise),
            (r#"{ dueAfter: "2030-01-01T00:00:00.500002Z" }"#, &none),
            (r#"{ dueAfter: "2030-01-01T00:00:00.5Z" }"#, &precise),
            (r#"{ dueBefore: "2030-01-01T00:00:00.500001Z" }"#, &none),
            (r#"{ dueBefore: "2030-01-01T00:00:00.500001000Z" }"#, &none),
            (r#"{ dueBefore: "2030-01-01T00:00:00.500002Z" }"#, &precise),
            (
                r#"{ or: [{ completed: true }, { dueBefore: "2030-01-01T00:00:01Z" }] }"#,
                &precise,
            ),
        ] {
            assert_eq!(
                &app.titles(USER, &format!("filter: {filter}")).await,
                expected,
                "{filter}"
            );
        }
    }
);

on_both_databases!(
    the_next_occurrence_of_a_recurring_task_is_found_and_sorted_like_it,
    |t| {
        use subscribers::recurrence::{CONSUMER, RecurrenceHandler};
        let app = support::TestApp::on(t);
        let first = app
            .create_task(
                USER,
                json!({
                    "title": "Émile's Café plants",
                    "description": "Watering day",
                    "dueAt": "2030-01-02T09:00:00Z",
                    "recurrence": { "rule": "FREQ=DAILY", "timezone": "UTC" },
                }),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.create_task(USER, json!({ "title": "eve" })).await;
        app.ok(
            USER,
            "mutation($id: ID!) { completeTask(id: $id) { id } }",
            json!({ "id": first }),
        )
        .await;
        // The subscriber inserts the successor itself (no `before_save`).
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let consumer = support::RunningConsumer::start(
            &t.db,
            RecurrenceHandler::new(subscribers::Clock::Fixed(now)),
            stream::topics::TASK_EVENTS,
        );
        support::wait_caught_up(&t.db, CONSUMER, stream::topics::TASK_EVENTS).await;
        consumer.stop().await;
        let first_id = Uuid::parse_str(&first).unwrap();
        let next = task::Entity::find()
            .filter(task::Column::GeneratedFromTaskId.eq(first_id))
            .one(&t.db)
            .await
            .unwrap()
            .expect("the next occurrence exists");

        let labels = HashMap::from([(first.clone(), "first"), (next.id.to_string(), "next")]);
        assert_eq!(found(&app, &labels, "emile CAFE").await, ["first", "next"]);
        assert_eq!(found(&app, &labels, "water plant").await, ["first", "next"]);
        let (titles, ..) = title_page(&app, "ASC", "first: 10").await;
        assert_eq!(
            titles,
            ["Émile's Café plants", "Émile's Café plants", "eve"]
        );
    }
);

// A page loads its tasks' tags together with the page when the selection asks for them; every
// way of selecting them gives what `task(id)` (the batch loader) gives: the tags by name, an
// empty list for a task without tags, and nothing else's.
on_both_databases!(
    page_tags_match_the_single_task_answer_however_selected,
    |t| {
        let app = support::TestApp::on(t);
        let tagged = app
            .create_task(
                USER,
                json!({ "title": "tagged", "tags": ["zeta", "Alpha", "mid"] }),
            )
            .await;
        let bare = app.create_task(USER, json!({ "title": "bare" })).await;
        app.create_task(
            "mallory",
            json!({ "title": "other", "tags": ["alpha", "secret"] }),
        )
        .await;
        let single = |id: &Value| {
            let id = id.as_str().unwrap().to_owned();
            let app = &app;
            async move {
                app.ok(
                    USER,
                    "query($id: ID!) { task(id: $id) { tags { name } } }",
                    json!({ "id": id }),
                )
                .await["task"]["tags"]
                    .clone()
            }
        };
        let expected = json!([
            { "id": bare["id"], "tags": single(&bare["id"]).await },
            { "id": tagged["id"], "tags": single(&tagged["id"]).await },
        ]);
        assert_eq!(
            expected[1]["tags"],
            json!([{ "name": "Alpha" }, { "name": "mid" }, { "name": "zeta" }])
        );
        assert_eq!(expected[0]["tags"], json!([]));
        let documents = [
            "{ tasks(sort: [{ field: TITLE }]) { nodes { id tags { name } } } }",
            "{ tasks(sort: [{ field: TITLE }]) { edges { node { id tags { name } } } } }",
            "{ tasks(sort: [{ field: TITLE }]) { edges { node { ...T } } } } \
         fragment T on Task { id tags { name } }",
            "{ tasks(sort: [{ field: TITLE }]) { edges { ... on TaskEdge { node { id labels: tags { name } } } } } }",
            // Tags selected under `nodes` only, with `edges` selected too.
            "{ tasks(sort: [{ field: TITLE }]) { edges { cursor } nodes { id tags { name } } } }",
        ];
        for document in documents {
            let data = app.ok(USER, document, json!({})).await;
            let conn = &data["tasks"];
            let nodes: Vec<Value> = if conn["nodes"].is_array() {
                conn["nodes"].as_array().unwrap().clone()
            } else {
                conn["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["node"].clone())
                    .collect()
            };
            let nodes: Vec<Value> = nodes
            .into_iter()
            .map(|n| json!({ "id": n["id"], "tags": n.get("tags").or(n.get("labels")).unwrap() }))
            .collect();
            assert_eq!(Value::Array(nodes), expected, "{document}");
        }
    }
);

// A selection of only `totalCount` reads no page, but its arguments are checked as for a page:
// the same count as beside a page, and the same errors naming the argument.
on_both_databases!(
    total_count_alone_counts_the_same_and_refuses_the_same_arguments,
    |t| {
        let app = support::TestApp::on(t);
        for (title, priority) in [("a", "HIGH"), ("b", "LOW"), ("c", "URGENT"), ("d", "HIGH")] {
            app.create_task(USER, json!({ "title": title, "priority": priority }))
                .await;
        }
        let filter = "filter: { minPriority: HIGH }";
        let alone = app
            .ok(
                USER,
                &format!("{{ tasks({filter}) {{ totalCount }} }}"),
                json!({}),
            )
            .await;
        let with_page = app
        .ok(
            USER,
            &format!("{{ tasks({filter}, first: 1) {{ totalCount nodes {{ id }} pageInfo {{ endCursor }} }} }}"),
            json!({}),
        )
        .await;
        assert_eq!(alone["tasks"]["totalCount"], json!(3));
        assert_eq!(with_page["tasks"]["totalCount"], json!(3));
        let cursor = with_page["tasks"]["pageInfo"]["endCursor"]
            .as_str()
            .unwrap();
        // A cursor of this sort is accepted, one of another sort is not, nor a forged one.
        app.ok(
            USER,
            &format!("{{ tasks({filter}, after: \"{cursor}\") {{ totalCount }} }}"),
            json!({}),
        )
        .await;
        for (arguments, field) in [
            (
                format!("after: \"{cursor}\", sort: [{{ field: TITLE }}]"),
                "after",
            ),
            ("after: \"not-a-cursor\"".to_owned(), "after"),
            ("first: 0".to_owned(), "first"),
            ("first: 1, last: 1".to_owned(), "last"),
            ("sort: [{ field: RELEVANCE }]".to_owned(), "sort[0]"),
        ] {
            let (code, message) = app
                .err(
                    USER,
                    &format!("{{ tasks({arguments}) {{ totalCount }} }}"),
                    json!({}),
                )
                .await;
            assert_eq!(code, "BAD_USER_INPUT", "{arguments}: {message}");
            let (_, named) = app
                .error_field(USER, &format!("{{ tasks({arguments}) {{ totalCount }} }}"))
                .await;
            assert_eq!(named.as_deref(), Some(field), "{arguments}: {message}");
        }
    }
);
