//! `harmony`: the chat server. With no arguments it runs a single node on 127.0.0.1:8080 with
//! its data in ./data.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use harmony_server::{config::Config, Overrides};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "harmony",
    version,
    about = "Harmony: a self-hostable real-time chat server.",
    long_about = "Harmony: a self-hostable real-time chat server.\n\n\
    With no arguments it runs a single node (SQLite in ./data) on 127.0.0.1:8080: REST under \
    /api/v1, WebSocket at /api/v1/ws, API docs at /docs, health at /healthz and /readyz, \
    Prometheus metrics at /metrics.\n\n\
    Settings come from the built-in defaults (see `harmony config`), then --config FILE, then \
    HARMONY_<SECTION>__<KEY> environment variables, then the flags below."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(clap::Args, Clone)]
struct Options {
    /// Address to listen on, e.g. 0.0.0.0:8080 [env: HARMONY_LISTEN]
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Directory for the database and generated keys [env: HARMONY_DATA_DIR]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// A TOML file overriding the defaults
    #[arg(long, global = true, env = "HARMONY_CONFIG")]
    config: Option<PathBuf>,
    /// Roles to run: all, or a comma list of api, gateway, fanout, sink, projector (cluster)
    #[arg(long, global = true)]
    role: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default)
    Serve,
    /// Print the built-in defaults file, which documents every setting
    Config,
    /// Print the OpenAPI document of the REST API (what the web UI's client is generated from)
    Openapi,
    /// Copy a single node's database into FILE while the node serves (consistent as of one
    /// commit, checked before it is reported done)
    Backup {
        /// The file to write; it must not exist
        file: PathBuf,
    },
    /// Replace a stopped single node's database with the backup FILE (the replaced one is kept
    /// beside it)
    Restore {
        /// A file written by `harmony backup`
        file: PathBuf,
    },
    /// Move a stopped single node's data (--data-dir) into the cluster named by the cluster
    /// settings: users and logins, friends, chats, read markers and every message at its seq.
    /// Safe to run again after an interruption.
    Migrate {
        /// Into a cluster (the only direction there is)
        #[arg(long, required = true)]
        to_cluster: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Config) => {
            print!("{}", harmony_server::config::DEFAULTS);
            return std::process::ExitCode::SUCCESS;
        }
        Some(Command::Openapi) => {
            println!("{}", harmony_api::openapi::document_json());
            return std::process::ExitCode::SUCCESS;
        }
        Some(Command::Serve) | None => {}
        Some(Command::Backup { .. } | Command::Restore { .. } | Command::Migrate { .. }) => {}
    }
    let overrides = Overrides {
        file: cli.options.config,
        listen: cli.options.listen,
        data_dir: cli.options.data_dir,
        roles: cli.options.role,
    };
    let config = match Config::load(&overrides, std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("harmony: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Backup { file }) => return backup_or_restore(&config, &file, true),
        Some(Command::Restore { file }) => return backup_or_restore(&config, &file, false),
        Some(Command::Migrate { .. }) => return migrate(config),
        _ => {}
    }
    harmony_server::telemetry::init(&config.log);
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return std::process::ExitCode::FAILURE;
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("harmony: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The async runtime `builder` makes, or `None` after saying why there is none.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("harmony: cannot start the async runtime: {e}");
            None
        }
    }
}

/// `harmony migrate --to-cluster`.
fn migrate(config: Config) -> std::process::ExitCode {
    let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return std::process::ExitCode::FAILURE;
    };
    match runtime.block_on(harmony_server::migrate::to_cluster(&config)) {
        Ok(moved) => {
            println!(
                "migrated {} users, {} chats and {} messages into the cluster",
                moved.users, moved.chats, moved.messages
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("harmony: migration failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `harmony backup FILE` and `harmony restore FILE` on the configured data directory.
fn backup_or_restore(
    config: &Config,
    file: &std::path::Path,
    backup: bool,
) -> std::process::ExitCode {
    use harmony_sqlite::backup;
    if config.cluster.enabled() {
        eprintln!(
            "harmony: a cluster keeps its data in PostgreSQL and the broker; back those up \
             (README: Backups). `harmony backup` is for a single node."
        );
        return std::process::ExitCode::from(2);
    }
    let db = config.server.data_dir.join("harmony.db");
    if backup {
        eprintln!("backing up {} into {} ...", db.display(), file.display());
        match backup::backup(&db, file) {
            Ok(summary) => {
                println!("backed up into {}: {summary}", file.display());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("harmony: backup failed: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    } else {
        eprintln!("restoring {} into {} ...", file.display(), db.display());
        match backup::restore(file, &db) {
            Ok((summary, kept)) => {
                println!("restored {}: {summary}", db.display());
                if let Some(kept) = kept {
                    println!("the database it replaced is kept as {}", kept.display());
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("harmony: restore failed: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let listener = listen(config.server.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    harmony_server::serve(config, listener, shutdown).await
}

/// Connections the kernel may hold for us before we accept them (it caps this at
/// `net.core.somaxconn`, 4096 by default). When a gateway dies, all its clients reconnect to
/// the others at once; with tokio's default of 1024 the overflow's SYNs are dropped and retried
/// only after 1, 3, 7 s.
const ACCEPT_BACKLOG: u32 = 65_535;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("stop requested; finishing in-flight work");
    shutdown.cancel();
}
