//! `harmony migrate --to-cluster`: moves a stopped single node's data (its data directory) into
//! the cluster its settings name. Users with their password hashes and refresh tokens (logins
//! survive), friendships and requests, chats with their members and read markers, and every
//! message at its seq, placed so each chat's order goes on from where it was. Safe to run again
//! after an interruption (every write is idempotent); refused when the cluster already placed
//! newer messages in one of the chats (it is not a fresh cluster for this node).

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, Context};
use harmony_postgres::import::Import;
use harmony_sqlite::export::Export;

use crate::config::Config;

/// Log entries moved per transaction.
const PAGE: u32 = 1000;

/// What a migration moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub users: usize,
    pub chats: usize,
    pub messages: u64,
}

pub async fn to_cluster(config: &Config) -> anyhow::Result<Moved> {
    let c = &config.cluster;
    if c.postgres_url.is_empty() {
        bail!(
            "set the cluster's databases (cluster.postgres_url, and cluster.history_url if apart)"
        );
    }
    let dir = &config.server.data_dir;
    let _lock = harmony_sqlite::backup::lock_data_dir(dir)
        .context("the single node must be stopped while it is migrated")?;
    let mut source = Export::open(&dir.join("harmony.db"))?;
    let history_url = if c.history_url.is_empty() {
        &c.postgres_url
    } else {
        &c.history_url
    };
    let target = Import::connect(&c.postgres_url, history_url)
        .await
        .context("connecting to the cluster's databases")?;

    // A chat the cluster placed past where this node left it took messages there already.
    let ours: HashMap<_, _> = source.heads()?.into_iter().collect();
    for (chat, head) in target.heads().await? {
        if ours.get(&chat).is_some_and(|mine| head > *mine) {
            bail!(
                "chat {chat} has messages in the cluster past this node's (seq {head}); \
                 migrate into a cluster that has not taken messages in its chats"
            );
        }
    }

    let started = Instant::now();
    let state = source.state()?;
    eprintln!(
        "moving {} users, {} chats ({} memberships), {} friendships, {} friend requests, {} \
         refresh tokens",
        state.users.len(),
        state.chats.len(),
        state.members.len(),
        state.friendships.len(),
        state.friend_requests.len(),
        state.refresh_tokens.len()
    );
    target.state(&state).await?;

    let total = source.log_len()?;
    eprintln!("moving {total} messages");
    let (mut position, mut moved) = (0i64, 0u64);
    let mut reported = Instant::now();
    loop {
        let page = source.log_after(position, PAGE)?;
        let Some(last) = page.last() else { break };
        position = last.position;
        target.log(&page).await?;
        moved += page.len() as u64;
        if reported.elapsed().as_secs() >= 2 {
            reported = Instant::now();
            eprintln!(
                "  {moved} of {total} messages ({:.0}/s)",
                moved as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "done in {:.1} s. Nodes of the cluster need the same signing key to accept the access \
         tokens already out: set auth.jwt_secret to the contents of {} (or clients refresh).",
        started.elapsed().as_secs_f64(),
        dir.join("jwt.key").display()
    );
    Ok(Moved {
        users: state.users.len(),
        chats: state.chats.len(),
        messages: moved,
    })
}
