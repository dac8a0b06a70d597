//! Crash safety: `kill -9` the real binary while messages are being sent. After a restart on the
//! same data directory, every acknowledged message is in history exactly once, and the chat's
//! `seq`s run 1, 2, 3, ... with no hole and no repeat.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use harmony_testkit::{eventually, STEP};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

type R = anyhow::Result<()>;

struct Node {
    child: Child,
    base: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start(data_dir: &std::path::Path) -> anyhow::Result<Node> {
    let port = free_port()?;
    let child = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .env("HARMONY_LISTEN", format!("127.0.0.1:{port}"))
        .env("HARMONY_DATA_DIR", data_dir)
        .env("HARMONY_LIMITS__SEND_BURST", "100000")
        .env("HARMONY_LIMITS__SEND_PER_SECOND", "100000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    eventually("the node to become ready", || async {
        Ok(client
            .get(format!("{}/readyz", node.base))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ()))
    })
    .await?;
    Ok(node)
}

/// Registers ann; her access and refresh tokens.
async fn register_ann(client: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let register: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "ann", "password": "password-ann"}))
        .send()
        .await?
        .json()
        .await?;
    let token = |name: &str| register[name].as_str().unwrap_or_default().to_owned();
    Ok((token("access_token"), token("refresh_token")))
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9_exactly_once_without_seq_holes() -> R {
    let dir = tempfile::tempdir()?;
    let mut node = start(dir.path()).await?;
    let client = reqwest::Client::builder().timeout(STEP).build()?;
    let (token, _) = register_ann(&client, &node.base).await?;
    let chat: Value = client
        .post(format!("{}/api/v1/chats", node.base))
        .bearer_auth(&token)
        .json(&json!({"kind": "group", "name": "g"}))
        .send()
        .await?
        .json()
        .await?;
    let chat = chat["id"].as_str().unwrap_or_default().to_owned();

    // Four senders go as fast as they can; each records what was acknowledged with 201, and the
    // key of the send that was in flight when the node died.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let in_flight: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for t in 0..4 {
        let (client, base, token, chat, acked) = (
            client.clone(),
            node.base.clone(),
            token.clone(),
            chat.clone(),
            acked.clone(),
        );
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let sent = client.post(format!("{base}/api/v1/chats/{chat}/messages")).bearer_auth(&token)
                    .json(&json!({"content": format!("{t}-{i}"), "client_msg_id": format!("{t}-{i}")})).send().await;
                let Ok(response) = sent else { break };
                if response.status() != reqwest::StatusCode::CREATED {
                    break;
                }
                let Ok(body) = response.json::<Value>().await else { break };
                acked.lock().await.push(body["id"].as_str().unwrap_or_default().to_owned());
            }
        }));
    }
    // Let some land, then kill -9 in the middle of the stream.
    eventually("some messages to be acknowledged", || async {
        Ok((acked.lock().await.len() >= 150).then_some(()))
    })
    .await?;
    node.child.start_kill()?;
    node.child.wait().await?;
    for sender in senders {
        sender.await?;
    }
    let acked: Vec<String> = acked.lock().await.clone();
    let in_flight: Vec<String> = in_flight.lock().await.clone();
    assert!(acked.len() >= 150);

    let node = start(dir.path()).await?;
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", node.base))
        .json(&json!({"username": "ann", "password": "password-ann"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let history = eventually("the sink to catch up after the restart", || async {
        let all = read_all(&client, &node.base, &token, &chat).await?;
        let ids: HashSet<&str> = all.iter().filter_map(|m| m["id"].as_str()).collect();
        Ok(acked
            .iter()
            .all(|a| ids.contains(a.as_str()))
            .then_some(all))
    })
    .await?;
    let ids: Vec<&str> = history.iter().filter_map(|m| m["id"].as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a message appears twice in history"
    );
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "seq has holes or repeats"
    );
    // A retry of a message committed before the crash is still recognized.
    let retried: Value = client
        .post(format!("{}/api/v1/chats/{chat}/messages", node.base))
        .bearer_auth(&token)
        .json(&json!({"content": "0-0", "client_msg_id": "0-0"}))
        .send()
        .await?
        .json()
        .await?;
    let original = history
        .iter()
        .find(|m| m["client_msg_id"] == "0-0")
        .map(|m| m["id"].clone());
    assert_eq!(Some(retried["id"].clone()), original);
    // Retrying the sends that were in flight at the kill (committed or not) creates each once.
    for key in &in_flight {
        let reply = client
            .post(format!("{}/api/v1/chats/{chat}/messages", node.base))
            .bearer_auth(&token)
            .json(&json!({"content": key, "client_msg_id": key}))
            .send()
            .await?;
        assert_eq!(reply.status(), reqwest::StatusCode::CREATED);
    }
    let known = |k: &String| history.iter().any(|m| m["client_msg_id"] == k.as_str());
    let expected = history.len() + in_flight.iter().filter(|k| !known(k)).count();
    let after = eventually("the retried messages in history", || async {
        let all = read_all(&client, &node.base, &token, &chat).await?;
        Ok((all.len() >= expected).then_some(all))
    })
    .await?;
    let keys: Vec<&str> = after
        .iter()
        .filter_map(|m| m["client_msg_id"].as_str())
        .collect();
    let unique: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(
        (keys.len(), unique.len()),
        (expected, expected),
        "a retried message was duplicated"
    );
    drop(node);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

async fn read_all(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    chat: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut out: Vec<Value> = Vec::new();
    let mut url = format!("{base}/api/v1/chats/{chat}/messages?limit=100");
    loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        let oldest = messages
            .first()
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned);
        out.splice(0..0, messages);
        match (page["has_more"].as_bool(), oldest) {
            (Some(true), Some(oldest)) => {
                url = format!("{base}/api/v1/chats/{chat}/messages?limit=100&before={oldest}")
            }
            _ => return Ok(out),
        }
    }
}

/// A session ended just before a `kill -9` stays ended after the restart: the revocation is in
/// the same commit as the logout's answer, and the restarted node reloads it before serving.
#[tokio::test]
async fn a_logout_survives_kill_9() -> R {
    let dir = tempfile::tempdir()?;
    let mut node = start(dir.path()).await?;
    let client = reqwest::Client::builder().timeout(STEP).build()?;
    let (token, refresh) = register_ann(&client, &node.base).await?;
    let out = client
        .post(format!("{}/api/v1/auth/logout", node.base))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await?;
    assert_eq!(out.status().as_u16(), 204);
    node.child.start_kill()?;
    node.child.wait().await?;

    let node = start(dir.path()).await?;
    let me = client
        .get(format!("{}/api/v1/users/me", node.base))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(
        me.status().as_u16(),
        401,
        "a token of an ended session came back with the restart"
    );
    Ok(())
}
