//! Harmony under test: the real binary on a fresh data directory (or a cluster of them on
//! private PostgreSQL, Redis and broker), with the users and chats a scenario needs.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use harmony_testkit::{TestApp, TestUser};

use crate::conn::{Protocol, Target};

/// Limits raised so the scenarios measure the system, not its per-user protections.
pub fn bench_env() -> Vec<(String, String)> {
    [
        ("HARMONY_LIMITS__SEND_BURST", "10000000"),
        ("HARMONY_LIMITS__SEND_PER_SECOND", "10000000"),
        ("HARMONY_GATEWAY__SESSION_QUEUE", "65536"),
        ("HARMONY_LIMITS__MAX_GROUP_MEMBERS", "100000"),
        // Scenarios hold many connections per user, and S1's holders never read (so they never
        // answer a ping): neither cap nor idle timeout may close them mid-measurement.
        ("HARMONY_GATEWAY__MAX_SESSIONS_PER_USER", "1000000"),
        ("HARMONY_GATEWAY__IDLE_TIMEOUT_SECS", "86400"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A single node started from `bin`.
pub async fn single(bin: &Path) -> anyhow::Result<TestApp> {
    TestApp::process(bin, &bench_env()).await
}

pub fn target(app: &TestApp) -> Target {
    Target {
        addr: app.addr,
        protocol: Protocol::Harmony,
    }
}

/// Registers `count` users named `<prefix><i>`, `parallel` at a time (password hashing is the
/// cost), with progress on stderr.
pub async fn register(app: &TestApp, prefix: &str, count: usize) -> anyhow::Result<Vec<TestUser>> {
    let started = Instant::now();
    let parallel = 4;
    let mut users = Vec::with_capacity(count);
    let mut stream = futures_util::stream::iter(0..count)
        .map(|i| {
            let name = format!("{prefix}{i:05}");
            async move { app.register(&name).await }
        })
        .buffered(parallel);
    while let Some(user) = stream.next().await {
        users.push(user?);
        if users.len() % 1000 == 0 {
            eprintln!(
                "  registered {} of {count} users ({:.0}/s)",
                users.len(),
                users.len() as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(users)
}

/// Creates a group of `owner` and `members`: up to the 1,000 ids a create request takes, the
/// rest added one by one (`POST /chats/{id}/members`, 8 at a time).
pub async fn group(
    app: &TestApp,
    owner: &TestUser,
    name: &str,
    members: &[TestUser],
) -> anyhow::Result<String> {
    let others: Vec<&TestUser> = members.iter().filter(|m| m.id != owner.id).collect();
    let (first, rest) = others.split_at(others.len().min(999));
    let chat = app
        .group(owner, name, first)
        .await
        .with_context(|| format!("creating group {name}"))?;
    let path = format!("/api/v1/chats/{chat}/members");
    let added: Vec<anyhow::Result<()>> = futures_util::stream::iter(rest)
        .map(|user| {
            let path = &path;
            async move {
                let body = serde_json::json!({ "user_id": user.id });
                let reply = app.post(path, &owner.access, body).await?;
                anyhow::ensure!(
                    reply.status == reqwest::StatusCode::CREATED,
                    "add member: {reply:?}"
                );
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    added.into_iter().collect::<anyhow::Result<()>>()?;
    Ok(chat)
}

/// POSTs one message; returns the time from `due` to the answer.
pub async fn post(
    app_client: &reqwest::Client,
    url: &str,
    token: &str,
    content: String,
    due: Instant,
) -> anyhow::Result<Duration> {
    let r = app_client
        .post(url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "content": content }))
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == reqwest::StatusCode::CREATED,
        "POST answered {}",
        r.status()
    );
    Ok(due.elapsed())
}

/// Renews every user's access token (they live at most 15 minutes; a full run is longer),
/// `parallel` at a time.
pub async fn refresh(app: &TestApp, users: &mut [TestUser]) -> anyhow::Result<()> {
    let renewed: Vec<anyhow::Result<(String, String)>> =
        futures_util::stream::iter(users.iter().map(|u| u.refresh.clone()))
            .map(|token| async move {
                let reply = app
                    .call(
                        reqwest::Method::POST,
                        "/api/v1/auth/refresh",
                        None,
                        Some(serde_json::json!({ "refresh_token": token })),
                    )
                    .await?;
                anyhow::ensure!(
                    reply.status == reqwest::StatusCode::OK,
                    "refresh: {reply:?}"
                );
                Ok((reply.str("/access_token"), reply.str("/refresh_token")))
            })
            .buffered(16)
            .collect()
            .await;
    for (user, tokens) in users.iter_mut().zip(renewed) {
        (user.access, user.refresh) = tokens?;
    }
    Ok(())
}
