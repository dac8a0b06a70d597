//! The cluster shape through the front door: api and gateway roles on different nodes sharing a
//! private PostgreSQL, Redis and Kafka-API broker. The same client code as the single-node tests.

use std::time::Duration;

use harmony_testkit::cluster::TestCluster;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

fn seq(frame: &Value) -> i64 {
    frame["message"]["seq"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn a_message_sent_through_one_node_reaches_a_client_on_another_and_resumes_on_a_third() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway_b = cluster.node("gateway").await?;
    let gateway_c = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;

    let (mut ws, ready) = gateway_b.ws(&bob.access).await?;
    assert_eq!(ready["chats"][0]["id"], chat.as_str());
    let first = api.send(&ann, &chat, "across nodes").await?;
    let live = ws.next_of("message").await?;
    assert_eq!(live["message"]["id"], first["id"]);
    assert_eq!(
        seq(&live),
        first["seq"].as_i64().unwrap_or(-2),
        "live seq is the committed seq"
    );
    let second = api.send(&ann, &chat, "and again").await?;
    let live2 = ws.next_of("message").await?;
    assert_eq!(
        live2["prev_seq"], first["seq"],
        "prev_seq links to the previous message"
    );
    assert!(
        seq(&live2) > seq(&live),
        "seq increases in the chat's order"
    );
    assert_eq!(live2["message"]["id"], second["id"]);
    ws.close().await;

    // Bob is away; three messages later he comes back through another gateway.
    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(api.send(&ann, &chat, &format!("missed {i}")).await?["id"].clone());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut ws, _) = gateway_c.ws(&bob.access).await?;
    ws.send(json!({"type": "resume", "chats": {chat.clone(): seq(&live2)}}))
        .await?;
    // Each missed message arrives once: by resume if the gateway's `ready` already counted it,
    // live if the fan-out was still behind (the broker's tail latency is long).
    let mut got = Vec::new();
    while !missed.iter().all(|id| got.contains(id)) {
        let frame = ws.next().await?;
        if frame["type"] == "message" {
            got.push(frame["message"]["id"].clone());
        }
    }
    ws.expect_silence(Duration::from_millis(500), &["resumed", "member_added"])
        .await?;
    assert_eq!(got.len(), missed.len(), "no duplicates: {got:?}");
    ws.close().await;

    // History through the api node has every message once, in order.
    let history = harmony_testkit::eventually("the sink to store all five", || async {
        let all = api.all_history(&bob, &chat).await?;
        Ok((all.len() >= 5).then_some(all))
    })
    .await?;
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs.len() == 5,
        "{seqs:?}"
    );
    api.stop().await?;
    gateway_b.stop().await?;
    gateway_c.stop().await
}

#[tokio::test]
async fn a_member_removed_through_the_api_node_stops_receiving_on_a_gateway_node() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    api.send(&ann, &chat, "hello").await?;
    ws.next_of("message").await?;
    api.delete(
        &format!("/api/v1/chats/{chat}/members/{}", bob.id),
        &ann.access,
    )
    .await?;
    ws.next_of("member_removed").await?;
    api.send(&ann, &chat, "secret").await?;
    ws.expect_silence(Duration::from_millis(800), &[]).await?;
    let refused = api
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            &bob.access,
            json!({"content": "x"}),
        )
        .await?;
    assert_eq!(refused.code(), Some("chat_not_found"));
    let api_ws = api
        .ws_refused(&[("authorization", format!("Bearer {}", bob.access))])
        .await?;
    assert_eq!(
        api_ws,
        (503, "unavailable".into()),
        "a node without the gateway role refuses WebSockets"
    );
    ws.close().await;
    api.stop().await?;
    gateway.stop().await
}

#[tokio::test]
async fn a_logout_on_one_node_ends_the_session_on_every_node_within_a_second() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let other_api = cluster.node("api").await?;
    let gateway = cluster.node("gateway").await?;
    let ann = api.register("ann").await?;
    let (mut ws, _) = gateway.ws(&ann.access).await?;
    let me = "/api/v1/users/me";
    assert_eq!(other_api.get(me, &ann.access).await?.status.as_u16(), 200);

    let started = std::time::Instant::now();
    let out = api
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": ann.refresh})),
        )
        .await?;
    assert_eq!(out.status.as_u16(), 204);
    assert_eq!(
        ws.until_closed().await?,
        harmony_testkit::ws::Ended::Closed(Some(4001)),
        "the gateway node closed the session's WebSocket"
    );
    let closed_after = started.elapsed();
    harmony_testkit::eventually("the other api node refuses the token", || async {
        Ok((other_api.get(me, &ann.access).await?.status.as_u16() == 401).then_some(()))
    })
    .await?;
    let refused_after = started.elapsed();
    assert!(
        closed_after < Duration::from_secs(1) && refused_after < Duration::from_secs(1),
        "WebSocket closed after {closed_after:?}, token refused after {refused_after:?}"
    );
    api.stop().await?;
    other_api.stop().await?;
    gateway.stop().await
}

#[tokio::test]
async fn typing_and_a_users_own_notices_cross_nodes() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway_a = cluster.node("gateway").await?;
    let gateway_b = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ann_ws, _) = gateway_a.ws(&ann.access).await?;
    let (mut bob_ws, _) = gateway_b.ws(&bob.access).await?;
    let (mut ann_phone, _) = gateway_b.ws(&ann.access).await?;

    ann_ws
        .send(json!({"type": "typing", "chat_id": chat}))
        .await?;
    let typing = bob_ws.next_of("typing").await?;
    assert_eq!(typing["user_id"], ann.id.as_str());

    let request = api
        .post(
            "/api/v1/friends/requests",
            &bob.access,
            json!({"username": "ann"}),
        )
        .await?;
    let live = ann_ws.next_of("friend_request").await?;
    assert_eq!(live["request"]["id"], request.str("/id").as_str());

    api.post(
        &format!("/api/v1/chats/{chat}/read"),
        &ann.access,
        json!({"seq": 0}),
    )
    .await?;
    let read = ann_phone.next_of("read").await?;
    assert_eq!(read["chat_id"], chat.as_str());

    let cat = api.register("cat").await?;
    let (mut cat_ws, _) = gateway_a.ws(&cat.access).await?;
    api.post(
        &format!("/api/v1/chats/{chat}/members"),
        &ann.access,
        json!({"user_id": cat.id}),
    )
    .await?;
    let added = cat_ws.next_of("added_to_chat").await?;
    assert_eq!(added["chat"]["id"], chat.as_str());
    api.stop().await?;
    gateway_a.stop().await?;
    gateway_b.stop().await
}
