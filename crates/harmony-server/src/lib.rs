//! The `harmony` binary's library half: configuration, the signing key, and [`serve`], the one
//! place that picks the adapters for a shape and starts the roles.
//!
//! - A single node ([`single`]) runs every role in this process on SQLite and in-process ports:
//!   the HTTP edge and gateway (`harmony-api`), the embedded log, and the fan-out, sink and
//!   projector loops (`harmony-workers`).
//! - A cluster node ([`cluster`]) runs the roles it is given (`--role`) on PostgreSQL, a
//!   Kafka-API broker and Redis; the use cases and workers are the same code.

mod cluster;
pub mod config;
mod http;
mod keys;
pub mod migrate;
mod single;
pub mod telemetry;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use harmony_api::client::TrustedProxies;
use harmony_api::{
    AppParts, AppState, CookieSettings, GatewaySettings, HttpLimits, Hub, Keepalive, Metrics,
    PresenceTiming, PresenceTracker, ReadyCheck, TokenKeys,
};
use harmony_core::ports::RateRule;
use harmony_core::usecases::{Policy, Ports, UseCases};
use harmony_workers::OnProcessed;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, Overrides, Roles};

/// A long-running task of a role, started once the node is assembled.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a shape assembles: the ports for the use cases, the role loops to run, and how to tell
/// readiness and to close connections at the end.
pub(crate) struct Node {
    pub ports: Ports,
    pub hub: Arc<Hub>,
    pub tasks: Vec<Task>,
    pub ready: ReadyCheck,
    pub close: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// What every shape's assembly gets.
pub(crate) struct Assembly<'a> {
    pub config: &'a Config,
    pub roles: Roles,
    pub metrics: Arc<Metrics>,
    /// Cancelled after the HTTP side stopped: role loops finish their batch and return.
    pub workers_stop: CancellationToken,
}

impl Assembly<'_> {
    /// Counts what a worker finished, under its name.
    pub fn counted(&self, name: &str) -> OnProcessed {
        let metrics = self.metrics.clone();
        let labels = metrics.consumer(name);
        Arc::new(move |n| {
            metrics
                .consumer_processed
                .get_or_create(&labels)
                .inc_by(n as u64);
        })
    }
}

/// Runs a node on `listener` until `shutdown` is cancelled, then stops in order: sessions are
/// told to reconnect and resume, in-flight requests finish, workers finish their batch.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let roles = Roles::parse(&config.server.roles)?;
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    keys::make_private(&data_dir, true)?;
    let secret = keys::jwt_secret(&config.auth, &data_dir)?;
    let metrics = Arc::new(Metrics::new());
    let workers_stop = CancellationToken::new();
    let assembly = Assembly {
        config: &config,
        roles,
        metrics: metrics.clone(),
        workers_stop: workers_stop.clone(),
    };
    let node = if config.cluster.enabled() {
        cluster::assemble(&assembly).await?
    } else {
        single::assemble(&assembly).await?
    };
    let keepalive = Keepalive {
        ping_every_secs: config.gateway.ping_interval_secs,
        idle_after_secs: config.gateway.idle_timeout_secs as i64,
    };
    let sessions_end = CancellationToken::new();
    let use_cases = UseCases::new(node.ports, policy(&config));
    let (presence, presence_task) = PresenceTracker::new(
        use_cases.presence.clone(),
        PresenceTiming {
            grace: Duration::from_millis(config.presence.grace_ms),
            upkeep_every: Duration::from_millis(config.presence.node_ttl_ms / 3),
        },
    );
    let state = AppState::new(AppParts {
        use_cases,
        presence,
        tokens: TokenKeys::new(
            &secret,
            Duration::from_secs(config.auth.access_token_ttl_secs),
        ),
        refresh_ttl: Duration::from_secs(config.auth.refresh_token_ttl_days * 24 * 3600),
        cookies: CookieSettings {
            secure: config.server.public_origin.starts_with("https://"),
            public_origin: Some(config.server.public_origin.clone()).filter(|o| !o.is_empty()),
        },
        hub: node.hub.clone(),
        metrics,
        gateway: GatewaySettings {
            session_queue: config.gateway.session_queue,
            enabled: roles.gateway,
            max_sessions_per_user: config.gateway.max_sessions_per_user,
            keepalive,
        },
        ready: node.ready,
        trusted_proxies: TrustedProxies::parse(&config.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?,
        shutdown: shutdown.clone(),
        sessions_end: sessions_end.clone(),
    });
    if roles.gateway {
        tokio::spawn(node.hub.clone().sweep_sessions(keepalive, shutdown.clone()));
        tokio::spawn(presence_task.run(shutdown.clone()));
    }
    tokio::spawn(drain_on(
        shutdown.clone(),
        node.hub.clone(),
        Duration::from_secs(config.gateway.drain_secs),
        sessions_end,
    ));
    // One node is the only one that ends sessions; a cluster's nodes read each other's.
    let revocation_poll = config
        .cluster
        .enabled()
        .then(|| Duration::from_millis(config.auth.revocation_poll_ms));
    let revocations = harmony_api::auth::revocations::load(&state)
        .await
        .context("loading the ended sessions")?;
    tokio::spawn(harmony_api::auth::revocations::follow(
        state.clone(),
        revocations,
        revocation_poll,
        shutdown.clone(),
    ));
    let workers = TaskTracker::new();
    for task in node.tasks {
        workers.spawn(task);
    }
    workers.close();

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let addr = listener.local_addr()?;
    let shape = if config.cluster.enabled() {
        "cluster"
    } else {
        "single node"
    };
    tracing::info!(%addr, shape, roles = %config.server.roles, "harmony is listening");
    let result = serve_http(state, &config, listener, shutdown.clone(), grace).await;
    // Upgraded WebSocket connections are not tracked by the HTTP server: give the sessions their
    // chance to send close frames (they watch the same shutdown token) before the workers and
    // the stores go away.
    let deadline = tokio::time::Instant::now() + grace;
    while node.hub.session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("HTTP stopped; stopping workers");
    workers_stop.cancel();
    if tokio::time::timeout(grace, workers.wait()).await.is_err() {
        tracing::warn!("workers did not stop within the grace period");
    }
    node.close.await;
    tracing::info!("stopped");
    result
}

/// Once `shutdown` fires, closes the sessions a few at a time over `over`, then ends whatever
/// is left (a session that was starting).
async fn drain_on(
    shutdown: CancellationToken,
    hub: Arc<Hub>,
    over: Duration,
    sessions_end: CancellationToken,
) {
    shutdown.cancelled().await;
    let sessions = hub.session_count();
    if sessions > 0 {
        tracing::info!(
            sessions,
            secs = over.as_secs(),
            "closing the WebSocket sessions gradually"
        );
    }
    hub.drain(over).await;
    sessions_end.cancel();
}

/// Serves HTTP until `shutdown`, letting in-flight requests finish within `grace`; `/metrics`
/// on its own address when one is configured.
async fn serve_http(
    state: AppState,
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let s = &config.server;
    let metrics_apart = !s.metrics_listen.is_empty();
    let limits = HttpLimits {
        max_body_bytes: config.limits.max_body_bytes,
        request_timeout: Duration::from_secs(s.request_timeout_secs),
        metrics: !metrics_apart,
    };
    let listening = http::Listening {
        max_connections: s.max_connections,
        header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
    };
    let metrics = if metrics_apart {
        let addr = &s.metrics_listen;
        let metrics_listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding server.metrics_listen {addr}"))?;
        tracing::info!(addr = %metrics_listener.local_addr()?, "metrics are served apart");
        let router = harmony_api::metrics_router(state.clone());
        let few = http::Listening {
            max_connections: 64,
            ..listening
        };
        Some(tokio::spawn(http::serve(
            metrics_listener,
            router,
            few,
            shutdown.clone(),
            grace,
        )))
    } else {
        None
    };
    let app = harmony_api::router(state, &limits);
    http::serve(listener, app, listening, shutdown, grace).await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    Ok(())
}

fn policy(config: &Config) -> Policy {
    let l = &config.limits;
    Policy {
        login_rule: RateRule::per_minute(l.login_burst, l.login_per_minute),
        login_address_rule: RateRule::per_minute(l.login_address_burst, l.login_address_per_minute),
        register_rule: RateRule::per_hour(l.register_burst, l.register_per_hour),
        send_rule: RateRule {
            burst: l.send_burst,
            per_second: l.send_per_second,
        },
        refresh_ttl: Duration::from_secs(config.auth.refresh_token_ttl_days * 24 * 3600),
        refresh_grace: Duration::from_secs(config.auth.refresh_grace_secs),
        access_ttl: Duration::from_secs(config.auth.access_token_ttl_secs),
        max_sessions_per_user: config.auth.max_sessions_per_user,
        max_group_members: l.max_group_members,
        chat_create_rule: RateRule::per_hour(l.chat_create_burst, l.chat_create_per_hour),
        member_add_rule: RateRule::per_hour(l.member_add_burst, l.member_add_per_hour),
        // Checked when the configuration was loaded.
        contact: l.contact.parse().unwrap_or_default(),
        presence_max_chat_members: config.presence.max_chat_members,
    }
}
