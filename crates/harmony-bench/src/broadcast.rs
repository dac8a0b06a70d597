//! One broadcast round (S2, S3): `conns` receivers on a target, `messages` sent open loop at
//! `rate`/s, every delivery checked and timed, and the target's CPU and memory measured around it.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Protocol, Sources, Target, Ws};
use crate::proc_stats::{CpuMem, Usage};
use crate::readers::{body, Readers, Seen};

/// How messages enter the target.
pub enum Sender {
    /// Harmony: `POST /chats/{id}/messages`, one request per message, open loop.
    Rest {
        client: reqwest::Client,
        url: String,
        token: String,
    },
    /// A peer: text frames on a WebSocket of its own.
    Ws { ws: Box<Ws>, protocol: Protocol },
}

/// What a round measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Round {
    pub target: String,
    pub conns: usize,
    pub messages: usize,
    pub rate: f64,
    pub deliveries: u64,
    /// Last-receiver latency per message, µs: p50, p99, max.
    pub last: [u64; 3],
    /// Every delivery's latency, µs: p50, p99, p99.9.
    pub each: [u64; 3],
    /// Every last-receiver latency, µs (for the CDF plot).
    pub last_samples: Vec<u64>,
    pub deliveries_per_sec: f64,
    pub server_cpu_secs: f64,
    pub server_rss_kib: u64,
    pub generator_cpu_secs: f64,
    pub elapsed_secs: f64,
    pub clean: bool,
    pub faults: Vec<String>,
}

impl Round {
    pub fn cpu_us_per_delivery(&self) -> f64 {
        self.server_cpu_secs * 1e6 / self.deliveries.max(1) as f64
    }

    /// The generator used most of a core: its numbers are its own limit, not the target's.
    pub fn generator_saturated(&self) -> bool {
        self.generator_cpu_secs / self.elapsed_secs.max(1e-9) > 0.9
    }
}

/// The receivers of one round, opened before it starts.
pub struct Receivers {
    pub conns: Vec<Ws>,
    pub protocol: Protocol,
}

impl Receivers {
    pub async fn open(
        target: &Target,
        sources: &Sources,
        count: usize,
        token: impl Fn(usize) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let opened = conn::open_many(target, sources, count, 64, token).await?;
        Ok(Self {
            conns: opened.into_iter().map(|(ws, _)| ws).collect(),
            protocol: target.protocol,
        })
    }
}

/// Runs one round. `pids` are the target's processes.
pub async fn round(
    name: &str,
    pids: &[u32],
    receivers: Receivers,
    mut sender: Sender,
    messages: usize,
    rate: f64,
) -> anyhow::Result<Round> {
    let conns = receivers.conns.len();
    // Let the server finish registering the last connections before the first message.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let deadline = Duration::from_secs_f64(messages as f64 / rate + 60.0);
    let readers = Readers::start(
        receivers.conns,
        receivers.protocol,
        messages as u64,
        messages,
        started,
        deadline,
    );
    let before = Usage::of(pids)?;
    let me_before = CpuMem::of(std::process::id())?;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut posts = Vec::new();
    for i in 0..messages {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let text = body("b", i, due.duration_since(started).as_micros() as u64);
        match &mut sender {
            Sender::Rest { client, url, token } => {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                posts.push(tokio::spawn(async move {
                    crate::harmony::post(&client, &url, &token, text, due).await
                }));
            }
            Sender::Ws { ws, protocol } => {
                let frame = match protocol {
                    Protocol::SocketIo => format!("42[\"m\",\"{text}\"]"),
                    _ => text,
                };
                ws.send(Message::Text(frame.into()))
                    .await
                    .context("the sender's socket failed")?;
            }
        }
    }
    for post in posts {
        post.await??;
    }
    let seen: Seen = readers.finish().await?;
    let elapsed = started.elapsed();
    let after = Usage::of(pids)?;
    let me_after = CpuMem::of(std::process::id())?;
    let last = seen.last_receiver()?;
    let q = |h: &hdrhistogram::Histogram<u64>, p: f64| h.value_at_quantile(p);
    let last_samples = seen
        .due
        .iter()
        .zip(&seen.last_arrival)
        .filter(|(_, l)| **l > 0)
        .map(|(d, l)| l.saturating_sub(*d))
        .collect();
    Ok(Round {
        target: name.to_owned(),
        conns,
        messages,
        rate,
        deliveries: seen.deliveries,
        last: [q(&last, 0.5), q(&last, 0.99), last.max()],
        each: [
            q(&seen.latency, 0.5),
            q(&seen.latency, 0.99),
            q(&seen.latency, 0.999),
        ],
        last_samples,
        deliveries_per_sec: seen.deliveries as f64 / elapsed.as_secs_f64(),
        server_cpu_secs: after.cpu_secs - before.cpu_secs,
        server_rss_kib: after.rss_kib,
        generator_cpu_secs: me_after.cpu_secs - me_before.cpu_secs,
        elapsed_secs: elapsed.as_secs_f64(),
        clean: seen.clean() && seen.deliveries == (conns * messages) as u64,
        faults: seen
            .faults
            .iter()
            .take(5)
            .cloned()
            .chain((seen.short > 0).then(|| format!("{} connections missed messages", seen.short)))
            .collect(),
    })
}
