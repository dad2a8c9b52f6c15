//! Crashed subscribers and several gateways, on PostgreSQL.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_recurrence_and_reminder_binaries_mid_stream_loses_and_duplicates_nothing_on_kafka()
 {
    killing_subscribers_mid_stream(Transport::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_recurrence_and_reminder_binaries_mid_stream_loses_and_duplicates_nothing_on_nats()
 {
    killing_subscribers_mid_stream(Transport::Nats).await;
}

async fn killing_subscribers_mid_stream(transport: Transport) {
    let Some(mut cluster) = Cluster::start(transport).await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let gateway = cluster.start_gateway().await;
    let recurrence = cluster.start_subscriber("recurrence");
    let reminder = cluster.start_subscriber("reminder");
    cluster.start_subscriber("notification");

    // Arrange: 16 daily tasks, and 6 tasks whose reminder fires a few seconds from now.
    let recurring = cluster.create_daily(gateway, 16, "Europe/London").await;
    let fire_at = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    for n in 0..6 {
        cluster
            .graphql(
                gateway,
                "alice",
                "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
                json!({ "i": { "title": format!("remind {n}"), "reminders": [{ "at": fire_at }] } }),
            )
            .await;
    }

    // Act: complete the first half, kill the recurrence binary while it works through them,
    // complete the rest, and bring it back; kill and restart the reminder binary around the
    // moment its reminders are due.
    cluster.complete(gateway, &recurring[..8]).await;
    cluster.subscribers[recurrence].kill();
    cluster.complete(gateway, &recurring[8..]).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // down for a while, as a crash would be
    // While it is down, the lag KEDA would scale it on (the chart's query over the offsets the
    // relay recorded) is what the broker says it has not consumed: at least the 8 completions.
    cluster
        .wait_for_count(
            "unpublished outbox rows",
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
            0,
        )
        .await;
    let behind = cluster
        .behind_on_the_broker("recurrence", stream::topics::TASK_EVENTS)
        .await;
    assert!(
        behind >= 8,
        "the killed recurrence binary is {behind} behind"
    );
    assert_eq!(
        cluster
            .keda_lag("recurrence", stream::topics::TASK_EVENTS)
            .await,
        behind,
        "the KEDA lag query agrees with the broker"
    );
    cluster.subscribers[recurrence] =
        cluster.spawn_subscriber("recurrence", "recurrence (restarted)", &[]);
    cluster.subscribers[reminder].kill();
    tokio::time::sleep(Duration::from_secs(4)).await; // the reminders come due while it is down
    cluster.subscribers[reminder] =
        cluster.spawn_subscriber("reminder", "reminder (restarted)", &[]);

    // Assert: exactly one successor per completed task, one notification per reminder.
    let ids = recurring
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    cluster
        .wait_for_count(
            "next occurrences",
            &format!("SELECT COUNT(*) FROM tasks WHERE generated_from_task_id IN ({ids})"),
            16,
        )
        .await;
    cluster
        .wait_for_count("notifications", "SELECT COUNT(*) FROM notifications", 6)
        .await;
    cluster
        .wait_caught_up("recurrence", stream::topics::TASK_EVENTS)
        .await;
    cluster
        .wait_caught_up("notification", stream::topics::REMINDERS)
        .await;
    for (consumer, topic) in [
        ("recurrence", stream::topics::TASK_EVENTS),
        ("notification", stream::topics::REMINDERS),
    ] {
        assert_eq!(
            cluster.keda_lag(consumer, topic).await,
            0,
            "{consumer} caught up on {topic}: no KEDA lag"
        );
    }
    // Caught up, and still exactly that many: nothing was applied twice.
    assert_eq!(
        cluster
            .scalar(&format!(
                "SELECT COUNT(*) FROM tasks WHERE generated_from_task_id IN ({ids})"
            ))
            .await,
        16
    );
    assert_eq!(
        cluster.scalar("SELECT COUNT(*) FROM notifications").await,
        6
    );
    assert_eq!(
        cluster
            .scalar("SELECT COUNT(*) FROM reminders WHERE status = 'FIRED'")
            .await,
        6
    );
    assert_eq!(cluster.scalar("SELECT COUNT(*) FROM dead_letters").await, 0);
    // Every outbox row reached the broker.
    cluster
        .wait_for_count(
            "unpublished outbox rows",
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
            0,
        )
        .await;
    let data = cluster
        .graphql(
            gateway,
            "alice",
            "query($id: ID!) { task(id: $id) { nextOccurrence { title completed previousOccurrence { id } } } }",
            json!({ "id": recurring[3] }),
        )
        .await;
    assert_eq!(
        data["task"]["nextOccurrence"],
        json!({ "title": "daily 3", "completed": false, "previousOccurrence": { "id": recurring[3] } })
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_through_one_gateway_reaches_a_subscriber_on_another_on_kafka() {
    mutation_reaches_another_gateway(Transport::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_through_one_gateway_reaches_a_subscriber_on_another_on_nats() {
    mutation_reaches_another_gateway(Transport::Nats).await;
}

async fn mutation_reaches_another_gateway(transport: Transport) {
    let Some(mut cluster) = Cluster::start(transport).await else {
        return; // PostgreSQL explicitly skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1).
    };
    let first = cluster.start_gateway().await;
    let second = cluster.start_gateway().await;

    // Arrange: a live subscriber on the second gateway.
    let ws_url = format!(
        "{}/graphql/ws",
        cluster.gateways[second].1.replace("http", "ws")
    );
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let token = cluster.token("alice");
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    socket
        .send(send(json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { taskChanged { kind task { title } } }" } })))
        .await
        .unwrap();

    // Act: retry the mutation until the subscriber sees one (the second gateway's live
    // consumer starts from the log's end, so a change committed before it is ready is history).
    let deadline = tokio::time::Instant::now() + SETTLE;
    let message = loop {
        cluster
            .graphql(
                first,
                "alice",
                r#"mutation { createTask(input: { title: "across gateways" }) { id } }"#,
                json!({}),
            )
            .await;
        match tokio::time::timeout(Duration::from_secs(5), next_json(&mut socket)).await {
            Ok(message) => break message,
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "no change reached the second gateway\n{}",
                cluster.logs()
            ),
        }
    };

    // Assert
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["taskChanged"],
        json!({ "kind": "CREATED", "task": { "title": "across gateways" } })
    );
    cluster.finish().await;
}
