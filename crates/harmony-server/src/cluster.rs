//! The cluster shape: PostgreSQL for state (and, by default, history), a Kafka-API broker for the
//! message log, Redis for fan-out, the recent window, caches, limits and idempotency keys. Each
//! process runs the roles it is given; every adapter is shared by the roles that need it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use harmony_api::Hub;
use harmony_core::ports::{GatewayPublisher, HistoryStore, MembershipCache};
use harmony_core::usecases::Ports;
use harmony_kafka::{ensure_topic, KafkaCursor, KafkaLog, KafkaSettings};
use harmony_postgres::{HistoryDb, StateDb};
use harmony_redis::{
    GatewaySubscriber, Keys, RedisFanout, RedisIdempotency, RedisMembershipCache, RedisProfiles,
    RedisRateLimiter, RedisWindow,
};
use harmony_workers::{fanout::Fanout, projector::Projector, sink::Sink};
use tokio::sync::mpsc;

use crate::{Assembly, Node, Task};

/// How long a cached membership may live in Redis even without an invalidation.
const MEMBERSHIP_TTL: Duration = Duration::from_secs(300);
/// How long a cached profile lives (profiles change only by their owner).
const PROFILE_TTL: Duration = Duration::from_secs(600);

pub(crate) async fn assemble(a: &Assembly<'_>) -> anyhow::Result<Node> {
    let c = &a.config.cluster;
    let state = Arc::new(
        StateDb::connect(&c.postgres_url, c.max_connections)
            .await
            .context("connecting to PostgreSQL (state)")?,
    );
    let history_url = if c.history_url.is_empty() {
        &c.postgres_url
    } else {
        &c.history_url
    };
    let redis = harmony_redis::connect(&c.redis_url)
        .await
        .context("connecting to Redis")?;
    // Message authors are re-hydrated through the profile cache, not the database.
    let profiles = Arc::new(RedisProfiles::new(
        redis.clone(),
        Keys::new(&c.key_prefix),
        PROFILE_TTL,
        state.clone(),
    ));
    let history = Arc::new(
        HistoryDb::connect(history_url, c.max_connections, profiles)
            .await
            .context("connecting to PostgreSQL (history)")?,
    );
    let keys = Keys::new(&c.key_prefix);
    let mut kafka = KafkaSettings::new(&c.brokers, &c.messages_topic);
    kafka.partitions = c.partitions;
    kafka.linger_ms = c.linger_ms;
    kafka.fetch_wait_ms = c.fetch_wait_ms;
    ensure_topic(&kafka)
        .await
        .context("creating the message topic")?;

    let idempotency = Arc::new(RedisIdempotency::new(
        redis.clone(),
        keys.clone(),
        Duration::from_secs(24 * 3600),
        Duration::from_secs(60),
    ));
    let cache: Arc<dyn MembershipCache> = Arc::new(RedisMembershipCache::new(
        redis.clone(),
        keys.clone(),
        MEMBERSHIP_TTL,
    ));
    let fanout: Arc<dyn GatewayPublisher> =
        Arc::new(RedisFanout::new(redis.clone(), keys.clone(), c.window_size));
    let ports = Ports {
        users: state.clone(),
        sessions: state.clone(),
        friends: state.clone(),
        chats: state.clone(),
        log: Arc::new(KafkaLog::new(kafka.clone(), idempotency)?),
        recent: Arc::new(RedisWindow::new(redis.clone(), keys.clone())),
        history: history.clone(),
        membership_cache: cache.clone(),
        limiter: Arc::new(RedisRateLimiter::new(redis.clone(), keys.clone())),
        hasher: Arc::new(harmony_api::auth::Argon2Hasher::new()?),
    };

    let stop = a.workers_stop.clone();
    let mut tasks: Vec<Task> = Vec::new();
    let hub = if a.roles.gateway {
        let (interest, followed) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub::with_interest(a.metrics.clone(), interest));
        let on_gap = hub.clone();
        let subscriber = GatewaySubscriber {
            client: redis::Client::open(c.redis_url.as_str())?,
            keys: keys.clone(),
            local: hub.clone(),
            on_gap: Arc::new(move || on_gap.resume_all()),
        };
        tasks.push(Box::pin(subscriber.run(followed, stop.clone())));
        hub
    } else {
        Arc::new(Hub::new(a.metrics.clone()))
    };
    if a.roles.fanout {
        let consumer = KafkaCursor::new(&kafka, "harmony-fanout")?;
        tasks.push(Box::pin(
            Fanout {
                consumer,
                gateways: fanout.clone(),
                on_processed: a.counted("fanout"),
            }
            .run(stop.clone()),
        ));
    }
    if a.roles.sink {
        let consumer = KafkaCursor::new(&kafka, "harmony-sink")?;
        let history: Arc<dyn HistoryStore> = history.clone();
        tasks.push(Box::pin(
            Sink {
                consumer,
                history,
                on_processed: a.counted("sink"),
            }
            .run(stop.clone()),
        ));
    }
    if a.roles.projector {
        // Until the WAL relay exists, the projector reads the outbox table as a queue.
        tasks.push(Box::pin(
            Projector {
                consumer: state.outbox_queue(),
                gateways: fanout,
                cache,
                history: history.clone(),
                on_processed: a.counted("projector"),
            }
            .run(stop.clone()),
        ));
    }
    let ready_state = state.clone();
    let (close_state, close_history) = (state.clone(), history.clone());
    Ok(Node {
        ports,
        hub,
        tasks,
        ready: Arc::new(move || {
            let state = ready_state.clone();
            Box::pin(async move { state.ping().await })
        }),
        close: Box::pin(async move {
            close_history.close().await;
            close_state.close().await;
        }),
    })
}
