//! Runs the scenarios a plan asks for, in order: the single node with its peers (S1, S2, S4, S5,
//! S7), then the cluster (S3, S6). Progress goes to stderr; results are gathered for the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use harmony_testkit::{TestApp, TestUser};

use crate::broadcast::{self, Receivers, Sender};
use crate::conn::{self, Sources};
use crate::peers::Peer;
use crate::report::{self, Results};
use crate::rest::RestTarget;
use crate::Plan;

/// The single node with its users, whose tokens are renewed when they get old.
struct Node {
    app: TestApp,
    pids: Vec<u32>,
    users: Vec<TestUser>,
    refreshed: Instant,
}

impl Node {
    async fn fresh(&mut self) -> anyhow::Result<&[TestUser]> {
        if self.refreshed.elapsed() > Duration::from_secs(600) {
            eprintln!("renewing {} access tokens", self.users.len());
            crate::harmony::refresh(&self.app, &mut self.users).await?;
            self.refreshed = Instant::now();
        }
        Ok(&self.users)
    }
}

pub async fn all(plan: &Plan, command: String) -> anyhow::Result<Results> {
    let mut results = Results {
        machine: report::machine(),
        command,
        ..Results::default()
    };
    let sources = Arc::new(Sources::new(plan.sources));
    let single = ["s1", "s2", "s4", "s5", "s7"].iter().any(|s| plan.wants(s));
    if single {
        let app = crate::harmony::single(&plan.harmony).await?;
        let pids: Vec<u32> = app.pid().into_iter().collect();
        eprintln!(
            "harmony {} (pid {pids:?}); registering {} users",
            app.addr, plan.users
        );
        let users = crate::harmony::register(&app, "u", plan.users).await?;
        let mut node = Node {
            app,
            pids,
            users,
            refreshed: Instant::now(),
        };
        let peers = if plan.wants("s1") || plan.wants("s2") {
            crate::peers::start(&plan.peers, &plan.root).await?
        } else {
            Vec::new()
        };
        if plan.wants("s1") {
            let outcome = s1(plan, &mut node, &peers, &mut results).await;
            record(&mut results, "S1", outcome);
        }
        if plan.wants("s2") {
            let outcome = s2(plan, &mut node, &peers, &sources, &mut results).await;
            record(&mut results, "S2", outcome);
        }
        drop(peers);
        if plan.wants("s4") {
            let outcome = s4(plan, &mut node, &sources, &mut results).await;
            record(&mut results, "S4", outcome);
        }
        if plan.wants("s5") || plan.wants("s7") {
            let outcome = rest(plan, &mut node, &mut results).await;
            record(&mut results, "S5/S7", outcome);
        }
        node.app.stop().await?;
    }
    if plan.wants("s7s") {
        for dynamodb in [false, true] {
            let outcome = crate::stores::one(
                &plan.harmony,
                dynamodb,
                plan.s7s_per_chat,
                // dynalite is one Node.js thread: at 1,000 pages/s it served 381 and timed out the
                // rest, so both stores are read at a rate it holds.
                plan.s7_read_rate / 20.0,
                plan.s7_secs,
            )
            .await
            .map(|(catch_up, reads)| {
                results.catch_up.push(catch_up);
                results.s7.push(reads);
            });
            record(&mut results, "S7s", outcome);
        }
    }
    if plan.wants("s3") || plan.wants("s6") || plan.wants("s7c") {
        let outcome = cluster(plan, &sources, &mut results).await;
        record(&mut results, "S3/S6", outcome);
    }
    Ok(results)
}

/// Keeps a scenario's failure in the report, so the others' results are not lost with it.
fn record(results: &mut Results, scenario: &str, outcome: anyhow::Result<()>) {
    if let Err(e) = outcome {
        eprintln!("{scenario} failed: {e:#}");
        results.errors.push(format!("{scenario}: {e:#}"));
    }
}

async fn s1(
    plan: &Plan,
    node: &mut Node,
    peers: &[Peer],
    results: &mut Results,
) -> anyhow::Result<()> {
    let tokens: Vec<String> = node
        .fresh()
        .await?
        .iter()
        .take(100)
        .map(|u| u.access.clone())
        .collect();
    let target = crate::harmony::target(&node.app);
    let steps = &plan.s1_steps;
    let harmony = crate::idle::run("harmony", &target, &node.pids, steps, plan.sources, &tokens);
    results.s1.extend(harmony.await?);
    for peer in peers {
        let pids = peer.pids();
        let theirs = crate::idle::run(peer.name, &peer.target, &pids, steps, plan.sources, &[]);
        results.s1.extend(theirs.await?);
    }
    Ok(())
}

async fn s4(
    plan: &Plan,
    node: &mut Node,
    sources: &Sources,
    results: &mut Results,
) -> anyhow::Result<()> {
    let users = node.fresh().await?.to_vec();
    let chats = crate::mix::chats(&node.app, &users, 10).await?;
    eprintln!(
        "S4: {} connections in {} chats at {}/s",
        chats.len() * 10,
        chats.len(),
        plan.s4_rate
    );
    let (app, pids) = (&node.app, &node.pids);
    results.s4 =
        Some(crate::mix::run(app, pids, &chats, sources, plan.s4_rate, plan.s4_secs).await?);
    Ok(())
}

async fn rest(plan: &Plan, node: &mut Node, results: &mut Results) -> anyhow::Result<()> {
    let authors = rest_chats(node).await?;
    let harmony = RestTarget {
        name: "harmony",
        client: node.app.client.clone(),
        base: node.app.url(""),
        pids: node.pids.clone(),
        services: Vec::new(),
        chats: authors
            .iter()
            .map(|(chat, user)| (chat.clone(), user.access.clone()))
            .collect(),
    };
    // The floor: the same requests on the same stack with nothing but what they need.
    let floor = crate::floor::Running::start(&authors).await?;
    for target in [&harmony, &floor.target] {
        // A second of sends first, not counted: the first fsyncs of a fresh file and the first
        // connections are not what a step of the ramp is about.
        crate::rest::post_load(target, 200.0, 1.0).await?;
        if plan.wants("s5") {
            eprintln!("S5: ingest ramp ({})", target.name);
            let ramp = crate::rest::ramp(target, &plan.s5_rates, plan.s5_secs, 20_000);
            results.s5.extend(ramp.await?);
        }
        if plan.wants("s7") {
            eprintln!("S7: REST ({})", target.name);
            let posts = crate::rest::post_load(target, plan.s7_post_rate, plan.s7_secs);
            results.s7.push(posts.await?);
            let reads = crate::rest::history_load(target, plan.s7_read_rate, plan.s7_secs);
            results.s7.push(reads.await?);
            if target.name == "harmony" {
                let edits = crate::rest::edit_load(target, plan.s7_post_rate, plan.s7_secs);
                results.s7.push(edits.await?);
            }
        }
    }
    Ok(())
}

/// Chats of one member each for the REST scenarios (one per 20 users, at least one).
async fn rest_chats(node: &mut Node) -> anyhow::Result<Vec<(String, TestUser)>> {
    let users = node.fresh().await?.to_vec();
    let mut chats = Vec::new();
    for (i, user) in users.iter().step_by(20).take(50).enumerate() {
        let chat = crate::harmony::group(&node.app, user, &format!("rest{i}"), &[]).await?;
        chats.push((chat, user.clone()));
    }
    Ok(chats)
}

async fn s2(
    plan: &Plan,
    node: &mut Node,
    peers: &[Peer],
    sources: &Sources,
    results: &mut Results,
) -> anyhow::Result<()> {
    let max = plan.s2_conns.iter().copied().max().unwrap_or(0);
    let users = node.fresh().await?.to_vec();
    let members = &users[..users.len().min(max).max(1)];
    let chat = crate::harmony::group(&node.app, &members[0], "s2", members).await?;
    let url = node.app.url(&format!("/api/v1/chats/{chat}/messages"));
    for &conns in &plan.s2_conns {
        let (messages, rate) = plan.s2_size(conns);
        for round in 0..plan.rounds {
            let users = node.fresh().await?.to_vec();
            let target = crate::harmony::target(&node.app);
            let receivers = Receivers::open(&target, sources, conns, |i| {
                Some(users[i % members.len()].access.clone())
            })
            .await?;
            let sender = Sender::Rest {
                client: node.app.client.clone(),
                url: url.clone(),
                token: users[0].access.clone(),
            };
            report(
                results,
                broadcast::round("harmony", &node.pids, receivers, sender, messages, rate).await?,
                round,
            );
            for peer in peers {
                let receivers = Receivers::open(&peer.target, sources, conns, |_| None).await?;
                let (ws, _) = conn::open(&peer.target, sources, None)
                    .await
                    .context("the peer's sender")?;
                let sender = Sender::Ws {
                    ws: Box::new(ws),
                    protocol: peer.target.protocol,
                };
                report(
                    results,
                    broadcast::round(peer.name, &peer.pids(), receivers, sender, messages, rate)
                        .await?,
                    round,
                );
            }
        }
    }
    Ok(())
}

fn report(results: &mut Results, round: broadcast::Round, index: usize) {
    eprintln!(
        "  S2 round {index} {}: {} receivers, last p99 {:.1} ms, {:.2} µs CPU/delivery{}",
        round.target,
        round.conns,
        round.last[1] as f64 / 1000.0,
        round.cpu_us_per_delivery(),
        if round.clean { "" } else { ", FAULTS" }
    );
    results.s2.push(round);
}

async fn cluster(plan: &Plan, sources: &Arc<Sources>, results: &mut Results) -> anyhow::Result<()> {
    eprintln!("cluster: starting PostgreSQL, Redis, the broker and 3 nodes");
    let bench = crate::cluster::Bench::start(&plan.harmony, 2).await?;
    let users = crate::harmony::register(&bench.writer, "c", plan.s6_users.max(10)).await?;
    if plan.wants("s3") {
        eprintln!("S3: {} receivers on a gateway-only node", plan.s3_conns);
        let (messages, rate) = plan.s2_size(plan.s3_conns);
        let (round, cpu) =
            crate::cluster::cross_node(&bench, &users, plan.s3_conns, messages, rate, sources)
                .await?;
        results.s3 = Some((round, cpu));
    }
    if plan.wants("s7c") {
        let outcome = rest_cluster(plan, &bench, &users, results).await;
        record(results, "S7 cluster", outcome);
    }
    if plan.wants("s6") {
        eprintln!("S6: {} clients, kill -9 of their gateway", plan.s6_clients);
        results.s6 = Some(
            crate::failover::gateway_kill(
                bench,
                &users,
                10,
                plan.s6_clients,
                plan.s6_rate,
                Duration::from_secs(3),
                sources.clone(),
            )
            .await?,
        );
    }
    Ok(())
}

/// S7 against the cluster's writer node (api and the workers), with PostgreSQL measured apart:
/// what a send and a history page cost on the PostgreSQL path.
async fn rest_cluster(
    plan: &Plan,
    bench: &crate::cluster::Bench,
    users: &[TestUser],
    results: &mut Results,
) -> anyhow::Result<()> {
    let mut chats = Vec::new();
    for (i, user) in users.iter().step_by(20).take(50).enumerate() {
        let chat = crate::harmony::group(&bench.writer, user, &format!("rest{i}"), &[]).await?;
        chats.push((chat, user.access.clone()));
    }
    // PostgreSQL alone: tansu polls its SQLite store whether busy or not (about half a core,
    // BROKER.md), which would say nothing about Kafka's cost per request.
    let services: Vec<u32> = bench
        .cluster
        .postgres
        .pid()
        .map(crate::proc_stats::with_children)
        .unwrap_or_default();
    let target = RestTarget {
        name: "harmony-cluster",
        client: bench.writer.client.clone(),
        base: bench.writer.url(""),
        pids: bench.writer.pid().into_iter().collect(),
        services,
        chats,
    };
    eprintln!("S7 cluster: REST against the writer node");
    let (post_rate, read_rate) = (plan.s7_post_rate / 2.0, plan.s7_read_rate / 2.0);
    // Warm-up, then the statistics a cluster running for more than a minute has (autovacuum):
    // without them the young tables' cached plans scan them whole.
    crate::rest::post_load(&target, post_rate, 3.0).await?;
    for database in ["state", "history"] {
        bench.cluster.postgres.analyze(database).await?;
    }
    results
        .s7
        .push(crate::rest::post_load(&target, post_rate, plan.s7_secs).await?);
    results
        .s7
        .push(crate::rest::history_load(&target, read_rate, plan.s7_secs).await?);
    Ok(())
}

/// Fails the run when any delivery was lost, duplicated or out of order.
pub fn verdict(r: &Results) -> anyhow::Result<()> {
    let mut faults = r.errors.clone();
    let harmony_rounds = r.s2.iter().filter(|x| x.target == "harmony");
    for round in harmony_rounds.chain(r.s3.as_ref().map(|(x, _)| x)) {
        if !round.clean {
            faults.push(format!(
                "{} with {} receivers: {:?}",
                round.target, round.conns, round.faults
            ));
        }
    }
    if let Some(m) = &r.s4 {
        if !m.clean {
            faults.push(format!("S4: {:?}", m.faults));
        }
    }
    if let Some(f) = &r.s6 {
        if f.gaps > 0 || f.duplicates > 0 || f.resumed < f.clients {
            faults.push(format!(
                "S6: {} gaps, {} duplicates, {} of {} resumed",
                f.gaps, f.duplicates, f.resumed, f.clients
            ));
        }
    }
    // The ramp's last step is past the knee by design; failures there are the knee, not faults.
    // Each server's ramp stops at the step past its knee, where failures may be the point.
    let below_knee =
        r.s5.iter()
            .enumerate()
            .filter(|(i, l)| r.s5.get(i + 1).is_some_and(|next| next.what == l.what));
    for l in r.s7.iter().chain(below_knee.map(|(_, l)| l)) {
        if l.failed > 0 {
            faults.push(format!("{} at {}/s: {} failed", l.what, l.rate, l.failed));
        }
    }
    anyhow::ensure!(
        faults.is_empty(),
        "the run found faults:\n  {}",
        faults.join("\n  ")
    );
    Ok(())
}
