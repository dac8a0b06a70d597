//! The servers Harmony is compared with, started in the same run on the same machine: the Node
//! `ws` and Socket.IO (with `@socket.io/redis-adapter` on a private Redis) programs in
//! `bench/peers/`, and a bare tokio WebSocket broadcast server (this binary's `serve-peer`), the
//! machine's own limit for a WebSocket fan-out without durability, auth or ordering.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use harmony_testkit::redis::PrivateRedis;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::conn::{Protocol, Target};

/// A running peer: its processes (for CPU and memory) and where to connect.
pub struct Peer {
    pub name: &'static str,
    pub target: Target,
    children: Vec<Child>,
    /// The Socket.IO peer's Redis.
    redis: Option<PrivateRedis>,
}

impl Peer {
    /// The process ids whose CPU and memory count for this peer.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.children.iter().filter_map(Child::id).collect();
        if let Some(redis) = &self.redis {
            pids.extend(redis.pid());
        }
        pids
    }
}

/// `bench/peers`, with its npm packages installed (once).
pub async fn peers_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("bench/peers");
    anyhow::ensure!(
        dir.join("package.json").exists(),
        "{} not found: run harmony-bench from the repository root or pass --root",
        dir.display()
    );
    if !dir.join("node_modules/socket.io").exists() {
        eprintln!("installing the peers' npm packages in {}", dir.display());
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .await
            .context("running npm (Node.js is needed for the peers)")?;
        anyhow::ensure!(status.success(), "npm install failed in {}", dir.display());
    }
    Ok(dir)
}

/// Starts `program args…` and waits for its `listening <port>` line.
pub(crate) async fn spawn_listening(mut command: Command) -> anyhow::Result<(Child, u16)> {
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a peer")?;
    let stdout = child.stdout.take().context("the peer's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .context("the peer did not start listening within 20 s")??
        .context("the peer exited before listening")?;
    let port = line
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("unexpected first line from a peer: {line}"))?;
    Ok((child, port))
}

fn target(port: u16, protocol: Protocol) -> Target {
    Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        protocol,
    }
}

pub async fn node_ws(dir: &Path) -> anyhow::Result<Peer> {
    let mut command = Command::new("node");
    command.arg(dir.join("ws-server.mjs")).arg("0");
    let (child, port) = spawn_listening(command).await?;
    Ok(Peer {
        name: "node-ws",
        target: target(port, Protocol::Plain),
        children: vec![child],
        redis: None,
    })
}

pub async fn socket_io(dir: &Path) -> anyhow::Result<Peer> {
    let redis = PrivateRedis::start().await?;
    let mut command = Command::new("node");
    command
        .arg(dir.join("socketio-server.mjs"))
        .arg("0")
        .arg(redis.url());
    let (child, port) = spawn_listening(command).await?;
    Ok(Peer {
        name: "socket.io",
        target: target(port, Protocol::SocketIo),
        children: vec![child],
        redis: Some(redis),
    })
}

pub async fn bare_tokio() -> anyhow::Result<Peer> {
    let me = std::env::current_exe().context("this binary's path")?;
    let mut command = Command::new(me);
    command.arg("serve-peer");
    let (child, port) = spawn_listening(command).await?;
    Ok(Peer {
        name: "bare-tokio",
        target: target(port, Protocol::Plain),
        children: vec![child],
        redis: None,
    })
}

/// `harmony-bench serve-peer`: the bare tokio broadcast server. Every text frame goes to every
/// other connection, as it is; one task per connection, one broadcast channel.
pub async fn serve_peer() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    let (tx, _) = broadcast::channel::<(u64, Utf8Bytes)>(65_536);
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let (tx, id) = (tx.clone(), ids.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0);
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let mut rx = tx.subscribe();
            loop {
                tokio::select! {
                    incoming = ws.next() => match incoming {
                        Some(Ok(Message::Text(text))) => { let _ = tx.send((id, text)); }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    out = rx.recv() => match out {
                        Ok((from, text)) if from != id => {
                            if ws.send(Message::Text(text)).await.is_err() { return; }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
    }
}

/// Starts the peers named in `names` (node-ws, socket.io, bare-tokio).
pub async fn start(names: &[String], root: &Path) -> anyhow::Result<Vec<Peer>> {
    let mut peers = Vec::new();
    for name in names {
        peers.push(match name.as_str() {
            "node-ws" => node_ws(&peers_dir(root).await?).await?,
            "socket.io" => socket_io(&peers_dir(root).await?).await?,
            "bare-tokio" => bare_tokio().await?,
            other => bail!("unknown peer {other} (node-ws, socket.io, bare-tokio)"),
        });
    }
    Ok(peers)
}
