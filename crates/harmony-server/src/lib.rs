//! The `harmony` binary's library half: configuration, the signing key, and [`serve`], the one
//! place that picks the adapters for a shape and starts every role.
//!
//! A single node (the only shape so far) runs everything in this process: the HTTP edge and the
//! gateway (`harmony-api`), the SQLite adapters (`harmony-sqlite`) for state, outbox, log and
//! history, and the fan-out, sink and projector loops (`harmony-workers`) against the embedded
//! log and outbox.

pub mod config;
mod keys;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use harmony_api::{AppState, CookieSettings, GatewaySettings, HttpLimits, Hub, Metrics, TokenKeys};
use harmony_core::cache::InProcessMembershipCache;
use harmony_core::ports::RateRule;
use harmony_core::ratelimit::InProcessRateLimiter;
use harmony_core::usecases::{Policy, Ports, UseCases};
use harmony_sqlite::Database;
use harmony_workers::{fanout::Fanout, projector::Projector, sink::Sink, OnProcessed};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, Overrides};

/// Runs a single node on `listener` until `shutdown` is cancelled, then stops in order: sessions
/// are told to reconnect and resume, in-flight requests finish, workers finish their batch.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let db_path = data_dir.join("harmony.db");
    let db = Database::open(&db_path)
        .await
        .with_context(|| format!("opening database {}", db_path.display()))?;
    let secret = keys::jwt_secret(&config.auth, &data_dir)?;

    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone()));
    let cache = Arc::new(InProcessMembershipCache::default());
    let shared = Arc::new(db.clone());
    let ports = Ports {
        users: shared.clone(),
        sessions: shared.clone(),
        friends: shared.clone(),
        chats: shared.clone(),
        log: shared.clone(),
        recent: shared.clone(),
        history: shared.clone(),
        membership_cache: cache.clone(),
        limiter: Arc::new(InProcessRateLimiter::default()),
        hasher: Arc::new(harmony_api::auth::Argon2Hasher::new()?),
    };
    let use_cases = UseCases::new(ports, policy(&config));
    let ready_db = db.clone();
    let state = AppState {
        use_cases,
        tokens: TokenKeys::new(
            &secret,
            Duration::from_secs(config.auth.access_token_ttl_secs),
        ),
        refresh_ttl: Duration::from_secs(config.auth.refresh_token_ttl_days * 24 * 3600),
        cookies: CookieSettings {
            secure: config.server.public_origin.starts_with("https://"),
            public_origin: Some(config.server.public_origin.clone()).filter(|o| !o.is_empty()),
        },
        hub: hub.clone(),
        metrics: metrics.clone(),
        gateway: GatewaySettings {
            session_queue: config.gateway.session_queue,
        },
        ready: Arc::new(move || {
            let db = ready_db.clone();
            Box::pin(async move { db.ping().await })
        }),
        shutdown: shutdown.clone(),
    };

    // Workers stop only after the HTTP side has: nothing appended is left unprocessed for long.
    let workers_stop = CancellationToken::new();
    let workers = TaskTracker::new();
    let counted = |name: &str| -> OnProcessed {
        let metrics = metrics.clone();
        let labels = metrics.consumer(name);
        Arc::new(move |n| {
            metrics
                .consumer_processed
                .get_or_create(&labels)
                .inc_by(n as u64);
        })
    };
    workers.spawn(
        Fanout {
            consumer: db.log_cursor("fanout").await?,
            gateways: hub.clone(),
            on_processed: counted("fanout"),
        }
        .run(workers_stop.clone()),
    );
    workers.spawn(
        Sink {
            consumer: db.log_cursor("sink").await?,
            history: shared.clone(),
            on_processed: counted("sink"),
        }
        .run(workers_stop.clone()),
    );
    workers.spawn(
        Projector {
            consumer: db.outbox_cursor("projector").await?,
            gateways: hub.clone(),
            cache,
            history: shared.clone(),
            on_processed: counted("projector"),
        }
        .run(workers_stop.clone()),
    );
    workers.spawn(report_lag(
        db.clone(),
        metrics.clone(),
        workers_stop.clone(),
    ));
    workers.close();

    let limits = HttpLimits {
        max_body_bytes: config.limits.max_body_bytes,
    };
    let app = harmony_api::router(state, &limits);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "harmony is listening (single node)");
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let stopping = shutdown.clone();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stopping.cancelled().await });
    let served = std::future::IntoFuture::into_future(server);
    tokio::pin!(served);
    let result = tokio::select! {
        r = &mut served => r.context("HTTP server failed"),
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("requests still running after the grace period; stopping anyway");
            Ok(())
        }
    };
    // Upgraded WebSocket connections are not tracked by the HTTP server: give the sessions
    // their chance to send close frames (they watch the same shutdown token) before the
    // workers and the database go away.
    let deadline = tokio::time::Instant::now() + grace;
    while hub.session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("HTTP stopped; stopping workers");
    workers_stop.cancel();
    if tokio::time::timeout(grace, workers.wait()).await.is_err() {
        tracing::warn!("workers did not stop within the grace period");
    }
    db.close().await;
    tracing::info!("stopped");
    result
}

fn policy(config: &Config) -> Policy {
    let l = &config.limits;
    Policy {
        login_rule: RateRule {
            burst: l.login_burst,
            per_second: l.login_per_minute / 60.0,
        },
        send_rule: RateRule {
            burst: l.send_burst,
            per_second: l.send_per_second,
        },
        refresh_ttl: Duration::from_secs(config.auth.refresh_token_ttl_days * 24 * 3600),
        refresh_grace: Duration::from_secs(config.auth.refresh_grace_secs),
        max_group_members: l.max_group_members,
    }
}

/// Publishes each consumer's lag behind the log head, every second.
async fn report_lag(db: Database, metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for consumer in ["fanout", "sink"] {
            if let Ok(lag) = db.log_lag(consumer).await {
                metrics
                    .consumer_lag
                    .get_or_create(&metrics.consumer(consumer))
                    .set(lag);
            }
        }
    }
}
