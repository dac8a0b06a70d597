//! S4 chat mix: every user is connected once and is a member of one chat of `chat_size`;
//! messages go to all chats round robin, open loop, through the durable log. Every delivery is
//! checked (per connection and chat: no gap, no duplicate, in order) and timed from when the
//! message was due; each send's acknowledgement is timed too.

use std::time::{Duration, Instant};

use harmony_testkit::{TestApp, TestUser};

use crate::broadcast::Receivers;
use crate::conn::Sources;
use crate::proc_stats::{CpuMem, Usage};
use crate::readers::{body, Readers};

/// Groups `users` into chats of `size` (the first member owns each); returns (chat, members).
pub async fn chats(
    app: &TestApp,
    users: &[TestUser],
    size: usize,
) -> anyhow::Result<Vec<(String, Vec<TestUser>)>> {
    let mut out = Vec::new();
    for (i, members) in users.chunks(size).enumerate() {
        if members.len() < size {
            break;
        }
        let chat = crate::harmony::group(app, &members[0], &format!("mix{i}"), members).await?;
        out.push((chat, members.to_vec()));
    }
    Ok(out)
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Mix {
    pub conns: usize,
    pub chats: usize,
    pub rate: f64,
    pub messages: usize,
    pub deliveries: u64,
    /// Send due → delivery, µs: p50, p99, p99.9.
    pub delivery: [u64; 3],
    /// Send due → 201, µs: p50, p99, p99.9.
    pub ack: [u64; 3],
    /// (quantile, µs) points of the send → delivery distribution.
    pub delivery_cdf: Vec<(f64, u64)>,
    pub server_cpu_secs: f64,
    pub server_rss_kib: u64,
    pub generator_cpu_secs: f64,
    pub elapsed_secs: f64,
    pub clean: bool,
    pub faults: Vec<String>,
}

pub async fn run(
    app: &TestApp,
    pids: &[u32],
    chats: &[(String, Vec<TestUser>)],
    sources: &Sources,
    rate: f64,
    secs: f64,
) -> anyhow::Result<Mix> {
    let members: Vec<&TestUser> = chats.iter().flat_map(|(_, m)| m.iter()).collect();
    let receivers = Receivers::open(&crate::harmony::target(app), sources, members.len(), |i| {
        Some(members[i].access.clone())
    })
    .await?;
    let conns = receivers.conns.len();
    let per_chat = ((rate * secs) as usize / chats.len()).max(1);
    let messages = per_chat * chats.len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let readers = Readers::start(
        receivers.conns,
        receivers.protocol,
        per_chat as u64,
        messages,
        started,
        Duration::from_secs_f64(secs + 60.0),
    );
    let before = Usage::of(pids)?;
    let me_before = CpuMem::of(std::process::id())?;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut posts = Vec::with_capacity(messages);
    for i in 0..messages {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (chat, members) = &chats[i % chats.len()];
        let author = &members[(i / chats.len()) % members.len()];
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/chats/{chat}/messages")),
            author.access.clone(),
        );
        let text = body("c", i, due.duration_since(started).as_micros() as u64);
        posts.push(tokio::spawn(async move {
            crate::harmony::post(&client, &url, &token, text, due).await
        }));
    }
    let mut ack = hdrhistogram::Histogram::<u64>::new(3)?;
    for post in posts {
        ack.record((post.await??.as_micros() as u64).max(1))?;
    }
    let seen = readers.finish().await?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = Usage::of(pids)?;
    let me_after = CpuMem::of(std::process::id())?;
    let q = |h: &hdrhistogram::Histogram<u64>| {
        [
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
        ]
    };
    let delivery_cdf = seen
        .latency
        .iter_quantiles(4)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
        .collect();
    Ok(Mix {
        conns,
        chats: chats.len(),
        rate,
        messages,
        deliveries: seen.deliveries,
        delivery: q(&seen.latency),
        ack: q(&ack),
        delivery_cdf,
        server_cpu_secs: after.cpu_secs - before.cpu_secs,
        server_rss_kib: after.rss_kib,
        generator_cpu_secs: me_after.cpu_secs - me_before.cpu_secs,
        elapsed_secs: elapsed,
        clean: seen.clean() && seen.deliveries == (per_chat * conns) as u64,
        faults: seen.faults.iter().take(5).cloned().collect(),
    })
}
