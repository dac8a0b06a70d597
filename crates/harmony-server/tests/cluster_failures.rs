//! The guarantees in the cluster shape when parts fail or race: concurrent api nodes, a sink or
//! a gateway killed with -9, Redis restarted, the broker killed, the message store down. Every
//! service is private to the test; killed nodes are real `harmony` processes.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::load::{history_holds, ids};
use harmony_testkit::postgres::PrivatePostgres;
use harmony_testkit::{eventually, TestApp, TestUser};
use serde_json::{json, Value};
use tokio::sync::Mutex;

type R = anyhow::Result<()>;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_harmony"))
}

/// Sends `count` messages from `tasks` concurrent senders; returns the acknowledged ones. Sends
/// that fail are retried with the same client_msg_id until acknowledged or `deadline` passes.
async fn send_load(
    app: Arc<TestApp>,
    user: TestUser,
    chat: String,
    tasks: usize,
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (app, user, chat, acked) = (app.clone(), user.clone(), chat.clone(), acked.clone());
        handles.push(tokio::spawn(async move {
            for i in 0..count / tasks {
                let key = format!("{t}-{i}");
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let reply = app
                        .post(
                            &format!("/api/v1/chats/{chat}/messages"),
                            &user.access,
                            json!({"content": key, "client_msg_id": key}),
                        )
                        .await;
                    match reply {
                        Ok(r) if r.status == reqwest::StatusCode::CREATED => {
                            acked.lock().await.push(r.body);
                            break;
                        }
                        Ok(r) if r.status.is_client_error() => anyhow::bail!("refused: {r:?}"),
                        _ if tokio::time::Instant::now() > deadline => {
                            anyhow::bail!("{key} never acknowledged")
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let acked = acked.lock().await.clone();
    Ok(acked)
}

#[tokio::test]
async fn two_api_nodes_sending_into_one_chat_agree_on_one_order() -> R {
    let cluster = TestCluster::start().await?;
    let api_a = Arc::new(cluster.node("api").await?);
    let api_b = Arc::new(cluster.node("api").await?);
    let _workers = cluster.node("fanout,sink,projector,relay").await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api_a.register("ann").await?, api_a.register("bob").await?);
    let chat = api_a.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    let (a, b) = tokio::join!(
        send_load(api_a.clone(), ann.clone(), chat.clone(), 2, 20),
        send_load(api_b.clone(), bob.clone(), chat.clone(), 2, 20)
    );
    let acked: Vec<Value> = a?.into_iter().chain(b?).collect();
    let mut live = Vec::new();
    while live.len() < acked.len() {
        let frame = ws.next_of("message").await?;
        live.push(frame["message"].clone());
    }
    let live_seqs: Vec<i64> = live.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        live_seqs,
        (1..=acked.len() as i64).collect::<Vec<_>>(),
        "live order is seq order, and the seqs are dense from 1"
    );
    let history = history_holds(&api_b, &bob, &chat, &acked).await?;
    assert_eq!(
        ids(&history),
        ids(&live),
        "history and live agree on the order"
    );
    ws.close().await;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    ws.send(json!({"type": "resume", "chats": {chat.clone(): 0}}))
        .await?;
    let mut resumed = Vec::new();
    loop {
        let frame = ws.next().await?;
        match frame["type"].as_str() {
            Some("message") => resumed.push(frame["message"].clone()),
            Some("resumed") => break,
            _ => {}
        }
    }
    assert_eq!(ids(&resumed), ids(&live), "resume agrees on the order");
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn a_sink_killed_under_load_leaves_every_message_stored_exactly_once() -> R {
    let cluster = TestCluster::start().await?;
    let api = Arc::new(cluster.node("api,fanout,projector,relay").await?);
    let sink = cluster.process(bin(), "sink").await?;
    let ann = api.register("ann").await?;
    let chat = api.group(&ann, "g", &[]).await?;
    let load = tokio::spawn(send_load(api.clone(), ann.clone(), chat.clone(), 4, 200));
    tokio::time::sleep(Duration::from_millis(300)).await;
    sink.kill9().await?;
    let acked = load.await??;
    let _sink = cluster.process(bin(), "sink").await?;
    history_holds(&api, &ann, &chat, &acked).await?;
    Ok(())
}

#[tokio::test]
async fn clients_of_a_killed_gateway_resume_on_another_without_a_gap() -> R {
    let cluster = TestCluster::start().await?;
    let api = Arc::new(cluster.node("api,fanout,sink,projector,relay").await?);
    let doomed = cluster.process(bin(), "gateway").await?;
    let survivor = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = doomed.ws(&bob.access).await?;
    let before = api.send(&ann, &chat, "before").await?;
    let seen = ws.next_of("message").await?["message"]["seq"]
        .as_i64()
        .unwrap_or(-1);
    assert_eq!(Some(seen), before["seq"].as_i64());
    doomed.kill9().await?;
    let during = send_load(api.clone(), ann.clone(), chat.clone(), 1, 10).await?;
    let (mut ws, _) = survivor.ws(&bob.access).await?;
    ws.send(json!({"type": "resume", "chats": {chat.clone(): seen}}))
        .await?;
    let mut got: Vec<Value> = Vec::new();
    while got.len() < during.len() {
        let frame = ws.next_of("message").await?;
        got.push(frame["message"].clone());
    }
    ws.expect_silence(Duration::from_millis(500), &["resumed", "member_added"])
        .await?;
    let mut got_ids = ids(&got);
    let mut want = ids(&during);
    got_ids.sort();
    want.sort();
    assert_eq!(
        got_ids, want,
        "exactly the messages sent while bob was away"
    );
    Ok(())
}

#[tokio::test]
async fn a_redis_restart_under_load_loses_nothing_and_clients_resume() -> R {
    let mut cluster = TestCluster::start().await?;
    let api = Arc::new(cluster.node("api,fanout,sink,projector,relay").await?);
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    let load = tokio::spawn(send_load(api.clone(), ann.clone(), chat.clone(), 2, 60));
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.redis.restart().await?;
    let acked = load.await??;
    history_holds(&api, &bob, &chat, &acked).await?;
    // Bob's session was told to resume (events may have been lost while Redis was away).
    let mut last = 0;
    let mut seen: HashSet<String> = HashSet::new();
    // The load is over: frames stop, or the socket closes. Frames that never stop are a fault.
    let drained_by = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut kinds: HashMap<String, usize> = HashMap::new();
    loop {
        anyhow::ensure!(
            tokio::time::Instant::now() < drained_by,
            "frames kept coming a minute after the load ended: {kinds:?}"
        );
        let next = ws.next().await;
        if let Ok(frame) = &next {
            *kinds
                .entry(frame["type"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        match next {
            Ok(frame) if frame["type"] == "message" => {
                last = last.max(frame["message"]["seq"].as_i64().unwrap_or(0));
                seen.insert(
                    frame["message"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    // Like a client: a session that could not start (Redis still coming back) is retried.
    let mut attempt = 0;
    let mut ws = loop {
        attempt += 1;
        match gateway.ws(&bob.access).await {
            Ok((ws, _)) => break ws,
            Err(e) if attempt < 20 => {
                eprintln!("reconnect {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let first_seq = acked
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .min()
        .unwrap_or(1);
    let from = if seen.is_empty() { first_seq - 1 } else { last };
    ws.send(json!({"type": "resume", "chats": {chat.clone(): from}}))
        .await?;
    let want: HashSet<String> = ids(&acked).into_iter().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !want.is_subset(&seen) && tokio::time::Instant::now() < deadline {
        let frame = ws.next().await?;
        if frame["type"] == "message" {
            seen.insert(
                frame["message"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    assert!(
        want.is_subset(&seen),
        "bob is missing {} messages",
        want.difference(&seen).count()
    );
    Ok(())
}

#[tokio::test]
async fn a_broker_crash_never_yields_a_201_for_an_unwritten_message() -> R {
    let mut cluster = TestCluster::start().await?;
    let api = Arc::new(cluster.node("api,fanout,sink,projector,relay").await?);
    let ann = api.register("ann").await?;
    let chat = api.group(&ann, "g", &[]).await?;
    let load = tokio::spawn(send_load(api.clone(), ann.clone(), chat.clone(), 2, 40));
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.broker.restart().await?;
    let acked = load.await??;
    history_holds(&api, &ann, &chat, &acked).await?;
    Ok(())
}

#[tokio::test]
async fn with_the_message_store_down_live_delivery_goes_on_and_the_sink_catches_up() -> R {
    let cluster = TestCluster::with_separate_history().await?;
    let api = Arc::new(cluster.node("api,fanout,sink,projector,relay").await?);
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    let history_pg = separate_history(&cluster)?;
    history_pg.stop()?;
    let acked = send_load(api.clone(), ann.clone(), chat.clone(), 1, 10).await?;
    for m in &acked {
        assert_eq!(
            ws.next_of("message").await?["message"]["id"],
            m["id"],
            "live delivery goes on"
        );
    }
    let down = api
        .get(&format!("/api/v1/chats/{chat}/messages"), &bob.access)
        .await?;
    assert_eq!(
        (down.status.as_u16(), down.code()),
        (503, Some("unavailable")),
        "history says it is unavailable"
    );
    history_pg.start_again()?;
    history_holds(&api, &bob, &chat, &acked).await?;
    ws.close().await;
    Ok(())
}

/// The message store's own PostgreSQL (`TestCluster::with_separate_history`), to stop and start.
fn separate_history(cluster: &TestCluster) -> anyhow::Result<&PrivatePostgres> {
    cluster
        .history
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no separate history"))
}

/// A node with every writing role and a gateway-only node, on `cluster`, with `tweak` applied
/// to both nodes' cluster settings.
async fn writer_and_gateway(
    cluster: &TestCluster,
    tweak: impl Fn(&mut harmony_server::config::ClusterConfig),
) -> anyhow::Result<(Arc<TestApp>, TestApp)> {
    let node = |roles: &'static str| {
        TestApp::spawn_with(|config| {
            cluster.configure(config);
            config.server.roles = roles.to_owned();
            tweak(&mut config.cluster);
        })
    };
    let api = Arc::new(node("api,fanout,sink,projector,relay").await?);
    Ok((api, node("gateway").await?))
}

/// A resume that needs PostgreSQL (the sequencer's table, the truth behind the Redis window)
/// while it is down must not answer `resumed` (that frame promises everything missed was sent):
/// the session closes with 1011, and once PostgreSQL is back a new session resumes everything.
#[tokio::test]
async fn a_resume_the_truth_cannot_serve_closes_with_1011_and_succeeds_later() -> R {
    let cluster = TestCluster::start().await?;
    // A window of 10: the first of 15 messages are only in PostgreSQL.
    let (api, gateway) = writer_and_gateway(&cluster, |c| c.window_size = 10).await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let acked = send_load(api.clone(), ann.clone(), chat.clone(), 1, 15).await?;
    history_holds(&api, &bob, &chat, &acked).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    cluster.postgres.stop()?;
    ws.send(json!({"type": "resume", "chats": {chat.clone(): 0}}))
        .await?;
    assert_eq!(
        ws.until_closed().await?,
        harmony_testkit::ws::Ended::Closed(Some(1011)),
        "a resume with a hole must not end in resumed"
    );
    cluster.postgres.start_again()?;
    // The pool may need a moment to reach the restarted database: a session it fails closes again.
    let seqs = eventually("a resume once PostgreSQL is back", || {
        resume_from_zero(&gateway, &bob, &chat)
    })
    .await?;
    assert_eq!(seqs, seqs_of(&acked), "every message once, in order");
    Ok(())
}

/// A new session on `gateway` that resumes `chat` from 0: the seqs it is sent before
/// `resumed`, or `None` when the session ended first.
async fn resume_from_zero(
    gateway: &TestApp,
    user: &TestUser,
    chat: &str,
) -> anyhow::Result<Option<Vec<i64>>> {
    let (mut ws, _) = gateway.ws(&user.access).await?;
    ws.send(json!({"type": "resume", "chats": {chat: 0}}))
        .await?;
    let mut seqs = Vec::new();
    loop {
        let Ok(frame) = ws.next().await else {
            return Ok(None);
        };
        match frame["type"].as_str() {
            Some("message") => seqs.push(frame["message"]["seq"].as_i64().unwrap_or(-1)),
            Some("resumed") => return Ok(Some(seqs)),
            _ => anyhow::bail!("unexpected frame {frame}"),
        }
    }
}

fn seqs_of(messages: &[Value]) -> Vec<i64> {
    messages.iter().filter_map(|m| m["seq"].as_i64()).collect()
}

/// Resume never needs the message store while the chat's messages are in the window or the
/// sequencer's table: a chat's seqs are dense from 1, so the window vouches for itself, even for
/// a chat whose partition's first message belonged to another chat.
#[tokio::test]
async fn resume_needs_no_message_store() -> R {
    let cluster = TestCluster::with_separate_history().await?;
    let (api, gateway) = writer_and_gateway(&cluster, |c| c.partitions = 1).await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let other = api.group(&ann, "other", &[&bob]).await?;
    api.send(&ann, &other, "first in the partition").await?;
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let acked = send_load(api.clone(), ann.clone(), chat.clone(), 1, 3).await?;
    assert_eq!(seqs_of(&acked), [1, 2, 3], "each chat counts from 1");
    history_holds(&api, &bob, &chat, &acked).await?;
    let history_pg = separate_history(&cluster)?;
    history_pg.stop()?;
    assert_eq!(
        resume_from_zero(&gateway, &bob, &chat).await?,
        Some(seqs_of(&acked)),
        "every message once, in order, with the store down"
    );
    history_pg.start_again()?;
    Ok(())
}
