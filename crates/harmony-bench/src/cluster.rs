//! The cluster scenarios' setting, on private PostgreSQL, Redis and broker instances and real
//! `harmony` processes, and S3 cross-node fan-out (sent through an api node, delivered by a
//! gateway-only node through Redis). S6, the gateway kill, is in `failover`.

use std::path::Path;

use anyhow::Context;
use harmony_testkit::cluster::TestCluster;
use harmony_testkit::{TestApp, TestUser};

use crate::broadcast::{self, Receivers, Round, Sender};
use crate::conn::Sources;
use crate::harmony::bench_env;

/// The roles of the node that takes writes and runs the workers.
const WRITER_ROLES: &str = "api,fanout,sink,projector,relay";

async fn node(cluster: &TestCluster, bin: &Path, roles: &str) -> anyhow::Result<TestApp> {
    let mut env = cluster.env(roles);
    env.extend(bench_env());
    TestApp::process(bin, &env).await
}

/// A running cluster: one writer node and `gateways` gateway-only nodes.
pub struct Bench {
    pub cluster: TestCluster,
    pub writer: TestApp,
    pub gateways: Vec<TestApp>,
}

impl Bench {
    pub async fn start(bin: &Path, gateways: usize) -> anyhow::Result<Self> {
        let cluster = TestCluster::start()
            .await
            .context("starting PostgreSQL, Redis and the broker (see scripts/test)")?;
        let writer = node(&cluster, bin, WRITER_ROLES).await?;
        let mut nodes = Vec::new();
        for _ in 0..gateways {
            nodes.push(node(&cluster, bin, "gateway").await?);
        }
        Ok(Self {
            cluster,
            writer,
            gateways: nodes,
        })
    }

    /// Every process of the delivery path but PostgreSQL (whose work is off that path).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = std::iter::once(&self.writer)
            .chain(&self.gateways)
            .filter_map(TestApp::pid)
            .collect();
        pids.extend(self.cluster.redis.pid());
        pids.extend(self.cluster.broker.pid());
        pids
    }
}

/// S3: `members` receivers on a gateway-only node, messages sent through the writer node.
/// Returns the round as the gateway process saw it and the whole cluster's CPU.
pub async fn cross_node(
    bench: &Bench,
    users: &[TestUser],
    conns: usize,
    messages: usize,
    rate: f64,
    sources: &Sources,
) -> anyhow::Result<(Round, f64)> {
    let owner = &users[0];
    let chat = crate::harmony::group(&bench.writer, owner, "s3", users).await?;
    let gateway = &bench.gateways[0];
    let receivers = Receivers::open(&crate::harmony::target(gateway), sources, conns, |i| {
        Some(users[i % users.len()].access.clone())
    })
    .await?;
    let sender = Sender::Rest {
        client: bench.writer.client.clone(),
        url: bench.writer.url(&format!("/api/v1/chats/{chat}/messages")),
        token: owner.access.clone(),
    };
    let all = bench.pids();
    let before = crate::proc_stats::Usage::of(&all)?;
    let gateway_pids: Vec<u32> = gateway.pid().into_iter().collect();
    let round = broadcast::round(
        "harmony-cluster",
        &gateway_pids,
        receivers,
        sender,
        messages,
        rate,
    )
    .await?;
    let cluster_cpu = crate::proc_stats::Usage::of(&all)?.cpu_secs - before.cpu_secs;
    Ok((round, cluster_cpu))
}
