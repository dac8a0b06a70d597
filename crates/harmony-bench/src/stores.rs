//! S7s: the cluster's message store, PostgreSQL and DynamoDB (dynalite) in the same run
//! (decision record 0005). For each: a cluster whose writer node runs every worker but the
//! sink; messages sent into 50 chats pile up in the log; then a sink-only node starts, and the
//! time until the store holds them all is the sink's catch-up rate. Then history pages are read
//! open loop through the writer, with the store's own processes measured apart. dynalite is a
//! Node.js emulation on LevelDB: its numbers say what Harmony's adapter costs and how it
//! behaves, not what AWS's service would answer.

use std::path::Path;
use std::time::{Duration, Instant};

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::TestApp;

use crate::harmony::bench_env;
use crate::rest::{Load, RestTarget};

/// The writer runs every worker but the sink; the sink starts alone, later.
const WRITER_ROLES: &str = "api,fanout,projector,relay";

/// What a sink did when it started behind.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CatchUp {
    pub store: String,
    pub messages: usize,
    pub secs: f64,
}

async fn node(cluster: &TestCluster, bin: &Path, roles: &str) -> anyhow::Result<TestApp> {
    let mut env = cluster.env(roles);
    env.extend(bench_env());
    TestApp::process(bin, &env).await
}

/// Runs S7s on one store: `(catch-up, history reads)`.
pub async fn one(
    bin: &Path,
    dynamodb: bool,
    per_chat: usize,
    read_rate: f64,
    secs: f64,
) -> anyhow::Result<(CatchUp, Load)> {
    let store = if dynamodb { "dynamodb" } else { "postgres" };
    eprintln!("S7s: the message store on {store}");
    let cluster = if dynamodb {
        TestCluster::with_dynamodb().await?
    } else {
        TestCluster::start().await?
    };
    let writer = node(&cluster, bin, WRITER_ROLES).await?;
    let users = crate::harmony::register(&writer, "s", 50).await?;
    let mut chats = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let chat = crate::harmony::group(&writer, user, &format!("store{i}"), &[]).await?;
        chats.push((chat, user.access.clone()));
    }
    let mut services: Vec<u32> = cluster
        .postgres
        .pid()
        .map(crate::proc_stats::with_children)
        .unwrap_or_default();
    services.extend(cluster.dynamo.as_ref().and_then(|d| d.pid()));
    let target = RestTarget {
        name: if dynamodb {
            "cluster, dynamodb"
        } else {
            "cluster, postgres"
        },
        client: writer.client.clone(),
        base: writer.url(""),
        pids: writer.pid().into_iter().collect(),
        services,
        chats,
    };
    let messages = per_chat * target.chats.len();
    let sent = crate::rest::post_load(&target, 500.0, messages as f64 / 500.0).await?;
    anyhow::ensure!(sent.failed == 0, "{} sends failed", sent.failed);
    let messages = sent.requests;

    let started = Instant::now();
    let sink = node(&cluster, bin, "sink").await?;
    let deadline = started + Duration::from_secs(300);
    loop {
        if stored(&target).await? >= messages {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the {store} sink did not catch up in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catch_up = CatchUp {
        store: store.to_owned(),
        messages,
        secs: started.elapsed().as_secs_f64(),
    };
    let reads = crate::rest::history_load(&target, read_rate, secs).await?;
    sink.stop().await?;
    writer.stop().await?;
    Ok((catch_up, reads))
}

/// Messages readable from history across the target's chats (each chat's newest seq).
async fn stored(target: &RestTarget) -> anyhow::Result<usize> {
    let mut total = 0;
    for (chat, token) in &target.chats {
        let url = format!("{}/api/v1/chats/{chat}/messages?limit=1", target.base);
        let r = target.client.get(url).bearer_auth(token).send().await?;
        if !r.status().is_success() {
            return Ok(0);
        }
        let page: serde_json::Value = r.json().await?;
        total += page["messages"][0]["seq"].as_u64().unwrap_or(0) as usize;
    }
    Ok(total)
}
