//! Live notices through the front door, on one node: typing reaches the chat's connected
//! members only, a burst of 3 and then one a second per session, and is refused for a chat the
//! session does not have; friend requests, their answers and removed friendships reach both
//! people's sessions; reading on one session tells the user's others; being put into a chat
//! arrives with the chat. The cluster's version is in `cluster.rs`.

use std::time::Duration;

use harmony_testkit::{TestApp, WsClient};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// The next frame of `kind`, skipping others.
async fn next_of(ws: &mut WsClient, kind: &str) -> anyhow::Result<Value> {
    ws.next_of(kind).await
}

#[tokio::test]
async fn typing_reaches_the_chats_members_within_a_rate_and_nobody_else() -> R {
    let app = TestApp::spawn().await?;
    let [ann, bob, cat] = [
        app.register("ann").await?,
        app.register("bob").await?,
        app.register("cat").await?,
    ];
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let elsewhere = app.group(&cat, "other", &[]).await?;
    let (mut ann_ws, _) = app.ws(&ann.access).await?;
    let (mut bob_ws, _) = app.ws(&bob.access).await?;
    let (mut cat_ws, _) = app.ws(&cat.access).await?;

    // A burst of 3 goes out, then one a second: the 4th and 5th at once are dropped.
    for _ in 0..5 {
        ann_ws
            .send(json!({"type": "typing", "chat_id": chat}))
            .await?;
    }
    for _ in 0..3 {
        let seen = next_of(&mut bob_ws, "typing").await?;
        assert_eq!(
            (seen["chat_id"].as_str(), seen["user_id"].as_str()),
            (Some(chat.as_str()), Some(ann.id.as_str()))
        );
        assert!(seen["expires_in_ms"].as_u64().is_some_and(|ms| ms >= 3000));
    }
    bob_ws
        .expect_silence(Duration::from_millis(600), &[])
        .await
        .map_err(|e| anyhow::anyhow!("typing past the burst went out: {e}"))?;
    cat_ws
        .expect_silence(Duration::from_millis(300), &[])
        .await?;
    // Renewed after a second.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ann_ws
        .send(json!({"type": "typing", "chat_id": chat}))
        .await?;
    next_of(&mut bob_ws, "typing").await?;

    // Not a member: refused, and the members hear nothing.
    cat_ws
        .send(json!({"type": "typing", "chat_id": chat}))
        .await?;
    let refused = next_of(&mut cat_ws, "error").await?;
    assert_eq!(refused["code"], "chat_not_found");
    bob_ws
        .expect_silence(Duration::from_millis(300), &["typing"])
        .await?;
    cat_ws
        .send(json!({"type": "typing", "chat_id": elsewhere}))
        .await?;
    bob_ws
        .expect_silence(Duration::from_millis(300), &[])
        .await?;
    // Never stored: the history has no trace of it.
    assert!(app.all_history(&ann, &chat).await?.is_empty());
    app.stop().await
}

#[tokio::test]
async fn friend_requests_and_their_answers_arrive_live_on_both_sides() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let (mut ann_ws, _) = app.ws(&ann.access).await?;
    let (mut bob_ws, _) = app.ws(&bob.access).await?;

    let sent = app
        .post(
            "/api/v1/friends/requests",
            &ann.access,
            json!({"username": "bob"}),
        )
        .await?;
    let id = sent.str("/id");
    let incoming = next_of(&mut bob_ws, "friend_request").await?;
    assert_eq!(incoming["request"]["id"], id.as_str());
    assert_eq!(incoming["request"]["status"], "pending");
    assert_eq!(incoming["request"]["from"]["username"], "ann");
    let outgoing = next_of(&mut ann_ws, "friend_request").await?;
    assert_eq!(outgoing["request"]["id"], id.as_str());

    app.post(
        &format!("/api/v1/friends/requests/{id}/accept"),
        &bob.access,
        json!({}),
    )
    .await?;
    let answered = next_of(&mut ann_ws, "friend_request").await?;
    assert_eq!(answered["request"]["status"], "accepted");
    next_of(&mut bob_ws, "friend_request").await?;

    app.delete(&format!("/api/v1/friends/{}", bob.id), &ann.access)
        .await?;
    let gone = next_of(&mut bob_ws, "friend_removed").await?;
    assert_eq!(gone["user_id"], ann.id.as_str());
    let gone = next_of(&mut ann_ws, "friend_removed").await?;
    assert_eq!(gone["user_id"], bob.id.as_str());
    app.stop().await
}

#[tokio::test]
async fn reading_on_one_session_clears_the_chat_on_the_users_others() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&bob, "g", &[&ann]).await?;
    let (mut laptop, _) = app.ws(&ann.access).await?;
    let (mut bob_ws, _) = app.ws(&bob.access).await?;
    let first = app.send(&bob, &chat, "one").await?;
    app.send(&bob, &chat, "two").await?;
    let seq = first["seq"].as_i64().unwrap_or(-1) + 1;
    let reply = app
        .post(
            &format!("/api/v1/chats/{chat}/read"),
            &ann.access,
            json!({ "seq": seq }),
        )
        .await?;
    assert_eq!(reply.status.as_u16(), 204);
    let read = next_of(&mut laptop, "read").await?;
    assert_eq!(
        (read["chat_id"].as_str(), read["seq"].as_i64()),
        (Some(chat.as_str()), Some(seq))
    );
    // Only ann's sessions are told.
    bob_ws
        .expect_silence(Duration::from_millis(300), &["message"])
        .await?;
    app.stop().await
}

#[tokio::test]
async fn being_put_into_a_chat_arrives_with_the_chat() -> R {
    let app = TestApp::spawn().await?;
    let [ann, bob, cat] = [
        app.register("ann").await?,
        app.register("bob").await?,
        app.register("cat").await?,
    ];
    let (mut bob_ws, _) = app.ws(&bob.access).await?;
    let (mut cat_ws, _) = app.ws(&cat.access).await?;
    let (mut ann_ws, _) = app.ws(&ann.access).await?;

    let chat = app.group(&ann, "plans", &[&bob]).await?;
    let added = next_of(&mut bob_ws, "added_to_chat").await?;
    assert_eq!(added["chat"]["id"], chat.as_str());
    assert_eq!(added["chat"]["name"], "plans");
    assert_eq!(added["by"], ann.id.as_str());

    let reply = app
        .post(
            &format!("/api/v1/chats/{chat}/members"),
            &ann.access,
            json!({"user_id": cat.id}),
        )
        .await?;
    assert_eq!(reply.status.as_u16(), 201);
    let added = next_of(&mut cat_ws, "added_to_chat").await?;
    assert_eq!(added["chat"]["id"], chat.as_str());
    assert_eq!(added["chat"]["member_count"], 3);
    // The one who did it is not told (she sees the member and the timeline line, a message).
    ann_ws
        .expect_silence(Duration::from_millis(300), &["member_added", "message"])
        .await?;
    app.stop().await
}
