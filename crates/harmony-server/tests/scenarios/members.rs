//! Members: a removed member changes nothing, racing reactions are one, timeline lines, and
//! targets in chats one is not in.

use std::time::Duration;

use harmony_testkit::{eventually, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

/// A removed member can change nothing and sees no change after the removal; concurrent
/// identical reactions end as one.
pub async fn removed_members_and_racing_reactions(a: &TestApp, b: &TestApp) -> R {
    let [ann, bob, cat] = users(a, ["ann", "bob", "cat"]).await?;
    let chat = a.group(&ann, "g", &[&bob, &cat]).await?;
    let m = a.send(&ann, &chat, "hello").await?;
    let id = m["id"].as_str().unwrap_or_default().to_owned();

    let clicks = (0..8).map(|_| react(b, &cat, &chat, &id, "🔥", true));
    for reply in futures_util::future::join_all(clicks).await {
        assert_status(&reply?, StatusCode::NO_CONTENT, None, "a racing click");
    }
    history_shows(a, &ann, &chat, &id, "one reaction from eight clicks", |m| {
        m["reactions"] == json!([{"emoji": "🔥", "count": 1, "user_ids": [cat.id.as_str()]}])
    })
    .await?;

    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let removed = a
        .delete(
            &format!("/api/v1/chats/{chat}/members/{}", bob.id),
            &ann.access,
        )
        .await?;
    assert_status(&removed, StatusCode::NO_CONTENT, None, "remove bob");
    let reply = react(b, &bob, &chat, &id, "👍", true).await?;
    assert_status(
        &reply,
        StatusCode::NOT_FOUND,
        Some("chat_not_found"),
        "a removed member reacts",
    );
    let reply = edit(a, &ann, &chat, &id, "after bob left", None).await?;
    assert_status(&reply, StatusCode::OK, None, "edit after the removal");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), bob_ws.next()).await;
        let Ok(frame) = frame else { break };
        let frame = frame?;
        assert_ne!(
            frame["type"], "message_changed",
            "a removed member saw a change: {frame}"
        );
    }
    bob_ws.close().await;
    Ok(())
}

/// A member added, a member removed and a rename leave lines in the chat's timeline: entries
/// of its order with a `notice`, in history and live, in that order.
pub async fn timeline_lines(a: &TestApp, b: &TestApp) -> R {
    let [ann, bob, cat] = users(a, ["ann", "bob", "cat"]).await?;
    let chat = a.group(&ann, "g", &[&bob]).await?;
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let members = format!("/api/v1/chats/{chat}/members");
    let added = a
        .post(&members, &ann.access, json!({"user_id": cat.id}))
        .await?;
    assert_status(&added, StatusCode::CREATED, None, "add cat");
    // One line at a time: the projector writes each from its event, in the events' order.
    let line = bob_ws.next_of("message").await?;
    assert_eq!(
        line["message"]["notice"],
        json!({"kind": "member_added", "user_id": cat.id})
    );
    let removed = a
        .delete(&format!("{members}/{}", cat.id), &ann.access)
        .await?;
    assert_status(&removed, StatusCode::NO_CONTENT, None, "remove cat");
    let line = bob_ws.next_of("message").await?;
    assert_eq!(line["message"]["notice"]["kind"], "member_removed");
    let renamed = call(
        a,
        Method::PATCH,
        &format!("/api/v1/chats/{chat}"),
        &ann,
        Some(json!({"name": "the new name"})),
    )
    .await?;
    assert_status(&renamed, StatusCode::OK, None, "rename");
    let line = bob_ws.next_of("message").await?;
    assert_eq!(
        line["message"]["notice"],
        json!({"kind": "renamed", "name": "the new name"})
    );
    assert_eq!(
        line["message"]["author"]["id"],
        ann.id.as_str(),
        "a rename's line is the owner's"
    );

    let all = eventually("three lines in history", || async {
        let all = b.all_history(&bob, &chat).await?;
        Ok((all.len() >= 3).then_some(all))
    })
    .await?;
    let kinds: Vec<&str> = all
        .iter()
        .filter_map(|m| m["notice"]["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["member_added", "member_removed", "renamed"]);
    assert_eq!(all[0]["author"]["id"], cat.id.as_str());
    assert!(
        all[0]["content"]
            .as_str()
            .is_some_and(|c| c.ends_with("joined")),
        "{all:?}"
    );
    bob_ws.close().await;
    Ok(())
}

/// A client that names a message of a chat it is not in (as a reply's original, or as the
/// target of a change made through its own chat) is told there is no such message, and learns
/// nothing of it; the message stays as it was.
pub async fn targets_elsewhere_are_not_found(a: &TestApp, b: &TestApp) -> R {
    let [ann, dan] = users(a, ["ann", "dan"]).await?;
    let theirs = a.group(&ann, "theirs", &[]).await?;
    let secret = a.send(&ann, &theirs, "not for dan").await?;
    let secret_id = secret["id"].as_str().unwrap_or_default().to_owned();
    let mine = b.group(&dan, "mine", &[]).await?;
    let body = json!({"content": "quoting", "reply_to": secret_id});
    let path = format!("/api/v1/chats/{mine}/messages");
    let reply = call(b, Method::POST, &path, &dan, Some(body)).await?;
    let code = Some("message_not_found");
    assert_status(
        &reply,
        StatusCode::NOT_FOUND,
        code,
        "a reply to another chat's message",
    );
    assert!(!serde_json::to_string(&reply.body)?.contains("not for dan"));
    let reply = edit(b, &dan, &mine, &secret_id, "mine now", None).await?;
    assert_status(
        &reply,
        StatusCode::NOT_FOUND,
        code,
        "an edit through another chat",
    );
    let reply = delete(b, &dan, &mine, &secret_id).await?;
    assert_status(
        &reply,
        StatusCode::NOT_FOUND,
        code,
        "a delete through another chat",
    );
    let reply = react(b, &dan, &mine, &secret_id, "👍", true).await?;
    assert_status(
        &reply,
        StatusCode::NOT_FOUND,
        code,
        "a reaction through another chat",
    );
    let reply = edit(b, &dan, &theirs, &secret_id, "mine now", None).await?;
    assert_status(
        &reply,
        StatusCode::NOT_FOUND,
        Some("chat_not_found"),
        "a chat dan is not in",
    );
    let kept = in_history(a, &ann, &theirs, &secret_id).await?;
    assert_eq!(
        (
            kept["content"].as_str(),
            &kept["edited_at"],
            &kept["reactions"]
        ),
        (Some("not for dan"), &Value::Null, &json!([]))
    );
    Ok(())
}
