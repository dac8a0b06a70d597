//! `harmony-bench presence` (S8): a connect storm into one big chat with a friend graph. N users,
//! all members of one N-member group, each a friend of K others (a ring: user i and users i±1 …
//! i±K/2), connect at an even pace within S seconds. Every presence frame each client receives
//! is recorded; the report gives the frames per second, the server's CPU during the storm, and
//! how long after a user's `ready` each friend already connected saw them online (p50/p99/max).
//! A frame about anyone but a friend or oneself is a fault: the big chat must not fan presence
//! out to its members (that would be O(N²) frames).
//!
//! Usage: harmony-bench presence [--harmony PATH] [--users N] [--friends K] [--secs S]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use harmony_testkit::{TestApp, TestUser};

use crate::conn::{next_text, Sources};
use crate::proc_stats::{CpuMem, Usage};

/// What one client saw: when its `ready` came, and each presence frame (whose, status, when).
struct Seen {
    ready: Instant,
    frames: Vec<(String, String, Instant)>,
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let value = |flag: &str| crate::flag_value(args, flag);
    let bin = PathBuf::from(value("--harmony").unwrap_or_else(|| "target/release/harmony".into()));
    let users: usize = value("--users").map_or(Ok(10_000), |v| v.parse())?;
    let friends: usize = value("--friends").map_or(Ok(20), |v| v.parse())?;
    let secs: f64 = value("--secs").map_or(Ok(10.0), |v| v.parse())?;
    anyhow::ensure!(
        users > friends && friends.is_multiple_of(2),
        "--friends must be even and below --users"
    );

    let app = crate::harmony::single(&bin).await?;
    let pid = app.pid().context("the node's pid")?;
    eprintln!("S8: registering {users} users");
    let people = crate::harmony::register(&app, "p", users).await?;
    eprintln!("S8: one group of all {users}");
    crate::harmony::group(&app, &people[0], "everyone", &people).await?;
    eprintln!("S8: {} friendships", users * friends / 2);
    befriend_ring(&app, &people, friends / 2).await?;

    let sources = Arc::new(Sources::new(8));
    let target = crate::harmony::target(&app);
    let settle = Duration::from_secs(3);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs) + settle;
    let before = Usage::of(&[pid])?;
    let me_before = CpuMem::of(std::process::id())?;
    let mut clients = Vec::with_capacity(users);
    for (i, user) in people.iter().enumerate() {
        let due = started + Duration::from_secs_f64(secs * i as f64 / users as f64);
        let (target, sources, token) = (target.clone(), sources.clone(), user.access.clone());
        clients.push(tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let (mut ws, _) = crate::conn::open(&target, &sources, Some(&token)).await?;
            let mut seen = Seen {
                ready: Instant::now(),
                frames: Vec::new(),
            };
            while let Ok(text) = tokio::time::timeout_at(until.into(), next_text(&mut ws)).await {
                let text = text?;
                if !text.starts_with(r#"{"type":"presence""#) {
                    continue;
                }
                let frame: serde_json::Value = serde_json::from_str(&text)?;
                let field = |k: &str| frame[k].as_str().unwrap_or_default().to_owned();
                seen.frames
                    .push((field("user_id"), field("status"), Instant::now()));
            }
            anyhow::Ok(seen)
        }));
    }
    let mut seen = Vec::with_capacity(users);
    for client in clients {
        seen.push(client.await??);
    }
    let after = Usage::of(&[pid])?;
    let me_after = CpuMem::of(std::process::id())?;
    report(
        &people,
        friends / 2,
        &seen,
        secs,
        after.cpu_secs - before.cpu_secs,
    )?;
    println!(
        "server RSS after the storm {:.1} MiB; generator CPU {:.1} s",
        after.rss_kib as f64 / 1024.0,
        me_after.cpu_secs - me_before.cpu_secs
    );
    app.stop().await
}

/// Makes user i a friend of users i+1 … i+half (around the ring): each has 2·half friends.
async fn befriend_ring(app: &TestApp, people: &[TestUser], half: usize) -> anyhow::Result<()> {
    let n = people.len();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (1..=half).map(move |d| (i, (i + d) % n)))
        .collect();
    let total = pairs.len();
    let mut done = 0;
    let mut made = futures_util::stream::iter(pairs)
        .map(|(a, b)| app.befriend(&people[a], &people[b]))
        .buffer_unordered(16);
    while let Some(result) = made.next().await {
        result?;
        done += 1;
        if done % 10_000 == 0 {
            eprintln!("  {done} of {total} friendships");
        }
    }
    Ok(())
}

fn report(
    people: &[TestUser],
    half: usize,
    seen: &[Seen],
    secs: f64,
    server_cpu: f64,
) -> anyhow::Result<()> {
    let n = people.len();
    let index: HashMap<&str, usize> = people
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.as_str(), i))
        .collect();
    let is_friend = |a: usize, b: usize| {
        let d = (a + n - b) % n;
        (1..=half).contains(&d) || (1..=half).contains(&(n - d))
    };
    let mut latency = hdrhistogram::Histogram::<u64>::new(3)?;
    let (mut frames, mut faults, mut missed) = (0u64, Vec::new(), 0u64);
    let mut first = None::<Instant>;
    let mut last = None::<Instant>;
    for (me, client) in seen.iter().enumerate() {
        let mut online_seen = HashSet::new();
        for (user, status, at) in &client.frames {
            frames += 1;
            first = Some(first.map_or(*at, |f| f.min(*at)));
            last = Some(last.map_or(*at, |l| l.max(*at)));
            let Some(&who) = index.get(user.as_str()) else {
                faults.push(format!("a frame about an unknown user {user}"));
                continue;
            };
            if who != me && !is_friend(me, who) {
                faults.push(format!("user {me} was told about {who}, not a friend"));
                continue;
            }
            if who != me && status == "online" && online_seen.insert(who) {
                let since = at.saturating_duration_since(seen[who].ready);
                latency.record((since.as_micros() as u64).max(1))?;
            }
        }
        // Every friend who came after this client's ready must have been seen coming. (A
        // margin: two clients may read their `ready` frames in the other order than the server
        // sent them, under a storm.)
        for d in 1..=half {
            for friend in [(me + d) % n, (me + n - d) % n] {
                let later = seen[friend].ready > client.ready + Duration::from_secs(1);
                if later && !online_seen.contains(&friend) {
                    missed += 1;
                }
            }
        }
    }
    let window = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64().max(1e-3),
        _ => secs,
    };
    println!(
        "S8 presence storm: {n} users connecting within {secs:.0} s into one {n}-member chat, \
         {} friends each",
        half * 2
    );
    println!(
        "  presence frames: {frames} in all ({:.0}/s over {window:.1} s; at most {} with a \
         friend-only audience, {} if the big chat fanned out)",
        frames as f64 / window,
        n * (half * 2 + 1),
        n * n
    );
    println!(
        "  friend sees online, after the user's ready: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         ({} arrivals seen)",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0,
        latency.len()
    );
    println!("  server CPU during the storm: {server_cpu:.1} s");
    anyhow::ensure!(
        faults.is_empty() && missed == 0,
        "S8 faults: {missed} arrivals not seen by a connected friend; {} frames to someone not \
         a friend (first: {:?})",
        faults.len(),
        faults.first()
    );
    Ok(())
}
