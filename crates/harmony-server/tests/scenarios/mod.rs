//! Front-door scenarios of message changes (decision record 0004), run on one node
//! (`changes.rs`) and on a cluster with two nodes (`cluster_changes.rs`): `a` and `b` are the
//! two front doors (the same node on a single node). Where the shapes may differ, `Shape` says
//! so: a cluster may place two racing identical reactions both, and only their effect is one.

#![allow(dead_code)] // each test crate that includes these uses some of them

use harmony_testkit::ws::WsClient;
use harmony_testkit::{eventually, Reply, TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub type R = anyhow::Result<()>;

mod changes;
mod members;
mod replies;

pub use changes::changes_live_history_and_resume;
pub use members::{
    removed_members_and_racing_reactions, targets_elsewhere_are_not_found, timeline_lines,
};
pub use replies::replies_and_mentions;

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
