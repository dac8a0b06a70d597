//! The cluster's truth is the log and PostgreSQL; Redis is a cache. Each test makes Redis forget
//! (a restart without persistence: every key gone, every client dropped) or takes a consumer
//! away, and checks through the front door that no guarantee moved: heads, resume, `prev_seq`,
//! idempotency and read markers. Seqs are dense from 1, as on a single node.

use std::sync::Arc;
use std::time::Duration;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::ws::WsClient;
use harmony_testkit::{eventually, TestApp, TestUser};
use reqwest::StatusCode;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

fn seqs(messages: &[Value]) -> Vec<i64> {
    messages.iter().filter_map(|m| m["seq"].as_i64()).collect()
}

/// A session on `gateway`, retried while the node is still reconnecting to Redis.
async fn connect(gateway: &TestApp, user: &TestUser) -> anyhow::Result<(WsClient, Value)> {
    eventually("a session to start", || async {
        Ok(gateway.ws(&user.access).await.ok())
    })
    .await
}

/// As a client does after Redis came back: a session the gateway closes (it noticed the lost
/// subscription only now) is opened again, until `ready` and `resume` went through on one.
async fn resume_fresh(
    gateway: &TestApp,
    user: &TestUser,
    chat: &str,
    from: i64,
) -> anyhow::Result<(WsClient, Value, Vec<Value>)> {
    for _ in 0..20 {
        let (mut ws, ready) = connect(gateway, user).await?;
        if let Ok(got) = resume(&mut ws, chat, from).await {
            return Ok((ws, ready, got));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("no session lasted through a resume")
}

/// Sends `resume` for one chat and collects the messages until `resumed`.
async fn resume(ws: &mut WsClient, chat: &str, from: i64) -> anyhow::Result<Vec<Value>> {
    ws.send(json!({"type": "resume", "chats": {chat: from}}))
        .await?;
    let mut got = Vec::new();
    loop {
        let frame = ws.next().await?;
        match frame["type"].as_str() {
            Some("message") => got.push(frame["message"].clone()),
            Some("resumed") => return Ok(got),
            _ => {}
        }
    }
}

fn head_of(ready: &Value, chat: &str) -> Option<i64> {
    ready["chats"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == chat)
        .and_then(|c| c["last_seq"].as_i64())
}

/// Sends until acknowledged (Redis may still be reconnecting right after its restart).
async fn send_eventually(
    app: &TestApp,
    user: &TestUser,
    chat: &str,
    body: Value,
) -> anyhow::Result<Value> {
    eventually("a send to be acknowledged", || async {
        let reply = app
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                &user.access,
                body.clone(),
            )
            .await?;
        Ok((reply.status == StatusCode::CREATED).then_some(reply.body))
    })
    .await
}

#[tokio::test]
async fn a_redis_that_forgot_everything_while_a_chat_was_quiet_costs_no_message() -> R {
    let mut cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;

    let (mut ws, _) = gateway.ws(&bob.access).await?;
    for i in 0..2 {
        api.send(&ann, &chat, &format!("seen {i}")).await?;
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(ws.next_of("message").await?["message"].clone());
    }
    assert_eq!(
        seqs(&seen),
        [1, 2],
        "a chat's seqs start at 1 and have no hole"
    );
    ws.close().await;

    let mut missed = Vec::new();
    for i in 0..20 {
        missed.push(api.send(&ann, &chat, &format!("missed {i}")).await?);
    }
    assert_eq!(seqs(&missed), (3..=22).collect::<Vec<_>>());
    // Let the fan-out put them in the window: it is the window that is lost.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.redis.restart().await?;

    let (mut ws, ready, resumed) = resume_fresh(&gateway, &bob, &chat, 2).await?;
    assert_eq!(
        head_of(&ready, &chat),
        Some(22),
        "ready tells where the chat stands, not what Redis remembers: {ready}"
    );
    assert_eq!(seqs(&resumed), (3..=22).collect::<Vec<_>>());
    let ids = |ms: &[Value]| ms.iter().map(|m| m["id"].clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&resumed),
        ids(&missed),
        "exactly the missed messages, in order"
    );

    send_eventually(&api, &ann, &chat, json!({"content": "after"})).await?;
    let live = ws.next_of("message").await?;
    assert_eq!(live["message"]["seq"], 23);
    assert_eq!(
        live["prev_seq"], 22,
        "the gap check links to the last message"
    );

    // Reading up to the head works with the window gone (it was capped at Redis' head).
    let read = api
        .post(
            &format!("/api/v1/chats/{chat}/read"),
            &bob.access,
            json!({"seq": 23}),
        )
        .await?;
    assert_eq!(read.status, StatusCode::NO_CONTENT);
    cluster.redis.restart().await?;
    let chats = eventually("the chat list", || async {
        let r = api.get("/api/v1/chats", &bob.access).await?;
        Ok((r.status == StatusCode::OK).then_some(r.body))
    })
    .await?;
    let listed = chats
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == chat.as_str()).cloned())
        .unwrap_or_default();
    assert_eq!(listed["unread_count"], 0, "{listed}");
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn a_retried_send_finds_its_message_after_redis_forgot_and_racing_retries_agree() -> R {
    let mut cluster = TestCluster::start().await?;
    let api_a = Arc::new(cluster.node("api,fanout,sink,projector,relay").await?);
    let api_b = Arc::new(cluster.node("api").await?);
    let ann = api_a.register("ann").await?;
    let chat = api_a.group(&ann, "g", &[]).await?;

    let first = send_eventually(
        &api_a,
        &ann,
        &chat,
        json!({"content": "once", "client_msg_id": "k-1"}),
    )
    .await?;
    cluster.redis.restart().await?;
    let retry = eventually("a retry to be answered", || async {
        let r = api_b
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                &ann.access,
                json!({"content": "once", "client_msg_id": "k-1"}),
            )
            .await?;
        Ok((r.status == StatusCode::CREATED).then_some(r))
    })
    .await?;
    assert_eq!(
        retry.body["id"], first["id"],
        "the retry finds the first message"
    );
    assert_eq!(retry.body["seq"], first["seq"]);
    assert_eq!(
        retry.headers.get("idempotent-replay").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );

    // Eight attempts of one send at once, through both api nodes: one message, one answer.
    let mut racing = Vec::new();
    for i in 0..8 {
        let (app, ann, chat) = (
            if i % 2 == 0 {
                api_a.clone()
            } else {
                api_b.clone()
            },
            ann.clone(),
            chat.clone(),
        );
        racing.push(tokio::spawn(async move {
            app.post(
                &format!("/api/v1/chats/{chat}/messages"),
                &ann.access,
                json!({"content": "race", "client_msg_id": "k-2"}),
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for r in racing {
        let reply = r.await??;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        answers.push((reply.body["id"].clone(), reply.body["seq"].clone()));
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "every attempt answers with the same message: {answers:?}"
    );
    let history = eventually("history to hold both messages", || async {
        let all = api_a.all_history(&ann, &chat).await?;
        Ok((all.len() >= 2).then_some(all))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let history_again = api_a.all_history(&ann, &chat).await?;
    assert_eq!(history_again.len(), history.len());
    assert_eq!(
        seqs(&history_again),
        [1, 2],
        "stored once each: {history_again:?}"
    );
    Ok(())
}

#[tokio::test]
async fn resume_is_whole_while_the_message_store_lags_and_redis_forgot() -> R {
    let mut cluster = TestCluster::start().await?;
    // No sink: the message store holds nothing of what follows.
    let api = cluster.node("api,gateway,fanout,projector,relay").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(api.send(&ann, &chat, &format!("m{i}")).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.redis.restart().await?;
    let (ws, ready, resumed) = resume_fresh(&api, &bob, &chat, 4).await?;
    assert_eq!(head_of(&ready, &chat), Some(30));
    assert_eq!(seqs(&resumed), (5..=30).collect::<Vec<_>>());
    ws.close().await;

    // History paged after a message the store has not caught up with: the order knows it.
    let after = sent[26]["id"].as_str().unwrap_or_default();
    let page = api
        .get(
            &format!("/api/v1/chats/{chat}/messages?after={after}&limit=2"),
            &bob.access,
        )
        .await?;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert_eq!(
        seqs(page.body["messages"].as_array().map_or(&[][..], |v| v)),
        [28, 29]
    );
    assert_eq!(page.body["has_more"], true);
    Ok(())
}

#[tokio::test]
async fn events_written_before_any_relay_ran_are_relayed() -> R {
    let cluster = TestCluster::start().await?;
    // No relay or projector yet: only the node that takes requests and holds sessions.
    let api = cluster.node("api,gateway,fanout,sink").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let (mut ws, _) = api.ws(&bob.access).await?;
    let chat = api.group(&ann, "before the relay", &[&bob]).await?;
    let _relay = cluster.node("relay,projector").await?;
    let added = ws.next_of("member_added").await?;
    assert_eq!(added["chat_id"], chat.as_str(), "{added}");
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn a_removed_member_gets_no_message_ordered_after_the_removal_even_without_its_event() -> R {
    let cluster = TestCluster::start().await?;
    // No projector: the `member_removed` event is never applied. The removal still reaches the
    // gateways in the chat's own order, ahead of the next message.
    let api = cluster.node("api,gateway,fanout,sink,relay").await?;
    let (ann, bob, cat) = (
        api.register("ann").await?,
        api.register("bob").await?,
        api.register("cat").await?,
    );
    let chat = api.group(&ann, "g", &[&bob, &cat]).await?;
    let (mut bob_ws, _) = api.ws(&bob.access).await?;
    let (mut cat_ws, _) = api.ws(&cat.access).await?;
    api.send(&ann, &chat, "before").await?;
    assert_eq!(
        bob_ws.next_of("message").await?["message"]["content"],
        "before"
    );
    assert_eq!(
        cat_ws.next_of("message").await?["message"]["content"],
        "before"
    );

    let removed = api
        .delete(
            &format!("/api/v1/chats/{chat}/members/{}", bob.id),
            &ann.access,
        )
        .await?;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    api.send(&ann, &chat, "after").await?;
    let gone = bob_ws.next().await?;
    assert_eq!(gone["type"], "member_removed", "{gone}");
    assert_eq!(gone["user_id"], bob.id.as_str());
    bob_ws
        .expect_silence(Duration::from_millis(1500), &[])
        .await?;
    assert_eq!(
        cat_ws.next_of("message").await?["message"]["content"],
        "after"
    );

    // Nor through resume: the session no longer follows the chat, and the truth says no.
    bob_ws
        .send(json!({"type": "resume", "chats": {chat.clone(): 0}}))
        .await?;
    let refused = bob_ws.next().await?;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "not_a_member");
    bob_ws.close().await;
    cat_ws.close().await;
    Ok(())
}

#[tokio::test]
async fn a_node_refuses_to_start_on_topics_less_durable_than_configured() -> R {
    let cluster = TestCluster::start().await?;
    let dir = tempfile::tempdir()?;
    let mut config = harmony_testkit::test_config(dir.path().to_path_buf())?;
    cluster.configure(&mut config);
    // The topic exists with one replica (made for a one-broker development cluster); this node
    // is configured for production.
    let mut existing =
        harmony_kafka::KafkaSettings::new(&cluster.broker.bootstrap(), "harmony.messages.v1");
    existing.partitions = 2;
    harmony_kafka::ensure_topic(&existing).await?;
    config.cluster.replication_factor = 3;
    config.cluster.min_insync_replicas = 2;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = tokio::time::timeout(
        Duration::from_secs(20),
        harmony_server::serve(config, listener, shutdown.clone()),
    )
    .await?;
    shutdown.cancel();
    let Err(error) = started else {
        anyhow::bail!("a node started on topics with one replica while three were asked")
    };
    let said = format!("{error:#}");
    assert!(
        said.contains("harmony.messages.v1") && said.contains("replica"),
        "the error names the topic and what is wrong: {said}"
    );
    Ok(())
}

#[tokio::test]
async fn a_log_record_that_does_not_decode_is_parked_and_delivery_goes_on() -> R {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let cluster = TestCluster::start().await?;
    let api = cluster
        .node("api,gateway,fanout,sink,projector,relay")
        .await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = api.ws(&bob.access).await?;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.broker.bootstrap())
        .create()?;
    producer
        .send(
            FutureRecord::to("harmony.messages.v1")
                .key(chat.as_str())
                .payload("not a message record"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let sent = api.send(&ann, &chat, "after the poison").await?;
    let live = ws.next_of("message").await?;
    assert_eq!(live["message"]["id"], sent["id"]);
    assert_eq!(live["message"]["seq"], 1, "the poison took no seq");
    let metrics = eventually("the parked record to be counted", || async {
        let text = api.metrics().await?;
        Ok(text
            .lines()
            .any(|l| {
                l.starts_with(
                    "harmony_consumer_processed_total{consumer=\"fanout-dead-letters\"} 1",
                )
            })
            .then_some(text))
    })
    .await?;
    assert!(!metrics.is_empty());
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn a_window_with_holes_like_an_old_snapshot_is_trusted_only_up_to_them() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster
        .node("api,gateway,fanout,sink,projector,relay")
        .await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    for i in 0..10 {
        api.send(&ann, &chat, &format!("m{i}")).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What a Redis restored from an older snapshot, then fed new messages, looks like: the
    // window lost 3..=6 but holds the rest.
    let removed = std::process::Command::new("redis-cli")
        .args(["-u", &cluster.redis.url(), "ZREMRANGEBYSCORE"])
        .arg(format!("harmony:window:{chat}"))
        .args(["3", "6"])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&removed.stdout).trim(),
        "4",
        "{removed:?}"
    );
    let (mut ws, _) = api.ws(&bob.access).await?;
    let resumed = resume(&mut ws, &chat, 0).await?;
    assert_eq!(seqs(&resumed), (1..=10).collect::<Vec<_>>());
    ws.close().await;
    Ok(())
}
