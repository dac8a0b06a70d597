//! S1 idle connections: memory per connection of each target, in user space (the server's RSS)
//! and in the kernel (slab caches and socket buffers, machine-wide). The connections are held
//! by child processes of this binary (`harmony-bench hold`), at most `PER_HOLDER` each, because
//! a process may open only 20,000 files here.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::conn::{self, Protocol, Sources, Target};
use crate::proc_stats::{kernel_kib, Usage};

/// Connections per holder process.
pub const PER_HOLDER: usize = 9_750;

/// One step of S1 for one target.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    pub target: String,
    pub conns: usize,
    /// Growth of the target's RSS over its idle baseline, per connection, bytes.
    pub user_bytes_per_conn: f64,
    /// Growth of kernel memory per connection, bytes, counting both ends of each loopback
    /// connection (the server's share is about half).
    pub kernel_bytes_per_conn: f64,
    pub server_rss_kib: u64,
}

/// Holds `count` connections from child processes until dropped.
pub(crate) struct Holders(Vec<Child>);

impl Holders {
    pub(crate) async fn open(
        target: &Target,
        count: usize,
        sources: u8,
        tokens: &[String],
    ) -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        let mut children = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = left.min(PER_HOLDER);
            left -= n;
            let mut child = Command::new(&me)
                .arg("hold")
                .args(["--addr", &target.addr.to_string()])
                .args(["--protocol", protocol_name(target.protocol)])
                .args(["--count", &n.to_string()])
                .args(["--sources", &sources.to_string()])
                .args(["--tokens", &tokens.join(",")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting a holder")?;
            let stdout = child.stdout.take().context("holder stdout")?;
            let line = tokio::time::timeout(
                Duration::from_secs(300),
                BufReader::new(stdout).lines().next_line(),
            )
            .await
            .context("a holder did not open its connections within 300 s")??
            .context("a holder exited before holding its connections")?;
            anyhow::ensure!(line.starts_with("held"), "holder said: {line}");
            children.push(child);
        }
        Ok(Self(children))
    }

    pub(crate) async fn close(self) -> anyhow::Result<()> {
        for mut child in self.0 {
            drop(child.stdin.take());
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        Ok(())
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Harmony => "harmony",
        Protocol::Plain => "plain",
        Protocol::SocketIo => "socket.io",
    }
}

/// Runs the steps (connection counts, ascending) against one target.
pub async fn run(
    name: &str,
    target: &Target,
    pids: &[u32],
    steps: &[usize],
    sources: u8,
    tokens: &[String],
) -> anyhow::Result<Vec<Step>> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = Usage::of(pids)?;
    let mut out = Vec::new();
    for &count in steps {
        let kernel_before = kernel_kib()?;
        let holders = Holders::open(target, count, sources, tokens).await?;
        // Let the server settle (sessions registered, buffers trimmed).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let usage = Usage::of(pids)?;
        let kernel_after = kernel_kib()?;
        holders.close().await?;
        let step = Step {
            target: name.to_owned(),
            conns: count,
            user_bytes_per_conn: (usage.rss_kib.saturating_sub(base.rss_kib) * 1024) as f64
                / count as f64,
            kernel_bytes_per_conn: (kernel_after.saturating_sub(kernel_before) * 1024) as f64
                / count as f64,
            server_rss_kib: usage.rss_kib,
        };
        eprintln!(
            "  S1 {name}: {count} idle connections: {:.0} B user + {:.0} B kernel each",
            step.user_bytes_per_conn, step.kernel_bytes_per_conn
        );
        out.push(step);
        // Wait until the server has let the closed connections go.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(out)
}

/// `harmony-bench hold`: opens the connections, says `held N`, and keeps them until stdin closes.
pub async fn hold(args: &[String]) -> anyhow::Result<()> {
    let value = |flag: &str| -> anyhow::Result<String> {
        let at = args
            .iter()
            .position(|a| a == flag)
            .with_context(|| format!("hold needs {flag}"))?;
        args.get(at + 1)
            .cloned()
            .with_context(|| format!("{flag} needs a value"))
    };
    let protocol = match value("--protocol")?.as_str() {
        "harmony" => Protocol::Harmony,
        "plain" => Protocol::Plain,
        "socket.io" => Protocol::SocketIo,
        other => anyhow::bail!("unknown protocol {other}"),
    };
    let target = Target {
        addr: value("--addr")?.parse()?,
        protocol,
    };
    let count: usize = value("--count")?.parse()?;
    let sources = Sources::new(value("--sources")?.parse()?);
    let tokens: Vec<String> = value("--tokens")?
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let held = conn::open_many(&target, &sources, count, 64, |i| {
        (!tokens.is_empty()).then(|| tokens[i % tokens.len()].clone())
    })
    .await?;
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "held {}", held.len())?;
        stdout.flush()?;
    }
    // Until the parent closes our stdin (or goes away).
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    drop(held);
    Ok(())
}
