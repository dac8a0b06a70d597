//! A private PostgreSQL for one test: its own data directory and port, `wal_level=logical`,
//! stopped when dropped. Nothing already running on the machine is touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    options: String,
}

fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .context("PostgreSQL is not installed: run `apt-get install postgresql` (the test command does this itself)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a PostgreSQL tool; as root, as the `postgres` user (the server refuses to run as root).
fn run(bin: &Path, tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let program = bin.join(tool);
    let output = if is_root() {
        Command::new("runuser")
            .arg("-u")
            .arg("postgres")
            .arg("--")
            .arg(&program)
            .args(args)
            .output()
    } else {
        Command::new(&program).args(args).output()
    }
    .with_context(|| format!("running {}", program.display()))?;
    if !output.status.success() {
        bail!(
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

impl PrivatePostgres {
    pub async fn start() -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("harmony-pg-").tempdir()?;
        if is_root() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()?;
            anyhow::ensure!(status.success(), "chown of the PostgreSQL temp dir failed");
        }
        let data = dir.path().join("data");
        let data_s = data.display().to_string();
        run(
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "harmony",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        // TESTKIT_PG_OPTIONS adds server options, to profile a run, e.g.
        // "-c shared_preload_libraries=pg_stat_statements".
        let extra = std::env::var("TESTKIT_PG_OPTIONS").unwrap_or_default();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=4 \
             -c max_wal_senders=4 -c max_connections=100 {extra}",
            dir.path().display()
        );
        let pg = Self {
            dir,
            bin,
            port,
            options,
        };
        pg.start_again()?;
        Ok(pg)
    }

    /// Starts the server on its data directory and port (after `stop`).
    pub fn start_again(&self) -> anyhow::Result<()> {
        let data = self.dir.path().join("data").display().to_string();
        let log = self.dir.path().join("postgres.log").display().to_string();
        let args = [
            "-D",
            &data,
            "-o",
            &self.options,
            "-l",
            &log,
            "-w",
            "-t",
            "30",
            "start",
        ];
        run(&self.bin, "pg_ctl", &args)
    }

    /// Stops the server at once, as an outage would (`immediate`: no checkpoint, recovery on start).
    pub fn stop(&self) -> anyhow::Result<()> {
        let data = self.dir.path().join("data").display().to_string();
        run(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        )
    }

    /// The postmaster's process id (its backends are its children), from `postmaster.pid`.
    pub fn pid(&self) -> Option<u32> {
        let file = self.dir.path().join("data").join("postmaster.pid");
        std::fs::read_to_string(file)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// A URL for a database of this server (`postgres` exists from the start).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://harmony@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a fresh database and returns its URL.
    pub async fn database(&self, name: &str) -> anyhow::Result<String> {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE \"{name}\"").as_str()).await?;
        admin.close().await?;
        Ok(self.url(name))
    }

    /// Gathers a database's statistics now, as autovacuum does within a minute of a busy
    /// start. Until then a fresh table's cached query plans are those of an empty table
    /// (sequential scans): a benchmark a minute long would measure only that.
    pub async fn analyze(&self, database: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url(database)).await?;
        sqlx::Executor::execute(&mut conn, "ANALYZE").await?;
        conn.close().await?;
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // A server the test already stopped is fine; anything else is worth a line.
        if let Err(e) = self.stop() {
            if !e.to_string().contains("Is server running?") {
                eprintln!("could not stop the test PostgreSQL: {e}");
            }
        }
    }
}
