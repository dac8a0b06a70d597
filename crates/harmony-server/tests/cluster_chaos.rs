//! Chaos: two api nodes, two gateways and every worker as real `harmony` processes, with
//! senders retrying through both api nodes and clients resuming from their own last seq on both
//! gateways, while Redis is flushed (restarted empty) twice and the sink, the fan-out, a gateway
//! and an api node are killed with -9, the broker is killed with -9 and PostgreSQL is stopped at
//! once, in turn. Afterwards every acknowledged message is in history exactly once, the chat's
//! seqs are 1..=n, and every client got every message, never one twice in a session.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::load::{history_holds, ids};
use harmony_testkit::{TestApp, TestUser};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{watch, RwLock};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_harmony"))
}

/// Nodes that are killed and started again on the same address.
type Slots = Arc<RwLock<Vec<Arc<TestApp>>>>;

async fn start(
    cluster: &TestCluster,
    roles: &str,
    listen: Option<&str>,
) -> anyhow::Result<TestApp> {
    let mut env = cluster.env(roles);
    if let Some(addr) = listen {
        env.push(("HARMONY_LISTEN".into(), addr.to_owned()));
    }
    TestApp::process(bin(), &env).await
}

/// Kills the node in `slots[i]` with -9 and starts the same roles on the same address. Senders
/// and clients may hold the old node a moment longer: their requests to it fail, and they retry.
async fn crash(cluster: &TestCluster, slots: &Slots, i: usize, roles: &str) -> anyhow::Result<()> {
    let old = slots.read().await[i].clone();
    let pid = old
        .pid()
        .ok_or_else(|| anyhow::anyhow!("not a process node"))?;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    anyhow::ensure!(killed.success(), "kill -9 {pid} failed");
    // Until the kernel has closed its socket, the address is not free.
    while tokio::net::TcpStream::connect(old.addr).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new = Arc::new(start(cluster, roles, Some(&old.addr.to_string())).await?);
    slots.write().await[i] = new;
    Ok(())
}

/// Sends `count` messages, each retried with its `client_msg_id` until acknowledged, every retry
/// through the other api node. Returns the acknowledged messages.
async fn sender(
    apis: Slots,
    user: TestUser,
    chat: String,
    who: usize,
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut acked = Vec::new();
    for n in 0..count {
        let key = format!("s{who}-{n}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut attempt = who;
        loop {
            let app = apis.read().await[attempt % 2].clone();
            let reply = app
                .post(
                    &format!("/api/v1/chats/{chat}/messages"),
                    &user.access,
                    json!({"content": key, "client_msg_id": key}),
                )
                .await;
            match reply {
                Ok(r) if r.status == StatusCode::CREATED => {
                    acked.push(r.body);
                    break;
                }
                Ok(r)
                    if r.status.is_client_error() && r.status != StatusCode::TOO_MANY_REQUESTS =>
                {
                    anyhow::bail!("{key} refused: {r:?}")
                }
                _ if tokio::time::Instant::now() > deadline => {
                    anyhow::bail!("{key} never acknowledged")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
            attempt += 1;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    Ok(acked)
}

/// What a client saw over all its sessions.
#[derive(Default)]
struct Seen {
    ids: HashMap<i64, String>,
    /// Messages a session sent twice.
    repeated: Vec<i64>,
}

impl Seen {
    /// The last seq before the first one missing: where a resume starts.
    fn contiguous(&self) -> i64 {
        let mut n = 0;
        while self.ids.contains_key(&(n + 1)) {
            n += 1;
        }
        n
    }
}

/// A client: connects to a gateway (its own first, the other when that fails), resumes from its
/// last contiguous seq, resumes again on every gap a frame's `prev_seq` shows, reconnects when
/// the session ends; stops once it holds 1..=total.
async fn client(
    gateways: Slots,
    user: TestUser,
    chat: String,
    first: usize,
    total: watch::Receiver<Option<i64>>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut attempt = first;
    loop {
        let done = |seen: &Seen| total.borrow().is_some_and(|t| seen.contiguous() >= t);
        if done(&seen) {
            return Ok(seen);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} never caught up: holds 1..={}, total {:?}",
            user.username,
            seen.contiguous(),
            *total.borrow()
        );
        let gateway = gateways.read().await[attempt % 2].clone();
        attempt += 1;
        let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(Duration::from_secs(5), gateway.ws(&user.access)).await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut this_session = BTreeSet::new();
        if ws
            .send(json!({"type": "resume", "chats": {chat.clone(): seen.contiguous()}}))
            .await
            .is_err()
        {
            continue;
        }
        loop {
            if done(&seen) {
                ws.close().await;
                return Ok(seen);
            }
            let frame = match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
                Err(_) => continue,  // quiet: check whether we are done
                Ok(Err(_)) => break, // closed or failed: reconnect
                Ok(Ok(frame)) => frame,
            };
            if frame["type"] != "message" {
                continue;
            }
            let seq = frame["message"]["seq"].as_i64().unwrap_or(-1);
            if !this_session.insert(seq) {
                seen.repeated.push(seq);
            }
            seen.ids.insert(
                seq,
                frame["message"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            let prev = frame["prev_seq"].as_i64().unwrap_or(0);
            if prev > seen.contiguous()
                && ws
                    .send(json!({"type": "resume", "chats": {chat.clone(): seen.contiguous()}}))
                    .await
                    .is_err()
            {
                break;
            }
        }
    }
}

#[tokio::test]
async fn every_message_once_in_order_everywhere_while_parts_fail_in_turn() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start().await?;
    let _events = start(&cluster, "projector,relay", None).await?;
    let apis: Slots = Arc::new(RwLock::new(vec![
        Arc::new(start(&cluster, "api", None).await?),
        Arc::new(start(&cluster, "api", None).await?),
    ]));
    let gateways: Slots = Arc::new(RwLock::new(vec![
        Arc::new(start(&cluster, "gateway", None).await?),
        Arc::new(start(&cluster, "gateway", None).await?),
    ]));
    let workers: Slots = Arc::new(RwLock::new(vec![
        Arc::new(start(&cluster, "fanout", None).await?),
        Arc::new(start(&cluster, "sink", None).await?),
    ]));
    let api = apis.read().await[0].clone();
    let (ann, bob, cat) = (
        api.register("ann").await?,
        api.register("bob").await?,
        api.register("cat").await?,
    );
    let chat = api.group(&ann, "chaos", &[&bob, &cat]).await?;

    let (total_tx, total_rx) = watch::channel(None);
    let clients: Vec<_> = [(bob.clone(), 0), (cat.clone(), 1)]
        .into_iter()
        .map(|(user, first)| {
            tokio::spawn(client(
                gateways.clone(),
                user,
                chat.clone(),
                first,
                total_rx.clone(),
            ))
        })
        .collect();
    let senders: Vec<_> = (0..2)
        .map(|who| tokio::spawn(sender(apis.clone(), ann.clone(), chat.clone(), who, 60)))
        .collect();

    let pause = || tokio::time::sleep(Duration::from_millis(1500));
    pause().await;
    cluster.redis.restart().await?;
    pause().await;
    crash(&cluster, &workers, 1, "sink").await?;
    pause().await;
    crash(&cluster, &workers, 0, "fanout").await?;
    pause().await;
    crash(&cluster, &gateways, 0, "gateway").await?;
    pause().await;
    crash(&cluster, &apis, 0, "api").await?;
    pause().await;
    cluster.broker.restart().await?;
    pause().await;
    cluster.postgres.stop()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.postgres.start_again()?;
    pause().await;
    cluster.redis.restart().await?;

    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await??);
    }
    let n = acked.len() as i64;
    total_tx.send(Some(n))?;
    let api = apis.read().await[1].clone();
    let history = history_holds(&api, &bob, &chat, &acked).await?;
    let seqs: Vec<i64> = history.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "every 201 once, dense from 1"
    );
    let by_seq: HashMap<i64, String> = seqs.iter().copied().zip(ids(&history)).collect();
    for (c, name) in clients.into_iter().zip(["bob", "cat"]) {
        let seen = c.await??;
        assert!(
            seen.repeated.is_empty(),
            "{name} was sent seqs {:?} twice in one session",
            seen.repeated
        );
        assert_eq!(
            seen.ids, by_seq,
            "{name} got exactly history's messages, at their seqs"
        );
    }
    Ok(())
}
