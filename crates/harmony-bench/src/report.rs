//! The report: markdown (printed, and written with `data.json` and PNG plots into a results
//! folder when `--out` is given). Comparisons are medians of per-round ratios, each round run
//! with every target interleaved, because absolute numbers drift on a shared machine.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::broadcast::Round;
use crate::failover::Failover;
use crate::idle::Step;
use crate::mix::Mix;
use crate::rest::Load;

#[derive(Default, Serialize)]
pub struct Results {
    pub machine: String,
    pub command: String,
    pub s1: Vec<Step>,
    /// S2 rounds: every target, every connection count, every round.
    pub s2: Vec<Round>,
    pub s3: Option<(Round, f64)>,
    pub s4: Option<Mix>,
    pub s5: Vec<Load>,
    pub s6: Option<Failover>,
    pub s7: Vec<Load>,
    /// S7s: each message store's sink catching up on a backlog.
    pub catch_up: Vec<crate::stores::CatchUp>,
    /// Scenarios that could not finish, and why.
    pub errors: Vec<String>,
}

/// What the machine is, for the report's head.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores ({cpu}), {mem_gib:.0} GiB, Linux {}; generator and servers share the machine",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel.trim()
    )
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Per connection count and peer: median over rounds of (peer / Harmony) for CPU per delivery
/// and last-receiver p99.
fn s2_ratios(rounds: &[Round]) -> Vec<(usize, String, Option<f64>, Option<f64>)> {
    let mut out = Vec::new();
    let mut counts: Vec<usize> = rounds.iter().map(|r| r.conns).collect();
    counts.sort_unstable();
    counts.dedup();
    let mut peers: Vec<String> = rounds
        .iter()
        .map(|r| r.target.clone())
        .filter(|t| t != "harmony")
        .collect();
    peers.sort();
    peers.dedup();
    for conns in counts {
        let of = |t: &str| -> Vec<&Round> {
            rounds
                .iter()
                .filter(|r| r.conns == conns && r.target == t)
                .collect()
        };
        let harmony = of("harmony");
        for peer in &peers {
            let theirs = of(peer);
            let pairs = harmony.iter().zip(&theirs);
            let cpu = median(
                pairs
                    .clone()
                    .map(|(h, p)| p.cpu_us_per_delivery() / h.cpu_us_per_delivery())
                    .collect(),
            );
            let p99 = median(
                pairs
                    .map(|(h, p)| p.last[1] as f64 / h.last[1].max(1) as f64)
                    .collect(),
            );
            out.push((conns, peer.clone(), cpu, p99));
        }
    }
    out
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.2}×"))
}

pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# harmony-bench report\n\n- machine: {}\n- command: `{}`\n",
        r.machine, r.command
    );
    for e in &r.errors {
        let _ = writeln!(md, "**FAILED** {e}\n");
    }
    if !r.s1.is_empty() {
        let _ = writeln!(md, "## S1 idle connections\n\nMemory added per idle connection (user = the server's RSS growth; kernel = slab and socket buffers, both ends of each loopback connection).\n\n| target | connections | user B/conn | kernel B/conn | server RSS MiB |\n|---|---:|---:|---:|---:|");
        for s in &r.s1 {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {:.1} |",
                s.target,
                s.conns,
                s.user_bytes_per_conn,
                s.kernel_bytes_per_conn,
                s.server_rss_kib as f64 / 1024.0
            );
        }
        md.push('\n');
    }
    if !r.s2.is_empty() {
        let _ = writeln!(md, "## S2 broadcast\n\nOne chat (one broadcast channel for peers); every receiver must get every message once, in order. Latency from when each message was due (open loop).\n\n| target | receivers | msg/s | deliveries/s | last-receiver p50 / p99 / max ms | each p99.9 ms | server CPU µs/delivery | RSS MiB | checked |\n|---|---:|---:|---:|---|---:|---:|---:|---|");
        for x in &r.s2 {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {} / {} / {} | {} | {:.2} | {:.0} | {}{} |",
                x.target,
                x.conns,
                x.rate,
                x.deliveries_per_sec,
                ms(x.last[0]),
                ms(x.last[1]),
                ms(x.last[2]),
                ms(x.each[2]),
                x.cpu_us_per_delivery(),
                x.server_rss_kib as f64 / 1024.0,
                if x.clean { "ok" } else { "FAULTS" },
                if x.generator_saturated() {
                    ", generator saturated: INVALID"
                } else {
                    ""
                }
            );
        }
        let ratios = s2_ratios(&r.s2);
        if !ratios.is_empty() {
            let _ = writeln!(md, "\nMedian of per-round ratios, peer ÷ Harmony (above 1: Harmony is better): CPU per delivery (= Harmony's deliveries per CPU-second ÷ the peer's) and last-receiver p99.\n\n| receivers | peer | CPU per delivery | last-receiver p99 |\n|---:|---|---:|---:|");
            for (conns, peer, cpu, p99) in ratios {
                let _ = writeln!(md, "| {conns} | {peer} | {} | {} |", ratio(cpu), ratio(p99));
            }
        }
        md.push('\n');
    }
    if let Some((x, cluster_cpu)) = &r.s3 {
        let _ = writeln!(md, "## S3 cross-node fan-out\n\nSent through the api node, delivered by a gateway-only node through Redis (broker: tansu).\n\n- {} receivers, {} messages at {}/s: {} deliveries, {}\n- last receiver p50 {} ms, p99 {} ms, max {} ms\n- gateway CPU {:.2} µs per delivery; cluster CPU (nodes, Redis, broker) {:.2} µs per delivery\n",
            x.conns, x.messages, x.rate, x.deliveries, if x.clean { "every one checked" } else { "FAULTS" },
            ms(x.last[0]), ms(x.last[1]), ms(x.last[2]), x.cpu_us_per_delivery(), cluster_cpu * 1e6 / x.deliveries.max(1) as f64);
    }
    if let Some(m) = &r.s4 {
        let _ = writeln!(md, "## S4 chat mix\n\n- {} connections in {} chats, {} messages at {}/s through the durable log: {} deliveries, {}\n- send → delivery p50 {} ms, p99 {} ms, p99.9 {} ms\n- send → 201 p50 {} ms, p99 {} ms\n- server CPU {:.2} s ({:.1} µs per delivery), RSS {:.0} MiB; generator CPU {:.2} s over {:.1} s\n",
            m.conns, m.chats, m.messages, m.rate, m.deliveries, if m.clean { "every one checked" } else { "FAULTS" },
            ms(m.delivery[0]), ms(m.delivery[1]), ms(m.delivery[2]), ms(m.ack[0]), ms(m.ack[1]),
            m.server_cpu_secs, m.server_cpu_secs * 1e6 / m.deliveries.max(1) as f64, m.server_rss_kib as f64 / 1024.0, m.generator_cpu_secs, m.elapsed_secs);
    }
    if !r.s5.is_empty() {
        let _ = writeln!(md, "## S5 durable ingest ramp\n\nPOST /messages open loop, stepping up until ack p99 passes 20 ms; Harmony, then the floor (`harmony-bench serve-floor`: the same request on the same stack with nothing else).\n\n| server | offered/s | achieved/s | ack p50 / p99 / p99.9 ms | failed | server CPU s | generator CPU s |\n|---|---:|---:|---|---:|---:|---:|");
        for l in &r.s5 {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {} / {} / {} | {} | {:.2} | {:.2}{} |",
                server_of(&l.what),
                l.rate,
                l.achieved_per_sec,
                ms(l.latency[0]),
                ms(l.latency[1]),
                ms(l.latency[2]),
                l.failed,
                l.server_cpu_secs,
                l.generator_cpu_secs,
                if l.generator_saturated() {
                    " (saturated)"
                } else {
                    ""
                }
            );
        }
        md.push('\n');
    }
    if let Some(f) = &r.s6 {
        let _ = writeln!(md, "## S6 gateway kill\n\n- {} clients on one gateway, `kill -9` under load ({} messages sent in all)\n- resumed on the other gateway: {} of {}; kill → resumed p50 {:.0} ms, p99 {:.0} ms, all within {:.0} ms\n- kill → first `ready` on the other gateway: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; sessions opened there {}, attempts that got none {}\n- gaps {}, duplicates {}; connections dropped for a full accept queue: {}\n",
            f.clients, f.messages, f.resumed, f.clients, f.resume_ms[0], f.resume_ms[1], f.resume_ms[2], f.ready_ms[0], f.ready_ms[1], f.ready_ms[2], f.sessions_opened, f.failed_attempts, f.gaps, f.duplicates, f.listen_overflows);
    }
    if !r.catch_up.is_empty() {
        let _ = writeln!(md, "## S7s message stores

A backlog of messages in the log, then a sink-only node starts: the time until history serves them all (history reads of both stores are in S7, `cluster, …`). dynalite is a Node.js emulation of DynamoDB on LevelDB: it shows what the adapter costs and how it behaves, not AWS's latency.

| store | messages | caught up in | messages/s |
|---|---:|---:|---:|");
        for c in &r.catch_up {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} s | {:.0} |",
                c.store,
                c.messages,
                c.secs,
                c.messages as f64 / c.secs.max(1e-9)
            );
        }
        md.push('\n');
    }
    if !r.s7.is_empty() {
        let _ = writeln!(md, "## S7 REST\n\nServer CPU is the node's (a cluster's writer node runs api and the workers); services are a cluster's PostgreSQL (the postmaster and its backends; the broker and Redis are left out: tansu polls whether busy or not).\n\n| request | rate/s | achieved/s | p50 / p99 / p99.9 ms | failed | server CPU µs/request | services CPU µs/request | generator CPU µs/request |\n|---|---:|---:|---|---:|---:|---:|---:|");
        for l in &r.s7 {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {} / {} / {} | {} | {:.0} | {:.0} | {:.0} |",
                l.what,
                l.rate,
                l.achieved_per_sec,
                ms(l.latency[0]),
                ms(l.latency[1]),
                ms(l.latency[2]),
                l.failed,
                l.server_cpu_secs * 1e6 / l.requests.max(1) as f64,
                l.services_cpu_secs * 1e6 / l.requests.max(1) as f64,
                l.generator_cpu_secs * 1e6 / l.requests.max(1) as f64
            );
        }
        md.push('\n');
        for kind in ["POST message", "GET history"] {
            // A run too light to measure (an idle process's own ticks would dominate) is left out.
            let cpu = |server: &str| {
                r.s7.iter()
                    .find(|l| l.what == format!("{kind} ({server})"))
                    .filter(|l| l.server_cpu_secs >= 0.1)
                    .map(|l| l.server_cpu_secs * 1e6 / l.requests.max(1) as f64)
            };
            if let (Some(h), Some(f)) = (cpu("harmony"), cpu("floor")) {
                let _ = writeln!(
                    md,
                    "- {kind}: Harmony {h:.0} µs of server CPU per request, the floor {f:.0} µs: **{:.2}×** the floor",
                    h / f.max(1e-9)
                );
            }
        }
        md.push('\n');
    }
    md
}

/// "harmony" or "floor", from a load's name ("POST message (floor)").
fn server_of(what: &str) -> &str {
    what.rsplit_once('(')
        .map_or(what, |(_, rest)| rest.trim_end_matches(')'))
}

/// Writes `report.md`, `data.json` and the plots (by `bench/plot.py`, with matplotlib from a
/// cached virtualenv) into `dir`.
pub fn write(r: &Results, dir: &Path, root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("data.json"), serde_json::to_vec_pretty(r)?)?;
    let mut md = markdown(r);
    let plot = std::process::Command::new(root.join("bench/plot.sh"))
        .arg(dir)
        .status();
    match plot {
        // The plots draw S1 and S2: a run without them has none to show.
        Ok(s) if s.success() && !(r.s1.is_empty() && r.s2.is_empty()) => {
            md.push_str("## Plots\n\n![last-receiver latency CDF](s2-latency-cdf.png)\n\n![deliveries per CPU-second against connections](s2-throughput.png)\n\n![memory per idle connection](s1-memory.png)\n");
        }
        _ => eprintln!("plots were not made (bench/plot.sh failed); the report has tables only"),
    }
    std::fs::write(dir.join("report.md"), md)?;
    Ok(())
}
