//! Presence through the front door, on one node: friends and members of small chats see each
//! other come, go idle and leave (after a grace, so a reconnect does not flap); members of a
//! big chat and strangers are told nothing, and a stranger who asks learns nothing. The
//! cluster's version (across gateways, and a killed gateway) is in `cluster_presence.rs`.

use std::time::Duration;

use harmony_testkit::{TestApp, TestUser, WsClient};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

const GRACE_MS: u64 = 400;

/// A session that reads presence frames.
async fn watching(app: &TestApp, user: &TestUser) -> anyhow::Result<WsClient> {
    let (mut ws, _) = app.ws(&user.access).await?;
    ws.see_presence();
    Ok(ws)
}

#[tokio::test]
async fn friends_and_small_chat_members_see_presence_and_nobody_else_does() -> R {
    let app = TestApp::spawn_with(|c| {
        c.presence.grace_ms = GRACE_MS;
        c.presence.max_chat_members = 3;
    })
    .await?;
    let [ann, bob, cat, dan, eve, fay, gus] = [
        app.register("ann").await?,
        app.register("bob").await?,
        app.register("cat").await?,
        app.register("dan").await?,
        app.register("eve").await?,
        app.register("fay").await?,
        app.register("gus").await?,
    ];
    app.befriend(&bob, &ann).await?;
    app.group(&ann, "small", &[&cat]).await?;
    // Four members, over the bound of 3: eve shares only this chat with ann.
    app.group(&ann, "big", &[&eve, &fay, &gus]).await?;
    let mut bob_ws = watching(&app, &bob).await?;
    let mut cat_ws = watching(&app, &cat).await?;
    let mut dan_ws = watching(&app, &dan).await?;
    let mut eve_ws = watching(&app, &eve).await?;
    // Each is told of themselves.
    dan_ws.presence_of(&dan.id).await?;
    eve_ws.presence_of(&eve.id).await?;

    let stranger_before = app.presence_seen_by(&dan, &ann).await?;
    let mut ann_ws = watching(&app, &ann).await?;
    for ws in [&mut bob_ws, &mut cat_ws] {
        let online = ws.presence_of(&ann.id).await?;
        assert_eq!(online["status"], "online");
        assert_eq!(online["last_seen"], Value::Null);
    }
    // ann is told about herself too (her other devices show what others see).
    assert_eq!(ann_ws.presence_of(&ann.id).await?["status"], "online");
    for ws in [&mut dan_ws, &mut eve_ws] {
        ws.expect_silence(Duration::from_millis(300), &[]).await?;
    }
    // A stranger who asks gets what they got before ann came: offline, never seen.
    assert_eq!(app.presence_seen_by(&dan, &ann).await?, stranger_before);
    assert_eq!(stranger_before["status"], "offline");
    assert_eq!(stranger_before["last_seen"], Value::Null);
    // A big chat's member asks for the members on screen, and gets the answer.
    assert_eq!(app.presence_seen_by(&eve, &ann).await?["status"], "online");
    // Friends and small-chat members are listed without asking by id.
    let peers = app.get("/api/v1/presence", &bob.access).await?;
    let listed: Vec<&Value> = peers.body["presence"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "bob is shown ann only: {listed:?}");
    assert_eq!(listed[0]["user_id"], ann.id.as_str());
    assert_eq!(listed[0]["status"], "online");

    // A reconnect within the grace does not flap.
    ann_ws.close().await;
    let mut ann_ws = watching(&app, &ann).await?;
    bob_ws
        .expect_silence(Duration::from_millis(GRACE_MS * 2), &[])
        .await
        .map_err(|e| anyhow::anyhow!("a reconnect showed ann leaving: {e}"))?;

    // Idle, back, then invisible: others see idle, online, then offline after the grace.
    ann_ws
        .send(json!({"type": "presence", "status": "idle"}))
        .await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "idle");
    ann_ws
        .send(json!({"type": "presence", "status": "online"}))
        .await?;
    assert_eq!(cat_ws.presence_of(&ann.id).await?["status"], "idle");
    assert_eq!(cat_ws.presence_of(&ann.id).await?["status"], "online");
    ann_ws
        .send(json!({"type": "presence", "status": "invisible"}))
        .await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "online");
    let hidden = bob_ws.presence_of(&ann.id).await?;
    assert_eq!(hidden["status"], "offline");
    assert!(hidden["last_seen"].is_string(), "{hidden}");
    for ws in [&mut dan_ws, &mut eve_ws] {
        ws.expect_silence(Duration::from_millis(100), &[]).await?;
    }
    assert_eq!(app.presence_seen_by(&dan, &ann).await?, stranger_before);
    let seen = app.presence_seen_by(&bob, &ann).await?;
    assert_eq!(seen["status"], "offline");
    assert_eq!(seen["last_seen"], hidden["last_seen"]);
    app.stop().await
}

#[tokio::test]
async fn a_user_is_online_while_any_session_is_and_offline_after_the_last_one_closes() -> R {
    let app = TestApp::spawn_with(|c| c.presence.grace_ms = GRACE_MS).await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    app.befriend(&ann, &bob).await?;
    let mut bob_ws = watching(&app, &bob).await?;
    let laptop = watching(&app, &ann).await?;
    let mut phone = watching(&app, &ann).await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "online");
    phone
        .send(json!({"type": "presence", "status": "idle"}))
        .await?;
    laptop.close().await;
    // The laptop showed online; with it gone, the idle phone is what is left.
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "idle");
    let left = tokio::time::Instant::now();
    phone.close().await;
    let gone = bob_ws.presence_of(&ann.id).await?;
    assert_eq!(gone["status"], "offline");
    assert!(
        left.elapsed() >= Duration::from_millis(GRACE_MS - 50),
        "offline only after the grace"
    );

    // Hostile or broken presence frames: refused with an error, nothing changes.
    let mut ann_ws = watching(&app, &ann).await?;
    assert_eq!(bob_ws.presence_of(&ann.id).await?["status"], "online");
    ann_ws
        .send(json!({"type": "presence", "status": "away"}))
        .await?;
    assert_eq!(ann_ws.next_of("error").await?["code"], "bad_frame");
    for _ in 0..10 {
        ann_ws
            .send(json!({"type": "presence", "status": "online"}))
            .await?;
    }
    assert_eq!(ann_ws.next_of("error").await?["code"], "rate_limited");
    bob_ws
        .expect_silence(Duration::from_millis(300), &[])
        .await?;
    let bad = app
        .get("/api/v1/presence?user_ids=nope", &ann.access)
        .await?;
    assert_eq!(bad.status.as_u16(), 400);
    app.stop().await
}
