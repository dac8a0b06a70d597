//! Open-loop HTTP load (S5 ingest ramp, S7 REST): requests start when they are due, whatever the
//! earlier ones are doing, and each is timed from when it was due (no coordinated omission).

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::proc_stats::{CpuMem, Usage};

/// What one open-loop run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Load {
    pub what: String,
    pub rate: f64,
    pub requests: usize,
    pub failed: usize,
    /// µs: p50, p99, p99.9, max.
    pub latency: [u64; 4],
    pub achieved_per_sec: f64,
    pub server_cpu_secs: f64,
    /// CPU of the services the server needs (a cluster's PostgreSQL, Redis and broker); 0 for
    /// a single node.
    #[serde(default)]
    pub services_cpu_secs: f64,
    pub generator_cpu_secs: f64,
    pub elapsed_secs: f64,
}

impl Load {
    pub fn generator_saturated(&self) -> bool {
        self.generator_cpu_secs / self.elapsed_secs.max(1e-9) > 0.9
    }
}

/// Runs `request(i)` at `rate`/s for `secs` seconds.
pub async fn open_loop<F, Fut>(
    what: &str,
    pids: &[u32],
    services: &[u32],
    rate: f64,
    secs: f64,
    request: F,
) -> anyhow::Result<Load>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let total = (rate * secs).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let before = Usage::of(pids)?;
    let services_before = Usage::of(services)?;
    let me_before = CpuMem::of(std::process::id())?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let fut = request(i);
        tasks.push(tokio::spawn(async move {
            let result = fut.await;
            (result, due.elapsed())
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        let (result, took) = task.await?;
        if let Err(e) = result {
            failed += 1;
            first_error.get_or_insert(e);
        }
        hist.record((took.as_micros() as u64).max(1))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = first_error {
        eprintln!("  {what} at {rate}/s: {failed} requests failed; the first: {e:#}");
    }
    let after = Usage::of(pids)?;
    let services_after = Usage::of(services)?;
    let me_after = CpuMem::of(std::process::id())?;
    Ok(Load {
        what: what.to_owned(),
        rate,
        requests: total,
        failed,
        latency: [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max(),
        ],
        achieved_per_sec: (total - failed) as f64 / elapsed,
        server_cpu_secs: after.cpu_secs - before.cpu_secs,
        services_cpu_secs: services_after.cpu_secs - services_before.cpu_secs,
        generator_cpu_secs: me_after.cpu_secs - me_before.cpu_secs,
        elapsed_secs: elapsed,
    })
}

/// A server under S5/S7: Harmony or the floor, its processes, and for each chat the token of
/// the one member who writes and reads it.
pub struct RestTarget {
    pub name: &'static str,
    pub client: reqwest::Client,
    pub base: String,
    pub pids: Vec<u32>,
    /// The services it needs, measured apart (a cluster's PostgreSQL, Redis, broker).
    pub services: Vec<u32>,
    pub chats: Vec<(String, String)>,
}

impl RestTarget {
    /// Each chat's messages URL (with `query`) and its user's token.
    fn urls(&self, query: &str) -> Vec<(String, String)> {
        self.chats
            .iter()
            .map(|(chat, token)| {
                let url = format!("{}/api/v1/chats/{chat}/messages{query}", self.base);
                (url, token.clone())
            })
            .collect()
    }
}

/// POSTs into the target's chats round robin, each by its member.
pub async fn post_load(target: &RestTarget, rate: f64, secs: f64) -> anyhow::Result<Load> {
    let client = target.client.clone();
    let urls = target.urls("");
    let what = format!("POST message ({})", target.name);
    open_loop(&what, &target.pids, &target.services, rate, secs, |i| {
        let (url, token) = urls[i % urls.len()].clone();
        let client = client.clone();
        async move {
            crate::harmony::post(&client, &url, &token, format!("r {i} 0"), Instant::now()).await?;
            Ok(())
        }
    })
    .await
}

/// Reads the newest page of history of the target's chats round robin.
pub async fn history_load(target: &RestTarget, rate: f64, secs: f64) -> anyhow::Result<Load> {
    let client = target.client.clone();
    let urls = target.urls("?limit=50");
    let what = format!("GET history ({})", target.name);
    open_loop(&what, &target.pids, &target.services, rate, secs, |i| {
        let (url, token) = urls[i % urls.len()].clone();
        let client = client.clone();
        async move {
            let r = client.get(url).bearer_auth(token).send().await?;
            anyhow::ensure!(
                r.status() == reqwest::StatusCode::OK,
                "history answered {}",
                r.status()
            );
            r.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Edits a message of each of the target's chats round robin, each by its author: a change is
/// an entry of the chat's order like a send (decision record 0004), so its cost sits next to a
/// send's in the same run.
pub async fn edit_load(target: &RestTarget, rate: f64, secs: f64) -> anyhow::Result<Load> {
    let client = target.client.clone();
    let mut urls = Vec::new();
    for (url, token) in target.urls("") {
        let r = client
            .post(&url)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "content": "to be edited" }))
            .send()
            .await?;
        anyhow::ensure!(
            r.status() == reqwest::StatusCode::CREATED,
            "POST answered {}",
            r.status()
        );
        let body: serde_json::Value = r.json().await?;
        let id = body["id"].as_str().unwrap_or_default();
        urls.push((format!("{url}/{id}"), token));
    }
    let what = format!("PATCH edit ({})", target.name);
    open_loop(&what, &target.pids, &target.services, rate, secs, |i| {
        let (url, token) = urls[i % urls.len()].clone();
        let client = client.clone();
        async move {
            let r = client
                .patch(url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "content": format!("edit {i}") }))
                .send()
                .await?;
            anyhow::ensure!(
                r.status() == reqwest::StatusCode::OK,
                "PATCH answered {}",
                r.status()
            );
            Ok(())
        }
    })
    .await
}

/// S5: raises the POST rate step by step until ack p99 passes `knee_us` (or requests fail).
pub async fn ramp(
    target: &RestTarget,
    rates: &[f64],
    secs: f64,
    knee_us: u64,
) -> anyhow::Result<Vec<Load>> {
    let mut out = Vec::new();
    for &rate in rates {
        let load = post_load(target, rate, secs).await?;
        eprintln!(
            "  S5 {} {rate}/s: ack p50 {:.2} ms p99 {:.2} ms, {} failed",
            target.name,
            load.latency[0] as f64 / 1000.0,
            load.latency[1] as f64 / 1000.0,
            load.failed
        );
        let past_knee = load.latency[1] > knee_us || load.failed > 0;
        out.push(load);
        if past_knee {
            break;
        }
        // Let the sink and fan-out catch up before the next step.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(out)
}
