//! A private dynalite (the DynamoDB API on LevelDB) for one test: its own port and directory,
//! stopped when dropped; `stop` and `start_again` keep the port and the data (to test a
//! DynamoDB outage). The command is the one `scripts/ensure-dynalite` installs
//! (`$DYNALITE_BIN` overrides the path).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// Where dynalite is: `$DYNALITE_BIN`, else the cache `scripts/ensure-dynalite` fills.
pub fn dynalite_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DYNALITE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let path = PathBuf::from(home).join(".cache/harmony/dynalite-4.0.0/node_modules/.bin/dynalite");
    if !path.exists() {
        bail!(
            "dynalite is not installed at {}: run scripts/ensure-dynalite",
            path.display()
        );
    }
    Ok(path)
}

/// The credentials tests give the SDK: dynalite checks that requests are signed, not by whom.
pub const ACCESS_KEY_ID: &str = "harmony-test";
pub const SECRET_ACCESS_KEY: &str = "harmony-test-secret";
pub const REGION: &str = "us-east-1";

pub struct PrivateDynamo {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateDynamo {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("harmony-dynalite-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut dynamo = Self {
            dir,
            port,
            child: None,
        };
        dynamo.start_again().await?;
        Ok(dynamo)
    }

    /// Starts the server on its port and data (after `stop`).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let child = Command::new(dynalite_binary()?)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--createTableMs",
                "0",
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ])
            .arg("--path")
            .arg(self.dir.path().join("db"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("dynalite did not start (node is needed: the test command installs it)")?;
        self.child = Some(child);
        crate::listening(self.port, "dynalite", Duration::from_secs(20)).await?;
        Ok(())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server, as an outage would; the data stays for `start_again`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateDynamo {
    fn drop(&mut self) {
        self.stop();
    }
}
