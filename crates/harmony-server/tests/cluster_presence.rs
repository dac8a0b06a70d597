//! Presence in the cluster shape: a user's sessions on two gateways combine, friends on another
//! gateway see the changes, a stranger sees nothing, a killed gateway's users go offline within
//! the bound (the book's expiry plus a third of it), and a Redis that forgot everything is told
//! again by each gateway at its next upkeep.

use std::path::Path;
use std::time::Duration;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::{eventually, TestApp};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

const GRACE_MS: u64 = 300;
const NODE_TTL_MS: u64 = 1500;

#[tokio::test]
async fn presence_crosses_gateways_and_a_killed_gateways_users_go_offline() -> R {
    let cluster = TestCluster::start().await?;
    let api = cluster.node("api,fanout,sink,projector,relay").await?;
    let gateway = TestApp::spawn_with(|c| {
        cluster.configure(c);
        c.server.roles = "gateway".into();
        c.presence.grace_ms = GRACE_MS;
        c.presence.node_ttl_ms = NODE_TTL_MS;
    })
    .await?;
    let mut env = cluster.env("gateway");
    env.push(("HARMONY_PRESENCE__GRACE_MS".into(), GRACE_MS.to_string()));
    env.push((
        "HARMONY_PRESENCE__NODE_TTL_MS".into(),
        NODE_TTL_MS.to_string(),
    ));
    let doomed = TestApp::process(Path::new(env!("CARGO_BIN_EXE_harmony")), &env).await?;
    let [ann, bob, cat] = [
        api.register("ann").await?,
        api.register("bob").await?,
        api.register("cat").await?,
    ];
    api.befriend(&ann, &bob).await?;
    let (mut bob_ws, _) = gateway.ws(&bob.access).await?;
    bob_ws.see_presence();
    let (mut cat_ws, _) = gateway.ws(&cat.access).await?;
    cat_ws.see_presence();
    cat_ws.presence_of(&cat.id).await?;

    // ann on the gateway about to be killed: bob, on the other, sees her come.
    let (mut ann_far, _) = doomed.ws(&ann.access).await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "online");
    // A second session on bob's gateway, idle, then gone: ann stays online through the first.
    let (mut ann_near, _) = gateway.ws(&ann.access).await?;
    ann_near
        .send(json!({"type": "presence", "status": "idle"}))
        .await?;
    ann_near.close().await;
    ann_far
        .send(json!({"type": "presence", "status": "idle"}))
        .await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "idle");
    cat_ws
        .expect_silence(Duration::from_millis(300), &[])
        .await
        .map_err(|e| anyhow::anyhow!("a stranger was told: {e}"))?;
    let stranger = api.presence_seen_by(&cat, &ann).await?;
    assert_eq!(
        (stranger["status"].as_str(), &stranger["last_seen"]),
        (Some("offline"), &Value::Null)
    );
    assert_eq!(api.presence_seen_by(&bob, &ann).await?["status"], "idle");

    // The gateway dies with ann's only session on it.
    let killed = tokio::time::Instant::now();
    doomed.kill9().await?;
    let gone = bob_ws.presence_of(&ann.id).await?;
    let took = killed.elapsed();
    eprintln!("ann seen offline {took:?} after her gateway was killed");
    assert_eq!(gone["status"], "offline");
    assert!(gone["last_seen"].is_string(), "{gone}");
    let bound = Duration::from_millis(NODE_TTL_MS + NODE_TTL_MS / 3 + 1000);
    assert!(
        took <= bound,
        "offline {took:?} after the kill; bound {bound:?}"
    );
    assert_eq!(api.presence_seen_by(&bob, &ann).await?["status"], "offline");

    // Redis forgets everything while ann is on the live gateway: the gateway tells it again.
    let (_ann_back, _) = gateway.ws(&ann.access).await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "online");
    let mut redis = redis::Client::open(cluster.redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await?;
    assert_eq!(api.presence_seen_by(&bob, &ann).await?["status"], "offline");
    eventually("ann's presence told again after Redis forgot", || async {
        let seen = api.presence_seen_by(&bob, &ann).await?;
        Ok((seen["status"] == "online").then_some(()))
    })
    .await?;
    api.stop().await?;
    gateway.stop().await
}
