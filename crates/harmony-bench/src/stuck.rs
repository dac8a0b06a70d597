//! `harmony-bench stuck`: what clients that stop reading cost, and that the server gets it back.
//! Holder processes open N WebSockets to members of one group and never read again; messages
//! (3,900 characters) are posted into the group until the server has closed every one of them
//! (its write deadline). The server's RSS is sampled idle, at its peak while the readers are
//! stuck, and once they are closed, with the seconds until the last one was closed. A second
//! wave of as many stuck readers follows: if the RSS after it is about the same as after the
//! first, the memory was reused, not lost (the allocator keeps freed pages for the next ones).
//!
//! Usage: harmony-bench stuck [--harmony PATH] [--conns N] [--rate MSG_PER_S]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::idle::Holders;
use crate::proc_stats::Usage;

/// What one run measured.
#[derive(Debug)]
struct Outcome {
    conns: usize,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    closed_rss_kib: u64,
    messages: usize,
    all_closed_after: Duration,
}

/// The readers of one wave, held until they are dropped.
struct Wave {
    peak_rss_kib: u64,
    closed_rss_kib: u64,
    messages: usize,
    all_closed_after: Duration,
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let value = |flag: &str| crate::flag_value(args, flag);
    let bin = PathBuf::from(value("--harmony").unwrap_or_else(|| "target/release/harmony".into()));
    let conns: usize = value("--conns").map_or(Ok(1000), |v| v.parse())?;
    let rate: f64 = value("--rate").map_or(Ok(100.0), |v| v.parse())?;
    let kib = |k: u64| k as f64 / 1024.0;
    let outcomes = measure(&bin, conns, rate).await?;
    for (i, outcome) in outcomes.iter().enumerate() {
        println!(
            "stuck readers, wave {}: {} connections; server RSS idle {:.1} MiB, peak while \
             stuck {:.1} MiB (+{:.0} KiB per reader), after they were closed {:.1} MiB; {} \
             messages; the last one closed {:.1} s after the first message",
            i + 1,
            outcome.conns,
            kib(outcome.idle_rss_kib),
            kib(outcome.peak_rss_kib),
            outcome.peak_rss_kib.saturating_sub(outcome.idle_rss_kib) as f64 / outcome.conns as f64,
            kib(outcome.closed_rss_kib),
            outcome.messages,
            outcome.all_closed_after.as_secs_f64(),
        );
    }
    Ok(())
}

async fn measure(bin: &std::path::Path, conns: usize, rate: f64) -> anyhow::Result<Vec<Outcome>> {
    let app = crate::harmony::single(bin).await?;
    let pid = app.pid().context("the node's pid")?;
    let users = crate::harmony::register(&app, "stuck", 100).await?;
    let chat = crate::harmony::group(&app, &users[0], "stuck", &users).await?;
    let tokens: Vec<String> = users.iter().map(|u| u.access.clone()).collect();
    let target = crate::harmony::target(&app);
    let url = app.url(&format!("/api/v1/chats/{chat}/messages"));
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let holders = Holders::open(&target, conns, 4, &tokens).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss_kib = Usage::of(&[pid])?.rss_kib;
        let wave = stuck_wave(&app, pid, &url, &users[0].access, conns, rate, idle_rss_kib).await?;
        holders.close().await?;
        outcomes.push(Outcome {
            conns,
            idle_rss_kib,
            peak_rss_kib: wave.peak_rss_kib,
            closed_rss_kib: wave.closed_rss_kib,
            messages: wave.messages,
            all_closed_after: wave.all_closed_after,
        });
    }
    app.stop().await?;
    Ok(outcomes)
}

/// Posts into the readers' chat until the server has closed every reader.
async fn stuck_wave(
    app: &harmony_testkit::TestApp,
    pid: u32,
    url: &str,
    token: &str,
    conns: usize,
    rate: f64,
    idle_rss_kib: u64,
) -> anyhow::Result<Wave> {
    let sessions = || async { anyhow::Ok(app.metric("harmony_ws_sessions").await? as usize) };
    anyhow::ensure!(sessions().await? >= conns, "not every reader connected");
    let content = "x".repeat(3900);
    let started = Instant::now();
    let mut peak_rss_kib = idle_rss_kib;
    let mut messages = 0;
    let deadline = started + Duration::from_secs(600);
    while sessions().await? > 0 {
        anyhow::ensure!(Instant::now() < deadline, "readers still open after 600 s");
        for _ in 0..10 {
            let due = Instant::now();
            crate::harmony::post(&app.client, url, token, content.clone(), due).await?;
            messages += 1;
            tokio::time::sleep(Duration::from_secs_f64(1.0 / rate)).await;
        }
        peak_rss_kib = peak_rss_kib.max(Usage::of(&[pid])?.rss_kib);
    }
    let all_closed_after = started.elapsed();
    // Let the allocator settle what the closed sessions held.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(Wave {
        peak_rss_kib,
        closed_rss_kib: Usage::of(&[pid])?.rss_kib,
        messages,
        all_closed_after,
    })
}
