//! A private Redis for one test: its own port and directory, no persistence, stopped when
//! dropped; `restart` keeps the port (to test what survives a Redis restart).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

pub struct PrivateRedis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("harmony-redis-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut redis = Self {
            dir,
            port,
            child: None,
        };
        redis.launch().await?;
        Ok(redis)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server is not installed: run `apt-get install redis-server` (the test command does this itself)")?;
        self.child = Some(child);
        crate::listening(self.port, "redis-server", Duration::from_secs(10)).await?;
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id (benchmarks count its CPU and memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (as a crash would) and starts an empty one on the same port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch().await
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
