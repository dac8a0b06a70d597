//! The cluster shape: PostgreSQL for state, each chat's order and idempotency (the sequencer) and,
//! by default, history; a Kafka-API broker for the message log; Redis for fan-out, the recent
//! window, caches and limits (nothing Redis holds is the truth). Each
//! process runs the roles it is given; every adapter is shared by the roles that need it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use harmony_api::Hub;
use harmony_core::ports::{
    EventPublisher, GatewayPublisher, HistoryStore, MembershipCache, RecentMessages, Sequencer,
};
use harmony_core::tiered::CachedRecent;
use harmony_core::usecases::Ports;
use harmony_dynamodb::{DynamoHistory, DynamoSettings};
use harmony_kafka::{
    check_topic, ensure_topic, KafkaCursor, KafkaEventCursor, KafkaEvents, KafkaLog, KafkaSettings,
};
use harmony_postgres::{HistoryDb, StateDb, WalOutbox};
use harmony_redis::{
    GatewaySubscriber, Keys, RedisFanout, RedisMembershipCache, RedisNotices, RedisPresence,
    RedisProfiles, RedisRateLimiter, RedisWindow,
};
use harmony_workers::fanout::Fanout;
use harmony_workers::projector::{Projector, Timeline};
use harmony_workers::{relay::Relay, sink::Sink};
use tokio::sync::mpsc;

use crate::config::HistoryBackend;
use crate::{Assembly, Node, Task};

/// What a store needs done when the node stops.
type Closer = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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
    // Every node, before it can write a state change: an event whose WAL precedes the slot is
    // never decoded, so the slot must exist before the first api node takes a request.
    state
        .ensure_outbox_slot(&c.relay_slot)
        .await
        .context("creating the outbox replication slot")?;
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
    let (history, close_history): (Arc<dyn HistoryStore>, Closer) = match a.config.history.backend {
        HistoryBackend::Postgres => {
            let db = HistoryDb::connect(history_url, c.max_connections, profiles.clone())
                .await
                .context("connecting to PostgreSQL (history)")?;
            let closing = db.clone();
            (Arc::new(db), Box::pin(async move { closing.close().await }))
        }
        HistoryBackend::Dynamodb => {
            let h = &a.config.history;
            let settings = DynamoSettings {
                endpoint: (!h.dynamodb_endpoint.is_empty()).then(|| h.dynamodb_endpoint.clone()),
                region: h.dynamodb_region.clone(),
                table: h.dynamodb_table.clone(),
                create_table: h.dynamodb_create_table,
                static_credentials: (!h.dynamodb_access_key_id.is_empty()).then(|| {
                    (
                        h.dynamodb_access_key_id.clone(),
                        h.dynamodb_secret_access_key.clone(),
                    )
                }),
            };
            let db = DynamoHistory::connect(&settings, profiles.clone())
                .await
                .context("connecting to DynamoDB (history)")?;
            (Arc::new(db), Box::pin(async {}))
        }
    };
    let keys = Keys::new(&c.key_prefix);
    let topic = |name: &str| {
        let mut settings = KafkaSettings::new(&c.brokers, name);
        settings.partitions = c.partitions;
        settings.replication = c.replication_factor;
        settings.min_insync_replicas = c.min_insync_replicas;
        settings.linger_ms = c.linger_ms;
        settings.fetch_wait_ms = c.fetch_wait_ms;
        settings
    };
    let kafka = topic(&c.messages_topic);
    ensure_and_check(&kafka).await?;

    let order = state.sequencer();
    let sequencer: Arc<dyn Sequencer> = Arc::new(order.clone());
    // Resume reads the Redis window while it holds what is asked without a hole, else
    // PostgreSQL; heads always come from PostgreSQL.
    let recent: Arc<dyn RecentMessages> = Arc::new(CachedRecent {
        cache: Arc::new(RedisWindow::new(redis.clone(), keys.clone())),
        truth: Arc::new(order.clone()),
    });
    let cache: Arc<dyn MembershipCache> = Arc::new(RedisMembershipCache::new(
        redis.clone(),
        keys.clone(),
        MEMBERSHIP_TTL,
    ));
    let redis_fanout = Arc::new(RedisFanout::new(redis.clone(), keys.clone(), c.window_size));
    let fanout: Arc<dyn GatewayPublisher> = redis_fanout.clone();
    let ports = Ports {
        // Every send looks up its author: through the profile cache, not PostgreSQL.
        users: profiles,
        sessions: state.clone(),
        friends: state.clone(),
        chats: state.clone(),
        log: Arc::new(KafkaLog::new(kafka.clone(), sequencer.clone())?),
        recent,
        history: history.clone(),
        membership_cache: cache.clone(),
        limiter: Arc::new(RedisRateLimiter::new(redis.clone(), keys.clone())),
        hasher: Arc::new(harmony_api::auth::Argon2Hasher::new(
            a.config.limits.password_queue,
        )?),
        notices: Arc::new(RedisNotices(redis_fanout)),
        presence: Arc::new(RedisPresence::new(
            redis.clone(),
            keys.clone(),
            std::time::Duration::from_millis(a.config.presence.node_ttl_ms),
        )),
    };

    let stop = a.workers_stop.clone();
    let mut tasks: Vec<Task> = Vec::new();
    if a.roles.api || a.roles.gateway || a.roles.sink {
        // Every node with HTTP takes sends, and the sink waits for the fan-out: wakes those
        // waiting for placements (they poll as well).
        tasks.push(Box::pin(order.listen(stop.clone())));
    }
    let parked_messages = topic(&c.messages_dead_letter_topic);
    ensure_and_check(&parked_messages).await?;
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
        let consumer = KafkaCursor::new(&kafka, "harmony-fanout")?
            .with_dead_letters(&parked_messages, a.counted("fanout-dead-letters"))?;
        tasks.push(Box::pin(
            Fanout {
                consumer,
                gateways: fanout.clone(),
                sequencer: Some(sequencer.clone()),
                on_processed: a.counted("fanout"),
            }
            .run(stop.clone()),
        ));
    }
    if a.roles.sink {
        // The fan-out parks undecodable records; the sink passes over them.
        let consumer = KafkaCursor::new(&kafka, "harmony-sink")?;
        let history = history.clone();
        tasks.push(Box::pin(
            Sink {
                consumer,
                history,
                sequencer: sequencer.clone(),
                on_processed: a.counted("sink"),
                on_refused: a.counted("sink-refused"),
            }
            .run(stop.clone()),
        ));
    }
    // The log's consumers' lag, for the workers this node runs.
    let watched: Vec<(&str, &str)> = [
        (a.roles.fanout, "fanout", "harmony-fanout"),
        (a.roles.sink, "sink", "harmony-sink"),
    ]
    .into_iter()
    .filter(|(runs, ..)| *runs)
    .map(|(_, label, group)| (label, group))
    .collect();
    if !watched.is_empty() {
        tasks.push(Box::pin(watch_lag(
            kafka.clone(),
            watched
                .into_iter()
                .map(|(l, g)| (l.to_owned(), g.to_owned()))
                .collect(),
            a.metrics.clone(),
            stop.clone(),
        )));
    }
    let events = topic(&c.events_topic);
    let dead_letters = topic(&c.dead_letter_topic);
    if a.roles.relay || a.roles.projector {
        ensure_and_check(&events).await?;
        ensure_and_check(&dead_letters).await?;
    }
    if a.roles.relay {
        tasks.push(Box::pin(watch_slot(
            (*state).clone(),
            c.relay_slot.clone(),
            a.metrics.clone(),
            stop.clone(),
        )));
        tasks.push(Box::pin(relay(
            (*state).clone(),
            c.relay_slot.clone(),
            KafkaEvents::new(events.clone())?,
            a.counted("relay"),
            stop.clone(),
        )));
    }
    if a.roles.projector {
        let consumer = KafkaEventCursor::new(&events, "harmony-projector")?
            .with_dead_letters(&dead_letters, a.counted("projector-undecodable"))?;
        let parked: Arc<dyn EventPublisher> = Arc::new(KafkaEvents::new(dead_letters.clone())?);
        tasks.push(Box::pin(
            Projector {
                consumer,
                gateways: fanout,
                cache,
                history: history.clone(),
                on_processed: a.counted("projector"),
                dead_letters: Some(parked),
                on_dead_letter: a.counted("projector-dead-letters"),
                timeline: Timeline {
                    log: ports.log.clone(),
                    users: ports.users.clone(),
                },
            }
            .run(stop.clone()),
        ));
    }
    let ready_state = state.clone();
    let close_state = state.clone();
    Ok(Node {
        ports,
        hub,
        tasks,
        ready: Arc::new(move || {
            let state = ready_state.clone();
            Box::pin(async move { state.ping().await })
        }),
        close: Box::pin(async move {
            close_history.await;
            close_state.close().await;
        }),
    })
}

/// Creates the topic if missing, then compares what the brokers hold with the settings: a topic
/// less durable than asked stops the start, with what to change.
async fn ensure_and_check(settings: &KafkaSettings) -> anyhow::Result<()> {
    ensure_topic(settings)
        .await
        .with_context(|| format!("creating topic {}", settings.topic))?;
    let check = check_topic(settings)
        .await
        .with_context(|| format!("reading topic {}", settings.topic))?;
    for warning in &check.warnings {
        tracing::warn!(topic = %settings.topic, "{warning}");
    }
    if !check.errors.is_empty() {
        anyhow::bail!("{}", check.errors.join("; "));
    }
    Ok(())
}

/// The relay role: lead (or wait as a standby), relay until the stream fails, lead again.
async fn relay(
    state: StateDb,
    slot: String,
    publisher: KafkaEvents,
    on_processed: harmony_workers::OnProcessed,
    stop: tokio_util::sync::CancellationToken,
) {
    let publisher: Arc<dyn EventPublisher> = Arc::new(publisher);
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            led = WalOutbox::lead(&state, &slot) => led,
        };
        let result = match stream {
            Ok(stream) => {
                tracing::info!(slot = %slot, "relay leading");
                Relay {
                    stream,
                    publisher: publisher.clone(),
                    on_processed: on_processed.clone(),
                }
                .run(stop.clone())
                .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "relay stopped; leading again");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Publishes each watched consumer group's lag on the message log
/// (`consumer_lag{consumer="sink"}`: records not yet stored) every 5 s. A message store that is
/// down or throttling shows here as a growing lag, and its recovery as the lag going back down.
async fn watch_lag(
    log: KafkaSettings,
    groups: Vec<(String, String)>,
    metrics: Arc<harmony_api::Metrics>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut watches = Vec::new();
    for (label, group) in groups {
        match harmony_kafka::GroupLag::new(&log, &group) {
            Ok(watch) => watches.push((label, group, watch)),
            Err(e) => {
                tracing::warn!(group = %group, error = %e, "cannot watch a consumer group's lag")
            }
        }
    }
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (label, group, watch) in &watches {
            match watch.lag().await {
                Ok(lag) => {
                    metrics
                        .consumer_lag
                        .get_or_create(&metrics.consumer(label))
                        .set(lag);
                }
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "could not read a consumer group's lag")
                }
            }
        }
    }
}

/// WAL the relay's slot keeps above this is reported as an error on every check.
const SLOT_LAG_ALARM: i64 = 1 << 30;

/// Publishes the slot's lag (`consumer_lag{consumer="relay-slot-bytes"}`) every 5 s, and says
/// loudly when the relay falls far behind or PostgreSQL dropped WAL the slot needed.
async fn watch_slot(
    state: StateDb,
    slot: String,
    metrics: Arc<harmony_api::Metrics>,
    stop: tokio_util::sync::CancellationToken,
) {
    let labels = metrics.consumer("relay-slot-bytes");
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.slot_health(&slot).await {
            Ok(Some(health)) => {
                metrics
                    .consumer_lag
                    .get_or_create(&labels)
                    .set(health.lag_bytes);
                if health.wal_status == "lost" {
                    tracing::error!(slot = %slot, "the relay's slot lost WAL (max_slot_wal_keep_size): events were dropped; rebuild from the outbox table");
                } else if health.lag_bytes > SLOT_LAG_ALARM {
                    tracing::error!(slot = %slot, lag_bytes = health.lag_bytes, wal_status = %health.wal_status, "the relay is far behind: WAL is piling up");
                }
            }
            Ok(None) => tracing::error!(slot = %slot, "the relay's replication slot is missing"),
            Err(e) => tracing::warn!(error = %e, "could not read the relay slot's lag"),
        }
    }
}
