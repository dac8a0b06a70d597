//! Test helpers, used as a dev-dependency only: [`TestApp`] runs a real Harmony node on port 0
//! with a fresh temporary data directory, and gives tests real HTTP and WebSocket clients.
//! Every network await here has a timeout, so a broken server fails a test instead of hanging it.

pub mod cluster;
pub mod conformance;
pub mod dynamo;
mod http;
pub mod kafka;
pub mod load;
pub mod postgres;
pub mod redis;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use harmony_server::{Config, Overrides};
use tokio_util::sync::CancellationToken;

pub use http::{Reply, TestUser};

/// Waits until something listens on `127.0.0.1:port`, at most `within`; `what` names it in the
/// error.
pub(crate) async fn listening(port: u16, what: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{what} did not start on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
pub use ws::WsClient;

/// How long any single network step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A known signing key, so tests can forge tokens signed with the right key (expired ones,
/// wrong types) as well as with wrong ones.
pub const TEST_JWT_SECRET: &[u8; 32] = b"harmony-test-signing-key-32bytes";

/// A running node and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    runner: Runner,
    dir: tempfile::TempDir,
}

/// How the node runs: in this process (fast, for most tests), or as the real binary (for tests
/// that `kill -9` it).
enum Runner {
    Task {
        shutdown: CancellationToken,
        server: tokio::task::JoinHandle<anyhow::Result<()>>,
    },
    Process(tokio::process::Child),
}

impl TestApp {
    /// A node with the default configuration (limits raised so tests are not rate limited).
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(|_| {}).await
    }

    /// A node whose configuration `adjust` may change first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temp data dir")?;
        let mut config = test_config(dir.path().to_path_buf())?;
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(harmony_server::serve(config, listener, shutdown.clone()));
        let app = Self {
            addr,
            client: reqwest::Client::builder().timeout(STEP).build()?,
            runner: Runner::Task { shutdown, server },
            dir,
        };
        app.wait_ready().await?;
        Ok(app)
    }

    /// The real `harmony` binary at `bin`, configured by `HARMONY_*` variables `env`, with a
    /// fresh data dir and a free port.
    pub async fn process(bin: &std::path::Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temp data dir")?;
        let listen = match env.iter().find(|(k, _)| k == "HARMONY_LISTEN") {
            Some((_, v)) => v.clone(),
            None => {
                let free = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
                format!("127.0.0.1:{}", free.port())
            }
        };
        use base64::Engine as _;
        let child = tokio::process::Command::new(bin)
            .env("HARMONY_LISTEN", &listen)
            .env("HARMONY_DATA_DIR", dir.path())
            .env(
                "HARMONY_AUTH__JWT_SECRET",
                base64::engine::general_purpose::STANDARD.encode(TEST_JWT_SECRET),
            )
            .env("HARMONY_LIMITS__SEND_BURST", "100000")
            .env("HARMONY_LIMITS__SEND_PER_SECOND", "100000")
            .env("HARMONY_LIMITS__REGISTER_BURST", "100000")
            .env("HARMONY_LIMITS__LOGIN_ADDRESS_BURST", "100000")
            .env("HARMONY_LIMITS__CONTACT", "anyone")
            .env("HARMONY_LIMITS__CHAT_CREATE_BURST", "100000")
            .env("HARMONY_LIMITS__MEMBER_ADD_BURST", "100000")
            .env("HARMONY_GATEWAY__DRAIN_SECS", "0")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let app = Self {
            addr: listen.parse().context("HARMONY_LISTEN")?,
            client: reqwest::Client::builder().timeout(STEP).build()?,
            runner: Runner::Process(child),
            dir,
        };
        app.wait_ready().await?;
        Ok(app)
    }

    /// The process id of a process node.
    pub fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Process(child) => child.id(),
            Runner::Task { .. } => None,
        }
    }

    /// `kill -9` (a process node only).
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        match &mut self.runner {
            Runner::Process(child) => {
                child.start_kill()?;
                child.wait().await?;
                Ok(())
            }
            Runner::Task { .. } => bail!("kill9 needs a process node"),
        }
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the test server did not become ready within {STEP:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Stops the node gracefully and checks that it stopped cleanly, in time.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_keeping_data().await.map(drop)
    }

    /// Stops the node as [`TestApp::stop`] does and hands over its data directory, to look at
    /// what the node left on disk.
    pub async fn stop_keeping_data(self) -> anyhow::Result<tempfile::TempDir> {
        let Self { runner, dir, .. } = self;
        stop_runner(runner).await?;
        Ok(dir)
    }
}

/// Stops a node gracefully and checks that it stopped cleanly, in time.
async fn stop_runner(runner: Runner) -> anyhow::Result<()> {
    {
        match runner {
            Runner::Task { shutdown, server } => {
                shutdown.cancel();
                let result = tokio::time::timeout(Duration::from_secs(30), server)
                    .await
                    .context("the server did not stop within 30 s")?
                    .context("the server task panicked")?;
                result.context("the server returned an error")
            }
            Runner::Process(mut child) => {
                let pid = child.id().context("the node already exited")?;
                let status = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()?;
                anyhow::ensure!(status.success(), "could not signal the node");
                let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
                    .await
                    .context("the node did not stop within 30 s")??;
                anyhow::ensure!(exit.success(), "the node exited with {exit}");
                Ok(())
            }
        }
    }
}

/// The configuration tests start from: defaults, a temp data dir, port 0, a known key, and rate
/// limits high enough that only tests about rate limits meet them.
pub fn test_config(data_dir: PathBuf) -> anyhow::Result<Config> {
    let overrides = Overrides {
        file: None,
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir),
        roles: None,
    };
    let mut config = Config::load(&overrides, std::iter::empty())?;
    use base64::Engine as _;
    config.auth.jwt_secret = base64::engine::general_purpose::STANDARD.encode(TEST_JWT_SECRET);
    config.limits.send_burst = 100_000;
    config.limits.send_per_second = 100_000.0;
    config.limits.login_burst = 1000;
    config.limits.login_address_burst = 100_000;
    config.limits.register_burst = 100_000;
    // Tests put strangers into chats freely; the consent rules have tests of their own.
    config.limits.contact = "anyone".into();
    config.limits.chat_create_burst = 100_000;
    config.limits.member_add_burst = 100_000;
    config.server.shutdown_grace_secs = 5;
    // Tests stop nodes all the time: their sessions close at once (one test spreads them).
    config.gateway.drain_secs = 0;
    Ok(config)
}

/// Runs the `harmony` binary at `bin` once (`harmony backup ...`, `harmony migrate ...`) with
/// `args` and the `HARMONY_*` variables `env`; returns whether it succeeded and what it printed.
pub async fn run_harmony(
    bin: &std::path::Path,
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
) -> anyhow::Result<(bool, String)> {
    let out = tokio::process::Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .with_context(|| format!("running {}", bin.display()))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), said))
}

/// Polls `check` every 20 ms until it returns `Some`, failing after `STEP`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
