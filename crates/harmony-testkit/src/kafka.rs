//! A private Kafka-API broker for one test: tansu 0.6.0 with its durable sqlite engine in a temp
//! directory, on a free port; `restart` keeps the data and the port (acknowledged records must
//! survive), and the broker is killed when dropped.
//!
//! The binary is the one `scripts/ensure-tansu` installs (`$TANSU_BIN` overrides the path).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

pub struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// Where the tansu binary is: `$TANSU_BIN`, else the cache `scripts/ensure-tansu` fills.
pub fn tansu_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let path = PathBuf::from(home).join(".cache/harmony/tansu-0.6.0/bin/tansu");
    if !path.exists() {
        bail!(
            "the tansu broker is not installed at {}: run scripts/ensure-tansu",
            path.display()
        );
    }
    Ok(path)
}

impl PrivateBroker {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("harmony-broker-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut broker = Self {
            dir,
            port,
            child: None,
        };
        broker.launch().await?;
        Ok(broker)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // The sqlite path is taken relative to the working directory: run from the data dir.
        let child = Command::new(tansu_binary()?)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .env_remove("LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tansu")?;
        self.child = Some(child);
        crate::listening(self.port, "tansu", Duration::from_secs(20)).await?;
        Ok(())
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kill -9` and start again on the same data and port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch().await
    }

    /// The broker's process id (benchmarks count its CPU and memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
