//! The WebSocket gateway through the front door: ready, live delivery with seq and prev_seq,
//! resume, live revocation, back-pressure (4008), handshake checks and bad frames.

use std::collections::HashSet;
use std::time::Duration;

use harmony_testkit::ws::Ended;
use harmony_testkit::{eventually, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// A resume of `chat` is answered `not_a_member`, then `resumed`.
async fn resume_is_refused(ws: &mut harmony_testkit::ws::WsClient, chat: &str) -> R {
    ws.send(json!({"type": "resume", "chats": {chat: 0}}))
        .await?;
    let refused = ws.next().await?;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("not_a_member"))
    );
    assert_eq!(ws.next().await?["type"], "resumed");
    Ok(())
}

fn seq(frame: &Value) -> i64 {
    frame["message"]["seq"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn ready_then_live_messages_with_seq_and_prev_seq() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    app.send(&ann, &chat, "before").await?;
    let (mut ws, ready) = app.ws(&bob.access).await?;
    assert_eq!(ready["user"]["username"], "bob");
    assert!(ready["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(ready["chats"], json!([{"id": chat, "last_seq": 1}]));

    app.send(&ann, &chat, "live one").await?;
    app.send(&ann, &chat, "live two").await?;
    let one = ws.next_of("message").await?;
    let two = ws.next_of("message").await?;
    assert_eq!(
        (
            seq(&one),
            one["prev_seq"].as_i64(),
            one["message"]["content"].as_str()
        ),
        (2, Some(1), Some("live one"))
    );
    assert_eq!((seq(&two), two["prev_seq"].as_i64()), (3, Some(2)));
    assert_eq!(one["chat_id"], chat.as_str());
    assert_eq!(one["message"]["author"]["username"], "ann");

    ws.send(json!({"type": "ping"})).await?;
    assert_eq!(ws.next().await?, json!({"type": "pong"}));
    ws.close().await;
    app.stop().await
}

#[tokio::test]
async fn resume_delivers_exactly_the_missed_messages() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let other = app.group(&ann, "h", &[&bob]).await?;
    let (mut ws, _) = app.ws(&bob.access).await?;
    app.send(&ann, &chat, "seen 1").await?;
    app.send(&ann, &chat, "seen 2").await?;
    assert_eq!(seq(&ws.next_of("message").await?), 1);
    assert_eq!(seq(&ws.next_of("message").await?), 2);
    ws.close().await;

    for i in 3..=12 {
        app.send(&ann, &chat, &format!("missed {i}")).await?;
    }
    app.send(&ann, &other, "other missed").await?;
    let (mut ws, ready) = app.ws(&bob.access).await?;
    let positions: Vec<(String, i64)> = ready["chats"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or("").to_owned(),
                c["last_seq"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert!(
        positions.contains(&(chat.clone(), 12)) && positions.contains(&(other.clone(), 1)),
        "{positions:?}"
    );

    ws.send(json!({"type": "resume", "chats": {chat.clone(): 2, other.clone(): 0}}))
        .await?;
    let mut got: Vec<(String, i64, Option<i64>)> = Vec::new();
    loop {
        let frame = ws.next().await?;
        match frame["type"].as_str() {
            Some("resumed") => break,
            Some("message") => got.push((
                frame["chat_id"].as_str().unwrap_or("").to_owned(),
                seq(&frame),
                frame["prev_seq"].as_i64(),
            )),
            _ => {}
        }
    }
    let in_chat: Vec<i64> = got
        .iter()
        .filter(|(c, ..)| *c == chat)
        .map(|(_, s, _)| *s)
        .collect();
    assert_eq!(
        in_chat,
        (3..=12).collect::<Vec<_>>(),
        "exactly the missed ones, in order"
    );
    assert_eq!(
        got.iter().find(|(c, ..)| *c == chat).map(|(.., p)| *p),
        Some(Some(2))
    );
    assert_eq!(got.iter().filter(|(c, ..)| *c == other).count(), 1);

    // A repeated resume sends nothing again; live delivery continues after it.
    ws.send(json!({"type": "resume", "chats": {chat.clone(): 2}}))
        .await?;
    assert_eq!(ws.next().await?["type"], "resumed");
    app.send(&ann, &chat, "live").await?;
    let live = ws.next_of("message").await?;
    assert_eq!((seq(&live), live["prev_seq"].as_i64()), (13, Some(12)));
    ws.close().await;
    app.stop().await
}

#[tokio::test]
async fn resume_and_live_together_give_each_message_once() -> R {
    let app = std::sync::Arc::new(TestApp::spawn().await?);
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    for i in 1..=20 {
        app.send(&ann, &chat, &format!("{i}")).await?;
    }
    // Messages keep coming while bob reconnects and resumes from 5.
    let sender = {
        let (app, ann, chat) = (app.clone(), ann.clone(), chat.clone());
        tokio::spawn(async move {
            for i in 21..=60 {
                app.send(&ann, &chat, &format!("{i}")).await?;
            }
            anyhow::Ok(())
        })
    };
    let (mut ws, _) = app.ws(&bob.access).await?;
    ws.send(json!({"type": "resume", "chats": {chat.clone(): 5}}))
        .await?;
    let mut seen = Vec::new();
    while seen.len() < 55 {
        let frame = ws.next().await?;
        if frame["type"] == "message" {
            seen.push(seq(&frame));
        }
    }
    sender.await??;
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    assert_eq!(unique, (6..=60).collect::<HashSet<i64>>());
    ws.expect_silence(Duration::from_millis(300), &["resumed"])
        .await?;
    ws.close().await;
    std::sync::Arc::try_unwrap(app)
        .map_err(|_| anyhow::anyhow!("shared"))?
        .stop()
        .await
}

#[tokio::test]
async fn a_removed_member_stops_receiving_and_is_refused() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = app.ws(&bob.access).await?;
    app.send(&ann, &chat, "hello bob").await?;
    assert_eq!(seq(&ws.next_of("message").await?), 1);

    let removed = app
        .delete(
            &format!("/api/v1/chats/{chat}/members/{}", bob.id),
            &ann.access,
        )
        .await?;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let notice = ws.next_of("member_removed").await?;
    assert_eq!(
        (notice["chat_id"].as_str(), notice["user_id"].as_str()),
        (Some(chat.as_str()), Some(bob.id.as_str()))
    );
    app.send(&ann, &chat, "secret").await?;
    ws.expect_silence(Duration::from_millis(500), &[]).await?;

    let path = format!("/api/v1/chats/{chat}/messages");
    assert_eq!(
        app.get(&path, &bob.access).await?.code(),
        Some("chat_not_found")
    );
    assert_eq!(
        app.post(&path, &bob.access, json!({"content": "x"}))
            .await?
            .code(),
        Some("chat_not_found")
    );
    // Nor does the session that followed the chat resume it (it stopped following it).
    resume_is_refused(&mut ws, &chat).await?;
    ws.close().await;

    // A new session neither lists the chat nor resumes it.
    let (mut ws, ready) = app.ws(&bob.access).await?;
    assert_eq!(ready["chats"], json!([]));
    resume_is_refused(&mut ws, &chat).await?;
    ws.expect_silence(Duration::from_millis(300), &[]).await?;
    ws.close().await;
    app.stop().await
}

#[tokio::test]
async fn sessions_follow_membership_and_chat_changes_live() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let (mut ws, ready) = app.ws(&bob.access).await?;
    assert_eq!(ready["chats"], json!([]));
    let chat = app.group(&ann, "g", &[]).await?;
    app.post(
        &format!("/api/v1/chats/{chat}/members"),
        &ann.access,
        json!({"user_id": bob.id}),
    )
    .await?;
    let added = ws.next_of("member_added").await?;
    assert_eq!(
        (
            added["chat_id"].as_str(),
            added["user"]["username"].as_str()
        ),
        (Some(chat.as_str()), Some("bob"))
    );
    // The timeline says bob joined, then ann's message follows.
    let line = ws.next_of("message").await?;
    assert_eq!(line["message"]["notice"]["kind"], "member_added");
    app.send(&ann, &chat, "welcome").await?;
    assert_eq!(ws.next_written().await?["message"]["content"], "welcome");
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/chats/{chat}"),
        Some(&ann.access),
        Some(json!({"name": "renamed"})),
    )
    .await?;
    assert_eq!(ws.next_of("chat_updated").await?["chat"]["name"], "renamed");
    app.delete(&format!("/api/v1/chats/{chat}"), &ann.access)
        .await?;
    assert_eq!(ws.next_of("chat_deleted").await?["chat_id"], chat.as_str());
    // The deleted chat's history is purged.
    let ann_path = format!("/api/v1/chats/{chat}/messages");
    assert_eq!(
        app.get(&ann_path, &ann.access).await?.code(),
        Some("chat_not_found")
    );
    ws.close().await;
    app.stop().await
}

#[tokio::test]
async fn a_slow_client_is_closed_with_4008_and_resumes_without_loss() -> R {
    let app = TestApp::spawn_with(|c| c.gateway.session_queue = 16).await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let (mut slow, _) = app.ws(&bob.access).await?;
    // Bob stops reading; big messages fill the socket buffers, then his queue.
    let big = "x".repeat(4000);
    let mut sent = 0;
    let closed = loop {
        app.send(&ann, &chat, &big).await?;
        sent += 1;
        if sent % 200 == 0 {
            let metrics = app.metrics().await?;
            if metrics.contains("harmony_ws_closed_too_slow_total 1") {
                break true;
            }
        }
        if sent >= 20_000 {
            break false;
        }
    };
    assert!(closed, "the session was never closed as too slow");
    assert_eq!(slow.until_closed().await?, Ended::Closed(Some(4008)));

    let (mut ws, ready) = app.ws(&bob.access).await?;
    assert_eq!(ready["chats"][0]["last_seq"], sent);
    ws.send(json!({"type": "resume", "chats": {chat.clone(): 0}}))
        .await?;
    let mut expected = 1;
    loop {
        let frame = ws.next().await?;
        if frame["type"] == "resumed" {
            break;
        }
        assert_eq!(seq(&frame), expected);
        expected += 1;
    }
    assert_eq!(expected - 1, sent, "resume delivered every message");
    ws.close().await;
    app.stop().await
}

#[tokio::test]
async fn delivery_reaches_every_session_of_every_member() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[&bob]).await?;
    let (mut bob_tab1, _) = app.ws(&bob.access).await?;
    let (mut bob_tab2, _) = app.ws(&bob.access).await?;
    let (mut ann_ws, _) = app.ws(&ann.access).await?;
    let sent = app.send(&ann, &chat, "to everyone").await?;
    for ws in [&mut bob_tab1, &mut bob_tab2, &mut ann_ws] {
        assert_eq!(ws.next_of("message").await?["message"]["id"], sent["id"]);
    }
    let count = eventually("metrics to count deliveries", || async {
        let metrics = app.metrics().await?;
        Ok(metrics
            .lines()
            .find(|l| l.starts_with("harmony_messages_delivered_total"))
            .map(str::to_owned))
    })
    .await?;
    assert!(count.ends_with(" 3"), "{count}");
    app.stop().await
}

#[tokio::test]
async fn a_member_added_after_ready_gets_earlier_messages_by_resume() -> R {
    let app = TestApp::spawn().await?;
    let (ann, bob) = (app.register("ann").await?, app.register("bob").await?);
    let chat = app.group(&ann, "g", &[]).await?;
    let (mut ws, _) = app.ws(&bob.access).await?;
    app.send(&ann, &chat, "before bob").await?;
    app.post(
        &format!("/api/v1/chats/{chat}/members"),
        &ann.access,
        json!({"user_id": bob.id}),
    )
    .await?;
    // Sent at once after the join: it may be fanned out before bob's session is subscribed.
    app.send(&ann, &chat, "right after").await?;
    ws.next_of("member_added").await?;
    ws.send(json!({"type": "resume", "chats": {chat.clone(): 0}}))
        .await?;
    let mut seqs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Three entries: ann's message, the timeline line "bob joined" (written by the projector,
    // so before or after "right after"), and "right after".
    while seqs.len() < 3 && tokio::time::Instant::now() < deadline {
        let frame = ws.next().await?;
        if frame["type"] == "message" {
            seqs.push(seq(&frame));
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3], "each entry once, whether live or resumed");
    ws.expect_silence(Duration::from_millis(300), &["resumed"])
        .await?;
    app.send(&ann, &chat, "later").await?;
    assert_eq!(seq(&ws.next_of("message").await?), 4);
    ws.close().await;
    app.stop().await
}
