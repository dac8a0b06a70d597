//! Front-door scenarios of message changes (decision record 0004), run on one node
//! (`changes.rs`) and on a cluster with two nodes (`cluster_changes.rs`): `a` and `b` are the
//! two front doors (the same node on a single node). Where the shapes may differ, `Shape` says
//! so: a cluster may place two racing identical reactions both, and only their effect is one.

#![allow(dead_code)] // each test crate that includes these uses some of them

use std::time::Duration;

use harmony_testkit::ws::WsClient;
use harmony_testkit::{eventually, Reply, TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub type R = anyhow::Result<()>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    SingleNode,
    Cluster,
}

/// Users of one scenario, with names no other scenario on the same cluster uses.
async fn users<const N: usize>(app: &TestApp, names: [&str; N]) -> anyhow::Result<[TestUser; N]> {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::with_capacity(N);
    for name in names {
        out.push(app.register(&format!("{name}{run}")).await?);
    }
    out.try_into()
        .map_err(|_| anyhow::anyhow!("registered a different number of users"))
}

pub fn seq(frame: &Value) -> i64 {
    frame["message"]["seq"]
        .as_i64()
        .or_else(|| frame["change"]["seq"].as_i64())
        .unwrap_or(-1)
}

pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    body: Option<Value>,
) -> anyhow::Result<Reply> {
    app.call(method, path, Some(&user.access), body).await
}

fn message_path(chat: &str, id: &str) -> String {
    format!("/api/v1/chats/{chat}/messages/{id}")
}

pub async fn edit(
    app: &TestApp,
    user: &TestUser,
    chat: &str,
    id: &str,
    content: &str,
    key: Option<&str>,
) -> anyhow::Result<Reply> {
    let body = json!({"content": content, "client_msg_id": key});
    call(
        app,
        Method::PATCH,
        &message_path(chat, id),
        user,
        Some(body),
    )
    .await
}

pub async fn delete(app: &TestApp, user: &TestUser, chat: &str, id: &str) -> anyhow::Result<Reply> {
    call(app, Method::DELETE, &message_path(chat, id), user, None).await
}

pub async fn react(
    app: &TestApp,
    user: &TestUser,
    chat: &str,
    id: &str,
    emoji: &str,
    add: bool,
) -> anyhow::Result<Reply> {
    let path = format!(
        "{}/reactions/{}",
        message_path(chat, id),
        urlencoding(emoji)
    );
    let method = if add { Method::PUT } else { Method::DELETE };
    call(app, method, &path, user, None).await
}

/// Percent-encodes every byte outside the unreserved set.
fn urlencoding(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One message of the chat from history, by id (a page of the newest 100).
pub async fn in_history(
    app: &TestApp,
    user: &TestUser,
    chat: &str,
    id: &str,
) -> anyhow::Result<Value> {
    let all = app.all_history(user, chat).await?;
    all.into_iter()
        .find(|m| m["id"] == id)
        .ok_or_else(|| anyhow::anyhow!("{id} is not in history"))
}

/// The message once history shows it as `check` wants (a cluster's store follows the log).
pub async fn history_shows(
    app: &TestApp,
    user: &TestUser,
    chat: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    eventually(what, || async {
        let m = in_history(app, user, chat, id).await.ok();
        Ok(m.filter(|m| check(m)))
    })
    .await
}

/// Frames of the chat until `resumed`, after asking to resume from `from`.
pub async fn resume(ws: &mut WsClient, chat: &str, from: i64) -> anyhow::Result<Vec<Value>> {
    ws.send(json!({"type": "resume", "chats": {chat: from}}))
        .await?;
    let mut got = Vec::new();
    loop {
        let frame = ws.next().await?;
        match frame["type"].as_str() {
            Some("message" | "message_changed") if frame["chat_id"] == chat => got.push(frame),
            Some("resumed") => return Ok(got),
            _ => {}
        }
    }
}

/// The next `message` or `message_changed` frame.
pub async fn next_entry(ws: &mut WsClient) -> anyhow::Result<Value> {
    loop {
        let frame = ws.next().await?;
        if matches!(frame["type"].as_str(), Some("message" | "message_changed")) {
            return Ok(frame);
        }
    }
}

fn assert_status(reply: &Reply, status: StatusCode, code: Option<&str>, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply:?}");
    if let Some(code) = code {
        assert_eq!(reply.code(), Some(code), "{what}: {reply:?}");
    }
}

/// Edits, reactions and deletes reach a member on the other front door live, as entries of the
/// chat's one order; history shows each message's current state and lists messages only;
/// permissions and the order's refusals hold; a resume from the start replays every entry once,
/// in order, with no deleted content; an edit missed while away arrives on resume.
pub async fn changes_live_history_and_resume(a: &TestApp, b: &TestApp, shape: Shape) -> R {
    let [ann, bob] = users(a, ["ann", "bob"]).await?;
    let chat = a.group(&ann, "g", &[&bob]).await?;
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let first = a.send(&ann, &chat, "first").await?;
    let first_id = first["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(seq(&next_entry(&mut bob_ws).await?), 1);

    // An edit is the chat's next entry; a retry with its key is the same edit.
    let edited = edit(a, &ann, &chat, &first_id, "first, edited", Some("e-1")).await?;
    assert_status(&edited, StatusCode::OK, None, "edit");
    assert_eq!(
        (edited.body["seq"].as_i64(), edited.str("/kind")),
        (Some(2), "edit".to_owned())
    );
    let retry = edit(a, &ann, &chat, &first_id, "first, edited", Some("e-1")).await?;
    assert_eq!(
        retry.body["id"], edited.body["id"],
        "a retried edit is one edit"
    );
    let live = next_entry(&mut bob_ws).await?;
    assert_eq!(live["type"], "message_changed");
    assert_eq!(
        (
            live["prev_seq"].as_i64(),
            live["change"]["content"].as_str()
        ),
        (Some(1), Some("first, edited"))
    );
    assert_eq!(live["change"]["target_id"], first_id.as_str());

    // Reactions: a set per emoji; asking twice is done once.
    for (user, app) in [(&bob, b), (&bob, b), (&ann, a)] {
        let reply = react(app, user, &chat, &first_id, "👍", true).await?;
        assert_status(&reply, StatusCode::NO_CONTENT, None, "react");
    }
    let shown = history_shows(b, &bob, &chat, &first_id, "two reactions", |m| {
        m["reactions"][0]["count"] == 2
    })
    .await?;
    assert_eq!(shown["content"], "first, edited");
    assert!(shown["edited_at"].is_string(), "{shown}");
    assert_eq!(
        shown["reactions"][0]["user_ids"],
        json!([bob.id.as_str(), ann.id.as_str()])
    );
    let reply = react(b, &bob, &chat, &first_id, "👍", false).await?;
    assert_status(&reply, StatusCode::NO_CONTENT, None, "unreact");
    history_shows(b, &bob, &chat, &first_id, "bob's reaction gone", |m| {
        m["reactions"] == json!([{"emoji": "👍", "count": 1, "user_ids": [ann.id.as_str()]}])
    })
    .await?;
    let bad = react(b, &bob, &chat, &first_id, "abc", true).await?;
    assert_status(
        &bad,
        StatusCode::BAD_REQUEST,
        Some("validation_failed"),
        "not an emoji",
    );

    // Permissions: only the author edits; a member deletes only their own; the owner any.
    let theirs = edit(b, &bob, &chat, &first_id, "mine now", None).await?;
    assert_status(
        &theirs,
        StatusCode::FORBIDDEN,
        Some("not_author"),
        "edit another's",
    );
    let theirs = delete(b, &bob, &chat, &first_id).await?;
    assert_status(
        &theirs,
        StatusCode::FORBIDDEN,
        Some("forbidden"),
        "delete another's",
    );
    let nothing = edit(b, &bob, &chat, "01J00000000000000000000000", "x", None).await?;
    assert_status(
        &nothing,
        StatusCode::NOT_FOUND,
        Some("message_not_found"),
        "no such message",
    );

    let bobs = b.send(&bob, &chat, "bob's secret plan").await?;
    let bobs_id = bobs["id"].as_str().unwrap_or_default().to_owned();
    let reply = edit(b, &bob, &chat, &bobs_id, "bob's secret plan, revised", None).await?;
    assert_status(&reply, StatusCode::OK, None, "edit own");
    for _ in 0..2 {
        let reply = delete(a, &ann, &chat, &bobs_id).await?;
        assert_status(
            &reply,
            StatusCode::NO_CONTENT,
            None,
            "the owner deletes (twice)",
        );
    }
    let tomb = history_shows(b, &bob, &chat, &bobs_id, "a tombstone", |m| {
        m["deleted_at"].is_string()
    })
    .await?;
    assert_eq!(
        (tomb["content"].as_str(), &tomb["reactions"]),
        (Some(""), &json!([]))
    );
    let late = edit(b, &bob, &chat, &bobs_id, "back", None).await?;
    assert_status(
        &late,
        StatusCode::CONFLICT,
        Some("message_deleted"),
        "edit a deleted one",
    );
    let late = react(b, &bob, &chat, &bobs_id, "🎉", true).await?;
    assert_status(
        &late,
        StatusCode::CONFLICT,
        Some("message_deleted"),
        "react to a deleted one",
    );
    let listed = b.all_history(&bob, &chat).await?;
    assert_eq!(
        listed.len(),
        2,
        "history lists messages, not changes: {listed:?}"
    );

    // Live, bob saw every entry in order; a resume from the start replays them once, in order,
    // and none carries the deleted words.
    let mut live_seqs = vec![1, 2];
    let head = loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), next_entry(&mut bob_ws)).await;
        let Ok(frame) = frame else {
            break *live_seqs.last().unwrap_or(&0);
        };
        live_seqs.push(seq(&frame?));
    };
    assert_eq!(
        live_seqs,
        (1..=head).collect::<Vec<_>>(),
        "dense and in order live"
    );
    bob_ws.close().await;
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let replayed = resume(&mut bob_ws, &chat, 0).await?;
    let seqs: Vec<i64> = replayed.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "once, in order, on resume"
    );
    let kinds: Vec<String> = replayed
        .iter()
        .map(|f| match f["type"].as_str() {
            Some("message") => "message".to_owned(),
            _ => f["change"]["kind"].as_str().unwrap_or("?").to_owned(),
        })
        .collect();
    if shape == Shape::SingleNode {
        assert_eq!(
            kinds,
            ["message", "edit", "react", "react", "unreact", "message", "edit", "delete"],
            "one entry per change that changed something"
        );
    }
    assert!(
        !serde_json::to_string(&replayed)?.contains("secret plan"),
        "a deleted message's words never come back: {replayed:?}"
    );

    // The hidden gap: an edit made while bob is away reaches him on resume, once.
    bob_ws.close().await;
    let reply = edit(a, &ann, &chat, &first_id, "first, third time", None).await?;
    assert_status(&reply, StatusCode::OK, None, "edit while away");
    let (mut bob_ws, _) = b.ws(&bob.access).await?;
    let mut missed = resume(&mut bob_ws, &chat, head).await?;
    if missed.is_empty() {
        // A cluster's fan-out may publish it after the session started: then it comes live.
        missed.push(next_entry(&mut bob_ws).await?);
    }
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["change"]["content"], "first, third time");
    assert_eq!(missed[0]["prev_seq"].as_i64(), Some(head));
    bob_ws.close().await;
    Ok(())
}

/// Replies quote their original as it reads now; mentions of members count per chat until
/// read; `@everyone` counts only from an admin or the owner.
pub async fn replies_and_mentions(a: &TestApp, b: &TestApp) -> R {
    let [ann, bob, cat] = users(a, ["ann", "bob", "cat"]).await?;
    let chat = a.group(&ann, "g", &[&bob, &cat]).await?;
    let text = format!(
        "a question for @{} and @nobody, also @{}.",
        bob.username,
        cat.username.to_uppercase()
    );
    let question = a.send(&ann, &chat, &text).await?;
    let question_id = question["id"].as_str().unwrap_or_default().to_owned();
    let mut mentioned = question["mentions"].as_array().cloned().unwrap_or_default();
    mentioned.sort_by_key(|v| v.as_str().unwrap_or_default().to_owned());
    let mut expected = vec![json!(bob.id), json!(cat.id)];
    expected.sort_by_key(|v| v.as_str().unwrap_or_default().to_owned());
    assert_eq!(mentioned, expected);

    let path = format!("/api/v1/chats/{chat}/messages");
    let answer = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "an answer", "reply_to": question_id})),
    )
    .await?;
    assert_status(&answer, StatusCode::CREATED, None, "reply");
    assert_eq!(answer.body["reply_to"]["id"], question_id.as_str());
    assert_eq!(
        answer.body["reply_to"]["author"]["username"],
        ann.username.as_str()
    );
    let answer_id = answer.str("/id");

    let mention_count = |user: &'static str| {
        let (app, who) = match user {
            "bob" => (b, &bob),
            _ => (b, &cat),
        };
        let chat = chat.clone();
        async move {
            let list = app.get("/api/v1/chats", &who.access).await?;
            let item = list.body["chats"]
                .as_array()
                .or(list.body.as_array())
                .into_iter()
                .flatten()
                .find(|c| c["id"] == chat.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            anyhow::Ok(item["mention_count"].as_u64())
        }
    };
    eventually("bob's mention counted", || async {
        Ok((mention_count("bob").await? == Some(1)).then_some(()))
    })
    .await?;

    // The quote follows the original's edit, then its deletion.
    let reply = edit(
        a,
        &ann,
        &chat,
        &question_id,
        "the question, rephrased",
        None,
    )
    .await?;
    assert_status(&reply, StatusCode::OK, None, "edit the original");
    history_shows(
        b,
        &bob,
        &chat,
        &answer_id,
        "the quote follows the edit",
        |m| m["reply_to"]["excerpt"] == "the question, rephrased",
    )
    .await?;

    // `@everyone` from a member is plain text; from the owner it counts for everyone.
    let plain = b.send(&bob, &chat, "@everyone hello").await?;
    assert_eq!(plain["mentions_everyone"], false);
    let all = a.send(&ann, &chat, "@everyone lunch").await?;
    assert_eq!(all["mentions_everyone"], true);
    eventually("cat's mentions: the question and @everyone", || async {
        Ok((mention_count("cat").await? == Some(2)).then_some(()))
    })
    .await?;
    // Reading clears them.
    let head = all["seq"].as_i64().unwrap_or_default();
    let read = b
        .post(
            &format!("/api/v1/chats/{chat}/read"),
            &cat.access,
            json!({"seq": head}),
        )
        .await?;
    assert_status(&read, StatusCode::NO_CONTENT, None, "read");
    assert_eq!(mention_count("cat").await?, Some(0));

    let reply = delete(a, &ann, &chat, &question_id).await?;
    assert_status(&reply, StatusCode::NO_CONTENT, None, "delete the original");
    let quoted = history_shows(
        b,
        &bob,
        &chat,
        &answer_id,
        "the quote shows the deletion",
        |m| m["reply_to"]["deleted"] == true,
    )
    .await?;
    assert_eq!(quoted["reply_to"]["excerpt"], "");
    let late = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "late", "reply_to": question_id})),
    )
    .await?;
    assert_status(
        &late,
        StatusCode::CONFLICT,
        Some("message_deleted"),
        "reply to a deleted one",
    );
    let unknown = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "x", "reply_to": "01J00000000000000000000000"})),
    )
    .await?;
    assert_status(
        &unknown,
        StatusCode::NOT_FOUND,
        Some("message_not_found"),
        "reply to nothing",
    );

    // One key, one entry: a key that made a message cannot make an edit, nor the reverse.
    let keyed = call(
        b,
        Method::POST,
        &path,
        &bob,
        Some(json!({"content": "keyed", "client_msg_id": "key-1"})),
    )
    .await?;
    assert_status(&keyed, StatusCode::CREATED, None, "a keyed send");
    let keyed_id = keyed.str("/id");
    let reused = edit(b, &bob, &chat, &keyed_id, "keyed, edited", Some("key-1")).await?;
    let code = Some("idempotency_key_reused");
    assert_status(
        &reused,
        StatusCode::CONFLICT,
        code,
        "a send's key on an edit",
    );
    let edited = edit(b, &bob, &chat, &keyed_id, "keyed, edited", Some("key-2")).await?;
    assert_status(&edited, StatusCode::OK, None, "a fresh key");
    let body = json!({"content": "again", "client_msg_id": "key-2"});
    let reused = call(b, Method::POST, &path, &bob, Some(body)).await?;
    assert_status(
        &reused,
        StatusCode::CONFLICT,
        code,
        "an edit's key on a send",
    );
    Ok(())
}

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
