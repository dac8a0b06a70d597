//! `harmony-bench`: Harmony's load generator. It starts the real `harmony` binary (fresh data
//! directory, its own port), drives it over loopback, checks every delivery (no loss, no
//! duplicate, per-chat order; a run that finds one fails), and reports latency from HDR
//! histograms with coordinated-omission correction, plus the server's CPU and memory from /proc
//! and the generator's own CPU (a run where the generator saturates its core is marked invalid).
//!
//! Scenarios (this version runs S2 and S7; the others are planned):
//!   S2 broadcast   one chat of N members; messages sent at a fixed rate; every member's socket
//!                  must receive each once, in order: deliveries/s, last-receiver latency,
//!                  server CPU µs per delivery
//!   S7 rest        POST /chats/{id}/messages open-loop at a fixed rate, then history reads
//!   (planned) S1 idle connections, S3 cross-node fan-out, S4 chat mix, S5 ingest ramp,
//!   S6 gateway kill; peers (Node ws, Socket.IO) in the same run.
//!
//! Usage: harmony-bench [--harmony PATH] [--quick] [--members N] [--messages N] [--rate R]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use harmony_testkit::{TestApp, TestUser};
use hdrhistogram::Histogram;

mod proc_stats;

use proc_stats::CpuMem;

struct Args {
    harmony: PathBuf,
    members: usize,
    messages: usize,
    rate: f64,
    rest_rate: f64,
    rest_secs: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        harmony: PathBuf::from("target/release/harmony"),
        members: 1000,
        messages: 500,
        rate: 50.0,
        rest_rate: 1000.0,
        rest_secs: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--harmony" => a.harmony = PathBuf::from(value()?),
            "--members" => a.members = value()?.parse()?,
            "--messages" => a.messages = value()?.parse()?,
            "--rate" => a.rate = value()?.parse()?,
            "--quick" => {
                a.members = 50;
                a.messages = 100;
                a.rate = 50.0;
                a.rest_rate = 100.0;
                a.rest_secs = 2;
            }
            "-h" | "--help" => {
                let doc: Vec<&str> = include_str!("main.rs")
                    .lines()
                    .take_while(|l| l.starts_with("//!"))
                    .map(|l| l.trim_start_matches("//!").trim_start())
                    .collect();
                println!("{}", doc.join("\n"));
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; see --help"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    anyhow::ensure!(
        a.harmony.exists(),
        "{} does not exist: build harmony first",
        a.harmony.display()
    );
    let env = vec![
        (
            "HARMONY_LIMITS__SEND_BURST".to_owned(),
            "10000000".to_owned(),
        ),
        (
            "HARMONY_LIMITS__SEND_PER_SECOND".to_owned(),
            "10000000".to_owned(),
        ),
        (
            "HARMONY_GATEWAY__SESSION_QUEUE".to_owned(),
            "65536".to_owned(),
        ),
        (
            "HARMONY_LIMITS__MAX_GROUP_MEMBERS".to_owned(),
            "100000".to_owned(),
        ),
    ];
    let app = TestApp::process(&a.harmony, &env).await?;
    let pid = app.pid().context("the server's pid")?;
    println!(
        "# harmony-bench\n\nserver: {} (pid {pid}), {} cores\n",
        a.harmony.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    broadcast(&app, pid, &a).await?;
    rest(&app, pid, &a).await?;
    app.stop().await
}

/// S2: one chat, `members` sockets, `messages` sent at `rate`/s; checks and times each delivery.
async fn broadcast(app: &TestApp, pid: u32, a: &Args) -> anyhow::Result<()> {
    let sender = app.register("sender").await?;
    let mut members: Vec<TestUser> = Vec::with_capacity(a.members);
    for i in 0..a.members {
        members.push(app.register(&format!("member{i}")).await?);
    }
    let refs: Vec<&TestUser> = members.iter().collect();
    let chat = app.group(&sender, "broadcast", &refs).await?;
    let mut readers = Vec::with_capacity(a.members);
    for m in &members {
        let (ws, _) = app.ws(&m.access).await?;
        readers.push(ws);
    }
    let expected = a.messages;
    // Each reader records (seq, arrival) for every message frame.
    let started = Instant::now();
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut got = Vec::with_capacity(expected);
                while got.len() < expected {
                    let frame = ws.next_of("message").await?;
                    got.push((
                        frame["message"]["seq"].as_i64().unwrap_or(-1),
                        started.elapsed(),
                    ));
                }
                anyhow::Ok(got)
            })
        })
        .collect();
    let before = CpuMem::of(pid)?;
    let me_before = CpuMem::of(std::process::id())?;
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let mut sent_at = Vec::with_capacity(expected);
    let mut seqs = Vec::with_capacity(expected);
    let mut next = Instant::now();
    for i in 0..expected {
        tokio::time::sleep_until(next.into()).await;
        // Latency counts from when the message was due (open loop), not when it was sent.
        sent_at.push(next.duration_since(started));
        let m = app.send(&sender, &chat, &format!("b{i}")).await?;
        seqs.push(m["seq"].as_i64().unwrap_or(-1));
        next += interval;
    }
    let mut last_arrival = vec![Duration::ZERO; expected];
    for task in tasks {
        let got = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .context("a reader never got everything")???;
        let got_seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        if got_seqs != seqs {
            bail!(
                "a member saw {} messages out of order, lost or twice",
                got_seqs.len()
            );
        }
        for (i, (_, at)) in got.iter().enumerate() {
            last_arrival[i] = last_arrival[i].max(*at);
        }
    }
    let after = CpuMem::of(pid)?;
    let me_after = CpuMem::of(std::process::id())?;
    let elapsed = started.elapsed();
    let mut hist = Histogram::<u64>::new(3)?;
    for (due, last) in sent_at.iter().zip(&last_arrival) {
        let micros = last.saturating_sub(*due).as_micros() as u64;
        hist.record_correct(micros.max(1), interval.as_micros() as u64)?;
    }
    let deliveries = (expected * a.members) as f64;
    let cpu = after.cpu_secs - before.cpu_secs;
    let gen_cpu = me_after.cpu_secs - me_before.cpu_secs;
    println!(
        "## S2 broadcast: {} members, {} messages at {}/s\n",
        a.members, expected, a.rate
    );
    println!(
        "- every delivery checked: {} deliveries, none lost, none twice, all in order",
        deliveries as u64
    );
    println!(
        "- last-receiver latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(&hist, 0.5),
        ms(&hist, 0.99),
        hist.max() as f64 / 1000.0
    );
    println!(
        "- deliveries/s over the run: {:.0}",
        deliveries / elapsed.as_secs_f64()
    );
    println!(
        "- server CPU: {:.2} s, {:.2} µs per delivery; RSS {:.1} MiB",
        cpu,
        cpu * 1e6 / deliveries,
        after.rss_kib as f64 / 1024.0
    );
    let saturated = gen_cpu / elapsed.as_secs_f64() > 0.9;
    println!(
        "- generator CPU: {:.2} s{}\n",
        gen_cpu,
        if saturated {
            " (saturated: run INVALID)"
        } else {
            ""
        }
    );
    Ok(())
}

/// S7: POST open-loop at `rest_rate`/s for `rest_secs`, then history reads.
async fn rest(app: &TestApp, pid: u32, a: &Args) -> anyhow::Result<()> {
    let user = app.register("rest_user").await?;
    let chat = app.group(&user, "rest", &[]).await?;
    let interval = Duration::from_secs_f64(1.0 / a.rest_rate);
    let total = (a.rest_rate * a.rest_secs as f64) as usize;
    let before = CpuMem::of(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (app_client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/chats/{chat}/messages")),
            user.access.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = app_client
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"content": format!("r{i}")}))
                .send()
                .await?;
            anyhow::ensure!(
                r.status() == reqwest::StatusCode::CREATED,
                "POST answered {}",
                r.status()
            );
            anyhow::Ok(due.elapsed())
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for t in tasks {
        hist.record_correct(
            (t.await??.as_micros() as u64).max(1),
            interval.as_micros() as u64,
        )?;
    }
    let cpu = CpuMem::of(pid)?.cpu_secs - before.cpu_secs;
    println!(
        "## S7 REST: POST at {}/s for {} s\n",
        a.rest_rate, a.rest_secs
    );
    println!(
        "- POST latency: p50 {:.2} ms, p99 {:.2} ms; server CPU {:.2} s",
        ms(&hist, 0.5),
        ms(&hist, 0.99),
        cpu
    );
    let mut reads = Histogram::<u64>::new(3)?;
    for _ in 0..total.min(500) {
        let t = Instant::now();
        let r = app
            .get(
                &format!("/api/v1/chats/{chat}/messages?limit=50"),
                &user.access,
            )
            .await?;
        anyhow::ensure!(
            r.status == reqwest::StatusCode::OK,
            "history answered {}",
            r.status
        );
        reads.record((t.elapsed().as_micros() as u64).max(1))?;
    }
    println!(
        "- history read latency (closed loop): p50 {:.2} ms, p99 {:.2} ms\n",
        ms(&reads, 0.5),
        ms(&reads, 0.99)
    );
    Ok(())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}
