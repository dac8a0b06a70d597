//! S6, gateway kill: clients on one gateway of a [`Bench`] cluster, `kill -9` of it under load;
//! each client reconnects to the other gateway as the web UI does, resumes, and must end with
//! every message exactly once (checked by following each chat's `prev_seq` chain).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use harmony_testkit::TestUser;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::cluster::Bench;
use crate::conn::{self, Sources, Target};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Failover {
    pub clients: usize,
    pub resumed: usize,
    /// Kill → `resumed`, ms: p50, p99, max (all clients).
    pub resume_ms: [f64; 3],
    pub messages: usize,
    pub gaps: usize,
    pub duplicates: usize,
    /// Connections the kernel dropped for a full accept queue, from the kill to the end.
    pub listen_overflows: u64,
    /// Kill → first `ready` on the survivor, ms: p50, p99, max (the rest is the resume).
    pub ready_ms: [f64; 3],
    /// Sessions the survivor opened, and attempts that got none.
    pub sessions_opened: usize,
    pub failed_attempts: usize,
}

/// One client's view: where each chat started, and each message received as seq → prev_seq
/// (cluster seqs are partition offsets: only the `prev_seq` chain tells a gap).
#[derive(Default)]
struct Log {
    start: HashMap<String, i64>,
    got: HashMap<String, HashMap<i64, i64>>,
    /// (chat, seq) received on the current connection: a duplicate is one sent twice on one
    /// session. After a reconnect the client resumes from the end of its unbroken chain and may
    /// be sent again what it holds above it, by its own request (a real client keys by seq).
    this_session: HashSet<(String, i64)>,
    duplicates: usize,
    /// Sessions opened on the survivor (more than one when it closed one before `resumed`).
    opened: usize,
    /// Attempts on the survivor that got no session (refused, timed out, closed before `ready`).
    failed: usize,
    /// When the first session on the survivor was ready.
    first_ready: Option<Instant>,
}

impl Log {
    fn ready(&mut self, ready: &str) -> anyhow::Result<BTreeMap<String, i64>> {
        self.this_session.clear();
        let v: serde_json::Value = serde_json::from_str(ready)?;
        let mut resume = BTreeMap::new();
        for chat in v["chats"].as_array().context("ready without chats")? {
            let id = chat["id"].as_str().unwrap_or_default().to_owned();
            let head = chat["last_seq"].as_i64().unwrap_or(0);
            self.start.entry(id.clone()).or_insert(head);
            resume.insert(id.clone(), self.contiguous(&id));
        }
        Ok(resume)
    }

    /// The last seq of the unbroken chain from where the chat started.
    fn contiguous(&self, chat: &str) -> i64 {
        let mut at = self.start.get(chat).copied().unwrap_or(0);
        if let Some(got) = self.got.get(chat) {
            let next: HashMap<i64, i64> = got.iter().map(|(seq, prev)| (*prev, *seq)).collect();
            while let Some(seq) = next.get(&at) {
                at = *seq;
            }
        }
        at
    }

    fn message(&mut self, text: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        if v["type"] != "message" {
            return;
        }
        let chat = v["message"]["chat_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let seq = v["message"]["seq"].as_i64().unwrap_or(-1);
        let start = self.start.get(&chat).copied().unwrap_or(0);
        let got = self.got.entry(chat.clone()).or_default();
        // An unknown prev_seq (the chat's first message, or a window Redis lost) cannot be
        // checked: it links to the highest seq below it.
        let prev = v["prev_seq"].as_i64().unwrap_or_else(|| {
            got.keys()
                .copied()
                .filter(|s| *s < seq)
                .max()
                .unwrap_or(start)
                .max(start)
        });
        if !self.this_session.insert((chat, seq)) {
            self.duplicates += 1;
        }
        got.insert(seq, prev);
    }

    fn complete(&self, heads: &HashMap<String, i64>) -> bool {
        self.start.keys().all(|chat| {
            let head = heads.get(chat).copied().unwrap_or(0);
            head <= self.start[chat] || self.contiguous(chat) >= head
        })
    }

    /// The first chat with a break, as start, final head and the (seq, prev_seq) received: for
    /// the report, so a fault can be looked into.
    fn first_gap(&self, heads: &HashMap<String, i64>) -> Option<(String, String)> {
        let mut one = Log::default();
        for (chat, start) in &self.start {
            one.start = HashMap::from([(chat.clone(), *start)]);
            one.got = self
                .got
                .get(chat)
                .map(|g| HashMap::from([(chat.clone(), g.clone())]))
                .unwrap_or_default();
            if one.gaps(heads) > 0 {
                let mut got: Vec<(i64, i64)> = self
                    .got
                    .get(chat)
                    .into_iter()
                    .flatten()
                    .map(|(s, p)| (*s, *p))
                    .collect();
                got.sort_unstable();
                let what = format!(
                    "chat {chat}: start {start}, head {:?}, got {got:?}",
                    heads.get(chat)
                );
                return Some((chat.clone(), what));
            }
        }
        None
    }

    /// Breaks in the chains: messages whose predecessor never arrived, and chats whose chain
    /// does not reach the final head.
    fn gaps(&self, heads: &HashMap<String, i64>) -> usize {
        self.start
            .iter()
            .map(|(chat, start)| {
                let empty = HashMap::new();
                let got = self.got.get(chat).unwrap_or(&empty);
                let orphans = got
                    .values()
                    .filter(|prev| **prev != *start && !got.contains_key(*prev))
                    .count();
                let head = heads.get(chat).copied().unwrap_or(0);
                let short = head > *start && self.contiguous(chat) < head;
                orphans + usize::from(short && orphans == 0)
            })
            .sum()
    }
}

/// The web UI's reconnect delay: 250 ms doubling per failed attempt up to 10 s, each scaled by
/// a random 0.5 to 1 (so a gateway's clients do not all come back in the same instant).
fn backoff(attempt: u32) -> Duration {
    let base = (250u64 << attempt.min(6)).min(10_000);
    Duration::from_millis(base).mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// One S6 client: connected to `first`; when that connection dies, reconnects to `second` as
/// the web UI does (with its backoff), resumes, and records when `resumed` arrived. Ends once
/// it resumed and holds everything up to the final heads (or at the deadline).
async fn client(
    first: Target,
    second: Target,
    token: String,
    sources: Arc<Sources>,
    connected: Arc<AtomicUsize>,
    heads: watch::Receiver<Option<HashMap<String, i64>>>,
    deadline: Instant,
) -> anyhow::Result<(Log, Option<Instant>)> {
    let mut log = Log::default();
    let (mut ws, ready) = conn::open(&first, &sources, Some(&token)).await?;
    log.ready(ready.as_deref().unwrap_or_default())?;
    connected.fetch_add(1, Ordering::Relaxed);
    let mut resumed_at = None;
    let mut heads = heads;
    let mut on_second = false;
    loop {
        if let Some(final_heads) = heads.borrow().as_ref() {
            if resumed_at.is_some() && log.complete(final_heads) {
                return Ok((log, resumed_at));
            }
        }
        if Instant::now() > deadline {
            return Ok((log, resumed_at));
        }
        tokio::select! {
            frame = tokio::time::timeout(Duration::from_millis(200), ws.next()) => match frame {
                Err(_) => {}
                Ok(Some(Ok(Message::Text(text)))) => {
                    if text.as_str() == r#"{"type":"resumed"}"# {
                        resumed_at.get_or_insert_with(Instant::now);
                    } else {
                        log.message(text.as_str());
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    // Before `resumed` the survivor may close a session it cannot serve yet
                    // (1011: a store failed under the storm); the client comes back, as the
                    // web UI does. After it, a drop is a fault.
                    anyhow::ensure!(
                        resumed_at.is_none() || !on_second,
                        "the surviving gateway dropped a resumed client"
                    );
                    on_second = true;
                    let mut attempt = 0;
                    ws = loop {
                        tokio::time::sleep(backoff(attempt)).await;
                        match conn::open(&second, &sources, Some(&token)).await {
                            Ok((ws, ready)) => {
                                log.opened += 1;
                                log.first_ready.get_or_insert_with(Instant::now);
                                let resume = log.ready(ready.as_deref().unwrap_or_default())?;
                                let mut ws = ws;
                                let frame = serde_json::json!({"type": "resume", "chats": resume});
                                ws.send(Message::Text(frame.to_string().into())).await?;
                                break ws;
                            }
                            Err(_) if Instant::now() < deadline => {
                                log.failed += 1;
                                attempt += 1;
                            }
                            Err(e) => return Err(e),
                        }
                    };
                }
            },
            _ = heads.changed() => {}
        }
    }
}

/// S6: `clients` sessions (of `users`, in chats of `chat_size`) on the first gateway; messages
/// at `rate`/s; after `before_kill`, `kill -9` of that gateway.
#[allow(clippy::too_many_arguments)]
pub async fn gateway_kill(
    mut bench: Bench,
    users: &[TestUser],
    chat_size: usize,
    clients: usize,
    rate: f64,
    before_kill: Duration,
    sources: Arc<Sources>,
) -> anyhow::Result<Failover> {
    anyhow::ensure!(bench.gateways.len() >= 2, "S6 needs two gateways");
    let chats = crate::mix::chats(&bench.writer, users, chat_size).await?;
    let members: Vec<&TestUser> = chats.iter().flat_map(|(_, m)| m.iter()).collect();
    let first = crate::harmony::target(&bench.gateways[0]);
    let second = crate::harmony::target(&bench.gateways[1]);
    let (heads_tx, heads_rx) = watch::channel(None);
    let deadline = Instant::now() + Duration::from_secs(120);
    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let token = members[i % members.len()].access.clone();
        tasks.push(tokio::spawn(client(
            first.clone(),
            second.clone(),
            token,
            sources.clone(),
            connected.clone(),
            heads_rx.clone(),
            deadline,
        )));
        // Connect in waves, as clients of a running service do, not all in one instant.
        if i % 64 == 63 {
            while connected.load(Ordering::Relaxed) + 256 < i {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let connecting = Instant::now();
    while connected.load(Ordering::Relaxed) < clients {
        anyhow::ensure!(
            connecting.elapsed() < Duration::from_secs(120),
            "only {} of {clients} clients connected within 120 s",
            connected.load(Ordering::Relaxed)
        );
        if let Some(failed) = tasks.iter().position(tokio::task::JoinHandle::is_finished) {
            let task = tasks.swap_remove(failed);
            task.await??;
            anyhow::bail!("a client ended before the gateway was killed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("  S6: {clients} clients connected; sending, then kill -9 in {before_kill:?}");
    // Sends until told to stop; returns the last acknowledged seq per chat.
    let stop = watch::channel(false);
    let sending = {
        let (client, chats, stop) = (bench.writer.client.clone(), chats.clone(), stop.1.clone());
        let urls: Vec<(String, String, String)> = chats
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    bench.writer.url(&format!("/api/v1/chats/{id}/messages")),
                    m[0].access.clone(),
                )
            })
            .collect();
        tokio::spawn(async move {
            let mut heads: HashMap<String, i64> = HashMap::new();
            let interval = Duration::from_secs_f64(1.0 / rate);
            let started = Instant::now();
            let mut i = 0usize;
            while !*stop.borrow() {
                tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
                let (chat, url, token) = &urls[i % urls.len()];
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({"content": format!("f {i} 0")}))
                    .send()
                    .await?;
                anyhow::ensure!(
                    r.status() == reqwest::StatusCode::CREATED,
                    "send answered {}",
                    r.status()
                );
                let m: serde_json::Value = r.json().await?;
                let seq = m["seq"].as_i64().unwrap_or(0);
                let head = heads.entry(chat.clone()).or_default();
                *head = (*head).max(seq);
                i += 1;
            }
            anyhow::Ok((heads, i))
        })
    };
    tokio::time::sleep(before_kill).await;
    let killed = Instant::now();
    let overflows_before = crate::proc_stats::listen_overflows()?;
    let victim = bench.gateways.remove(0);
    victim.kill9().await?;
    // Keep sending while the clients move over, and a little after.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop.0.send(true);
    let (heads, messages) = sending.await??;
    let _ = heads_tx.send(Some(heads.clone()));
    let mut resume_ms = Vec::with_capacity(clients);
    let mut ready_ms = Vec::with_capacity(clients);
    let (mut sessions_opened, mut failed_attempts) = (0, 0);
    let (mut gaps, mut duplicates) = (0, 0);
    let mut first_gap = None;
    for task in tasks {
        let (log, resumed_at) = task.await??;
        let found = log.gaps(&heads);
        if found > 0 && first_gap.is_none() {
            first_gap = log.first_gap(&heads);
        }
        gaps += found;
        duplicates += log.duplicates;
        sessions_opened += log.opened;
        failed_attempts += log.failed;
        if let Some(at) = log.first_ready {
            ready_ms.push(at.saturating_duration_since(killed).as_secs_f64() * 1000.0);
        }
        if let Some(at) = resumed_at {
            resume_ms.push(at.saturating_duration_since(killed).as_secs_f64() * 1000.0);
        }
    }
    let listen_overflows = crate::proc_stats::listen_overflows()? - overflows_before;
    if let Some((chat, what)) = first_gap {
        eprintln!("  S6 gap: {what}");
        // Where the cluster thinks the chat stands now: a new session's `ready` (the Redis
        // head, which the fanout sets) and the fanout's own counters on the writer node.
        if let Some((_, members)) = chats.iter().find(|(id, _)| *id == chat) {
            let target = crate::harmony::target(&bench.gateways[0]);
            if let Ok((_, ready)) = conn::open(&target, &sources, Some(&members[0].access)).await {
                eprintln!(
                    "  S6 gap: a new session's ready: {}",
                    ready.unwrap_or_default()
                );
            }
        }
        if let Ok(r) = bench
            .writer
            .client
            .get(bench.writer.url("/metrics"))
            .send()
            .await
        {
            let text = r.text().await.unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| l.contains("fanout") && !l.starts_with('#'))
            {
                eprintln!("  S6 gap: writer metrics: {line}");
            }
        }
    }
    let quantiles = |mut ms: Vec<f64>| -> [f64; 3] {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| -> f64 {
            if ms.is_empty() {
                return f64::NAN;
            }
            ms[((ms.len() - 1) as f64 * q).round() as usize]
        };
        [at(0.5), at(0.99), at(1.0)]
    };
    Ok(Failover {
        clients,
        resumed: resume_ms.len(),
        resume_ms: quantiles(resume_ms),
        ready_ms: quantiles(ready_ms),
        sessions_opened,
        failed_attempts,
        messages,
        gaps,
        duplicates,
        listen_overflows,
    })
}
