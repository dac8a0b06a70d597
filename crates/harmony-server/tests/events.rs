//! State changes propagating in the cluster: outbox → WAL → relay → `harmony.events.v1` →
//! projector. A poison event is parked in the dead-letter topic and the projector goes on;
//! deleting a chat purges its history; a PostgreSQL restart in the middle of a stream of changes
//! loses no event and keeps each aggregate's order.

use std::time::Duration;

use harmony_core::ports::{EventConsumer, HistoryStore, UserStore};
use harmony_kafka::{KafkaEventCursor, KafkaSettings};
use harmony_postgres::{HistoryDb, StateDb};
use harmony_testkit::cluster::TestCluster;
use harmony_testkit::eventually;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

type R = anyhow::Result<()>;

#[tokio::test]
async fn a_poison_event_is_parked_and_the_projector_goes_on() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;

    // Garbage on the events topic, as a foreign or broken producer would write it.
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.broker.bootstrap())
        .create()?;
    producer
        .send(
            FutureRecord::to("harmony.events.v1")
                .key(&chat)
                .payload("{not an event"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;

    // The projector goes on: a later event still takes effect.
    api.delete(
        &format!("/api/v1/chats/{chat}/members/{}", bob.id),
        &ann.access,
    )
    .await?;
    ws.next_of("member_removed").await?;

    // The record is parked, as it was, in the dead-letter topic.
    let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.broker.bootstrap())
        .set("group.id", "dlq-audit")
        .set("auto.offset.reset", "earliest")
        .create()?;
    rdkafka::consumer::Consumer::subscribe(&consumer, &["harmony.events.dlq.v1"])?;
    let parked = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    assert_eq!(
        rdkafka::Message::payload(&parked),
        Some(&b"{not an event"[..])
    );
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn deleting_a_chat_purges_its_history_in_the_cluster() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let ann = api.register("ann").await?;
    let chat = api.group(&ann, "g", &[]).await?;
    for i in 0..5 {
        api.send(&ann, &chat, &format!("m{i}")).await?;
    }
    eventually("the sink to store the messages", || async {
        Ok((api.all_history(&ann, &chat).await?.len() == 5).then_some(()))
    })
    .await?;
    api.delete(&format!("/api/v1/chats/{chat}"), &ann.access)
        .await?;
    let state = std::sync::Arc::new(StateDb::connect(&cluster.postgres.url("state"), 2).await?);
    let history = HistoryDb::connect(&cluster.postgres.url("history"), 2, state).await?;
    let chat_id: harmony_core::ChatId = chat.parse()?;
    eventually("the projector to purge the chat's history", || async {
        Ok(history
            .messages_after_seq(chat_id, 0, 10)
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_postgres_restart_mid_stream_loses_no_event_and_keeps_order() -> R {
    let cluster = TestCluster::start().await?;
    let node = cluster.node("api,fanout,sink,projector,relay").await?;
    let ann = node.register("ann").await?;
    let chat = node.group(&ann, "g", &[]).await?;
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(node.register(&format!("user{i}")).await?);
    }
    let mut added = Vec::new();
    for (i, user) in users.iter().enumerate() {
        if i == 3 {
            cluster.postgres.stop()?;
            cluster.postgres.start_again()?;
        }
        // A state change that failed while PostgreSQL was away is retried, as a client would.
        let path = format!("/api/v1/chats/{chat}/members");
        eventually("the member to be added", || async {
            let reply = node
                .post(&path, &ann.access, json!({"user_id": user.id}))
                .await?;
            Ok((reply.status.is_success() || reply.code() == Some("already_member")).then_some(()))
        })
        .await?;
        added.push(user.id.clone());
    }
    // Every member_added reaches the events topic, in commit order for the chat.
    let settings = KafkaSettings::new(&cluster.broker.bootstrap(), "harmony.events.v1");
    let mut cursor = KafkaEventCursor::new(&settings, "audit")?;
    let mut order: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while order.len() < added.len() && tokio::time::Instant::now() < deadline {
        for e in cursor.poll(100, Duration::from_millis(500)).await? {
            if let harmony_core::events::DomainEvent::MemberAdded { user, .. } = e.event {
                let id = user.id.to_string();
                if !order.contains(&id) {
                    order.push(id);
                }
            }
        }
    }
    assert_eq!(order, added, "every change once, in the order it was made");
    let state = StateDb::connect(&cluster.postgres.url("state"), 2).await?;
    assert!(state.user(users[0].id.parse()?).await?.is_some());
    Ok(())
}
