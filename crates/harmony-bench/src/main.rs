//! `harmony-bench`: Harmony's load generator and benchmark scenarios, with the servers users
//! would pick instead measured in the same run. It starts the real `harmony` binary (fresh data
//! directory, its own port; a cluster on private PostgreSQL, Redis and tansu for S3 and S6),
//! drives it over loopback from many 127.0.0.x source addresses, checks every delivery (no loss,
//! no duplicate, per-chat order: a run that finds one fails) and times it from when it was due
//! (open loop, so no coordinated omission). CPU and RSS of every process under test come from
//! /proc; the generator's own CPU too (a run where it saturates a core is marked invalid).
//!
//! Scenarios:
//!   S1 idle      connections held open by child processes (20,000 files per process here):
//!                memory per connection, the server's RSS and the kernel's (slab, socket buffers)
//!   S2 broadcast one chat, N receivers, messages at a fixed rate: deliveries/s, last-receiver
//!                latency, server CPU µs per delivery; Harmony and the peers in interleaved
//!                rounds, compared as medians of per-round ratios
//!   S3 cluster   S2 across nodes: sent through an api node, delivered by a gateway-only node
//!                through Redis
//!   S4 mix       every user connected once, chats of 10, messages round robin through the
//!                durable log: send → delivery p50/p99/p99.9, send → 201
//!   S5 ingest    POST rate stepped up until ack p99 passes 20 ms: the durable-ingest knee
//!   S6 failover  kill -9 a gateway under load: time until every client resumed on the other
//!                one, gaps and duplicates found
//!   S7 rest      POST /messages and history reads, open loop at fixed rates, against Harmony and
//!                the floor (`serve-floor`: the same requests on the same stack, nothing else);
//!                and Harmony's edits (PATCH) at the POST rate: a change costs what a send does
//!   S7c          S7 against a cluster's writer node at half the rates, PostgreSQL measured apart
//!   S7s          the cluster's message store, PostgreSQL and DynamoDB (dynalite) in one run: the
//!                sink's catch-up rate on a backlog, and history reads at a twentieth of S7's
//!                rate (dynalite, one Node.js thread, holds about 380 pages/s here)
//!
//! Peers (`bench/peers/`, npm packages installed on first use): node-ws (a minimal Node `ws`
//! broadcast server), socket.io (Socket.IO with @socket.io/redis-adapter on a private Redis),
//! bare-tokio (a bare tokio WebSocket broadcast server: the machine's own limit).
//!
//! `harmony-bench stuck [--harmony PATH] [--conns N]` measures clients that stop reading: the
//! server's memory while N of them are stuck and after it closed them.
//!
//! `harmony-bench presence [--harmony PATH] [--users N] [--friends K] [--secs S]` (S8): N users
//! in one N-member chat, each with K friends, connect within S seconds: presence frames per
//! second, server CPU, and how soon each connected friend sees a newcomer online.
//!
//! Usage: harmony-bench [--quick | --full] [--harmony PATH] [--only s1,s2,...]
//!                      [--peers node-ws,socket.io,bare-tokio | none] [--users N] [--rounds N]
//!                      [--sources N] [--out DIR] [--s1-steps N,N] [--s2-conns N,N]
//!                      [--s2-messages N] [--s2-rate R] [--s5-rates R,R] [--s6-clients N]
//!                      [--s7-rates POST,READ]
//!   --quick   every scenario, small (about 2 minutes; the CI smoke test, no timing asserted)
//!   --full    the report's sizes: S1 up to 19,500 connections, S2 up to 10,000 receivers
//!             (20,000 deliveries/s at every size),
//!             S4 10,000 connections at 1,000 msg/s, S6 10,000 clients
//!   --out     write report.md, data.json and PNG plots into DIR (plots need python3; bench/plot.sh
//!             installs matplotlib into a cached virtualenv)
//! Run it from the repository root with release builds for numbers worth reporting:
//!   cargo build --release -p harmony-server -p harmony-bench
//!   target/release/harmony-bench --full --harmony target/release/harmony --out bench/results/NAME

mod broadcast;
mod cluster;
mod conn;
mod failover;
mod floor;
mod harmony;
mod idle;
mod mix;
mod peers;
mod presence;
mod proc_stats;
mod readers;
mod report;
mod rest;
mod run;
mod stores;
mod stuck;

use std::path::PathBuf;

use anyhow::{bail, Context};

/// Sizes of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub harmony: PathBuf,
    pub root: PathBuf,
    pub only: Vec<String>,
    pub peers: Vec<String>,
    pub users: usize,
    pub rounds: usize,
    pub sources: u8,
    pub out: Option<PathBuf>,
    pub s1_steps: Vec<usize>,
    pub s2_conns: Vec<usize>,
    pub s2_messages: usize,
    /// Messages per second; with `s2_load`, derived per receiver count instead.
    pub s2_rate: f64,
    /// Deliveries per second to aim at: each receiver count gets rate = load / receivers,
    /// for `s2_secs` seconds (the same work per second at every size).
    pub s2_load: Option<f64>,
    pub s2_secs: f64,
    pub s3_conns: usize,
    pub s4_rate: f64,
    pub s4_secs: f64,
    pub s5_rates: Vec<f64>,
    pub s5_secs: f64,
    pub s6_users: usize,
    pub s6_clients: usize,
    pub s6_rate: f64,
    pub s7_post_rate: f64,
    pub s7_read_rate: f64,
    pub s7_secs: f64,
    /// S7s: messages per chat (50 chats) the sink catches up on.
    pub s7s_per_chat: usize,
}

impl Plan {
    fn quick() -> Self {
        Self {
            harmony: PathBuf::from("target/release/harmony"),
            root: PathBuf::from("."),
            only: Vec::new(),
            peers: vec!["node-ws".into(), "socket.io".into(), "bare-tokio".into()],
            users: 60,
            rounds: 2,
            sources: 4,
            out: None,
            s1_steps: vec![200, 600],
            s2_conns: vec![60],
            s2_messages: 40,
            s2_rate: 20.0,
            s2_load: None,
            s2_secs: 0.0,
            s3_conns: 30,
            s4_rate: 60.0,
            s4_secs: 2.0,
            s5_rates: vec![100.0, 200.0],
            s5_secs: 1.0,
            s6_users: 20,
            s6_clients: 40,
            s6_rate: 20.0,
            s7_post_rate: 100.0,
            s7_read_rate: 200.0,
            s7_secs: 2.0,
            s7s_per_chat: 4,
        }
    }

    fn full() -> Self {
        Self {
            users: 10_000,
            rounds: 3,
            sources: 8,
            s1_steps: vec![1_000, 5_000, 10_000, 19_500],
            s2_conns: vec![1_000, 5_000, 10_000],
            s2_messages: 100,
            s2_rate: 10.0,
            s2_load: Some(20_000.0),
            s2_secs: 10.0,
            s3_conns: 2_000,
            s4_rate: 1_000.0,
            s4_secs: 20.0,
            s5_rates: vec![
                1_000.0, 2_000.0, 4_000.0, 6_000.0, 8_000.0, 12_000.0, 20_000.0,
            ],
            s5_secs: 5.0,
            s6_users: 1_000,
            s6_clients: 10_000,
            s6_rate: 50.0,
            s7_post_rate: 2_000.0,
            s7_read_rate: 5_000.0,
            s7_secs: 10.0,
            s7s_per_chat: 100,
            ..Self::quick()
        }
    }

    /// S2's (messages, rate) for `conns` receivers.
    pub fn s2_size(&self, conns: usize) -> (usize, f64) {
        match self.s2_load {
            Some(load) => {
                let rate = load / conns.max(1) as f64;
                (((rate * self.s2_secs) as usize).max(20), rate)
            }
            None => (self.s2_messages, self.s2_rate),
        }
    }

    pub fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

fn help() {
    let doc: Vec<&str> = include_str!("main.rs")
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .collect();
    println!("{}", doc.join("\n"));
}

/// The value after `flag` in a subcommand's arguments (`--conns 1000`).
pub fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|at| args.get(at + 1))
        .cloned()
}

fn numbers(list: &str) -> anyhow::Result<Vec<usize>> {
    list.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .with_context(|| format!("not a number: {n}"))
        })
        .collect()
}

fn plan(args: &[String]) -> anyhow::Result<Plan> {
    let mut plan = if args.iter().any(|a| a == "--full") {
        Plan::full()
    } else {
        Plan::quick()
    };
    let mut it = args.iter();
    let list = |v: &str| {
        v.split(',')
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
            .collect()
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" | "--full" => {}
            "--harmony" => plan.harmony = PathBuf::from(value()?),
            "--root" => plan.root = PathBuf::from(value()?),
            "--only" => plan.only = list(value()?),
            "--peers" => {
                let v = value()?;
                plan.peers = if v == "none" { Vec::new() } else { list(v) };
            }
            "--users" => plan.users = value()?.parse()?,
            "--rounds" => plan.rounds = value()?.parse()?,
            "--sources" => plan.sources = value()?.parse()?,
            "--out" => plan.out = Some(PathBuf::from(value()?)),
            "--s1-steps" => plan.s1_steps = numbers(value()?)?,
            "--s2-conns" => plan.s2_conns = numbers(value()?)?,
            "--s2-messages" => plan.s2_messages = value()?.parse()?,
            "--s6-clients" => plan.s6_clients = value()?.parse()?,
            "--s5-rates" => {
                plan.s5_rates = numbers(value()?)?.into_iter().map(|r| r as f64).collect()
            }
            "--s7-rates" => match numbers(value()?)?[..] {
                [post, read] => (plan.s7_post_rate, plan.s7_read_rate) = (post as f64, read as f64),
                _ => bail!("--s7-rates takes POST,READ (requests per second)"),
            },
            "--s2-rate" => {
                plan.s2_rate = value()?.parse()?;
                plan.s2_load = None;
            }
            "-h" | "--help" => {
                help();
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; see --help"),
        }
    }
    anyhow::ensure!(
        plan.harmony.exists(),
        "{} does not exist: build harmony first (cargo build --release -p harmony-server)",
        plan.harmony.display()
    );
    Ok(plan)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve-peer") => return peers::serve_peer().await,
        Some("serve-floor") => return floor::serve(&args[1..]).await,
        Some("hold") => return idle::hold(&args[1..]).await,
        Some("stuck") => return stuck::run(&args[1..]).await,
        Some("presence") => return presence::run(&args[1..]).await,
        _ => {}
    }
    let plan = plan(&args)?;
    let command = format!("harmony-bench {}", args.join(" "));
    let results = run::all(&plan, command).await?;
    let md = report::markdown(&results);
    println!("{md}");
    if let Some(out) = &plan.out {
        report::write(&results, out, &plan.root)?;
        eprintln!("report written to {}", out.join("report.md").display());
    }
    run::verdict(&results)
}
