//! The Redis adapters against a private Redis: fan-out with prev_seq from the window, one
//! subscriber per process following chats, the window's completeness, cache tickets, rate
//! limits, and a Redis restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harmony_core::events::GatewayEvent;
use harmony_core::model::{Author, Message, Role, User};
use harmony_core::ports::{
    GatewayPublisher, MembershipCache, RateLimiter, RateRule, RecentMessages, StoreResult,
};
use harmony_core::values::{DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_redis::{
    connect, GatewaySubscriber, Interest, Keys, RedisFanout, RedisMembershipCache,
    RedisRateLimiter, RedisWindow,
};
use harmony_testkit::redis::PrivateRedis;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder(Mutex<Vec<GatewayEvent>>);

#[async_trait]
impl GatewayPublisher for Recorder {
    async fn publish(&self, events: &[GatewayEvent]) -> StoreResult<()> {
        self.0
            .lock()
            .map_err(|_| harmony_core::ports::StoreError::Corrupt("poisoned".into()))?
            .extend_from_slice(events);
        Ok(())
    }
}

impl Recorder {
    fn taken(&self) -> Vec<GatewayEvent> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn message(chat: ChatId, seq: i64) -> Message {
    Message {
        id: MessageId::new(),
        chat_id: chat,
        seq,
        author: Author {
            id: UserId::new(),
            username: Username::from_trusted("ann".into()),
            display_name: DisplayName::from_trusted("Ann".into()),
        },
        content: MessageContent::from_trusted(format!("m{seq}")),
        client_msg_id: None,
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    }
}

fn live(chat: ChatId, seqs: &[i64]) -> Vec<GatewayEvent> {
    seqs.iter()
        .map(|s| GatewayEvent::message(message(chat, *s)))
        .collect()
}

async fn until<F: Fn() -> bool>(what: &str, check: F) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

struct Gateway {
    recorder: Arc<Recorder>,
    interest: mpsc::UnboundedSender<Interest>,
    gaps: Arc<Mutex<u32>>,
    stop: CancellationToken,
}

fn gateway(redis: &PrivateRedis, keys: &Keys) -> anyhow::Result<Gateway> {
    let recorder = Arc::new(Recorder::default());
    let gaps = Arc::new(Mutex::new(0));
    let (interest, rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let counted = gaps.clone();
    let subscriber = GatewaySubscriber {
        client: redis::Client::open(redis.url())?,
        keys: keys.clone(),
        local: recorder.clone(),
        on_gap: Arc::new(move || {
            if let Ok(mut n) = counted.lock() {
                *n += 1;
            }
        }),
    };
    tokio::spawn(subscriber.run(rx, stop.clone()));
    Ok(Gateway {
        recorder,
        interest,
        gaps,
        stop,
    })
}

#[tokio::test]
async fn fanout_reaches_followers_and_the_window_vouches_only_for_runs_without_a_hole(
) -> anyhow::Result<()> {
    let redis = PrivateRedis::start().await?;
    let keys = Keys::new("t1:");
    let conn = connect(&redis.url()).await?;
    let fanout = RedisFanout::new(conn.clone(), keys.clone(), 3);
    let gw = gateway(&redis, &keys)?;
    let (chat, other) = (ChatId::new(), ChatId::new());
    gw.interest.send(Interest::Follow(chat))?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    fanout.publish(&live(chat, &[1, 2])).await?;
    fanout.publish(&live(other, &[1])).await?;
    fanout.publish(&live(chat, &[3, 4, 5])).await?;
    let user = User {
        id: UserId::new(),
        username: Username::from_trusted("bob".into()),
        display_name: DisplayName::from_trusted("Bob".into()),
        created_at: harmony_core::now(),
    };
    fanout
        .publish(&[GatewayEvent::MemberAdded {
            chat_id: other,
            user,
        }])
        .await?;
    until("six events", || gw.recorder.taken().len() >= 6).await?;
    let seen: Vec<(i64, Option<i64>)> = gw
        .recorder
        .taken()
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Message { prev_seq, message } => Some((message.seq, *prev_seq)),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, None),
            (2, Some(1)),
            (3, Some(2)),
            (4, Some(3)),
            (5, Some(4))
        ],
        "only the followed chat, in order"
    );
    assert!(
        matches!(
            gw.recorder.taken().last(),
            Some(GatewayEvent::MemberAdded { .. })
        ),
        "control events reach every gateway"
    );

    let window = RedisWindow::new(conn.clone(), keys.clone());
    let seqs = |slice: &harmony_core::ports::RecentSlice| {
        slice.messages.iter().map(|m| m.seq).collect::<Vec<_>>()
    };
    let old = window.recent_after(chat, 0, 10).await?;
    assert!(
        !old.complete && old.messages.is_empty(),
        "seqs 1 and 2 fell out of a window of 3: it holds nothing that follows 0"
    );
    let recent = window.recent_after(chat, 2, 10).await?;
    assert!(recent.complete);
    assert_eq!(seqs(&recent), [3, 4, 5]);
    // A window that lost its data and took new messages (40, 41), or came back from an old
    // snapshot with a hole (1..=2, then 5): only the run right after the position counts.
    let fresh = ChatId::new();
    let roomy = RedisFanout::new(conn, keys, 100);
    roomy.publish(&live(fresh, &[1, 2, 5, 40, 41])).await?;
    assert_eq!(seqs(&window.recent_after(fresh, 0, 10).await?), [1, 2]);
    let holed = window.recent_after(fresh, 2, 10).await?;
    assert!(
        !holed.complete && holed.messages.is_empty(),
        "3 and 4 are missing"
    );
    assert_eq!(seqs(&window.recent_after(fresh, 39, 10).await?), [40, 41]);
    // A replayed publish keeps one entry per seq.
    roomy.publish(&live(fresh, &[41])).await?;
    assert_eq!(seqs(&window.recent_after(fresh, 39, 10).await?), [40, 41]);
    let unknown = window.recent_after(ChatId::new(), 0, 10).await?;
    assert!(
        !unknown.complete && unknown.messages.is_empty(),
        "a chat the window never saw is not complete"
    );
    let heads = window.last_seqs(&[chat, other, ChatId::new()]).await?;
    assert_eq!(
        (heads.get(&chat), heads.get(&other), heads.len()),
        (Some(&5), Some(&1), 2)
    );

    gw.interest.send(Interest::Drop(chat))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    fanout.publish(&live(chat, &[6])).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gw.recorder.taken().len(),
        6,
        "a dropped chat is no longer delivered"
    );
    gw.stop.cancel();
    Ok(())
}

#[tokio::test]
async fn a_restarted_redis_is_resubscribed_and_reported_as_a_gap() -> anyhow::Result<()> {
    let mut redis = PrivateRedis::start().await?;
    let keys = Keys::new("t2:");
    let gw = gateway(&redis, &keys)?;
    let chat = ChatId::new();
    gw.interest.send(Interest::Follow(chat))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    redis.restart().await?;
    until("the subscriber to report a gap", || {
        gw.gaps.lock().map(|n| *n >= 1).unwrap_or(false)
    })
    .await?;
    let fanout = RedisFanout::new(connect(&redis.url()).await?, keys, 100);
    fanout.publish(&live(chat, &[7])).await?;
    until("delivery after the restart", || {
        !gw.recorder.taken().is_empty()
    })
    .await?;
    gw.stop.cancel();
    Ok(())
}

#[tokio::test]
async fn cache_tickets_refuse_stale_puts_and_rate_limits_are_shared() -> anyhow::Result<()> {
    let redis = PrivateRedis::start().await?;
    let keys = Keys::new("t3:");
    let conn = connect(&redis.url()).await?;
    let cache = RedisMembershipCache::new(conn.clone(), keys.clone(), Duration::from_secs(60));
    let (chat, user) = (ChatId::new(), UserId::new());
    let ticket = cache.ticket().await;
    cache.put(chat, user, Some(Role::Admin), ticket).await;
    assert_eq!(cache.get(chat, user).await, Some(Some(Role::Admin)));
    let stale = cache.ticket().await;
    cache.invalidate_member(chat, user).await;
    cache.put(chat, user, Some(Role::Member), stale).await;
    assert_eq!(
        cache.get(chat, user).await,
        None,
        "a put that raced an invalidation is dropped"
    );
    let ticket = cache.ticket().await;
    cache.put(chat, user, None, ticket).await;
    assert_eq!(
        cache.get(chat, user).await,
        Some(None),
        "non-membership is cached too"
    );
    cache.invalidate_chat(chat, &[]).await;
    assert_eq!(cache.get(chat, user).await, None);

    // Chat lists: cached as read, dropped by any change to the user's memberships.
    let (ann, bob, other) = (UserId::new(), UserId::new(), ChatId::new());
    assert_eq!(cache.chats_of(ann).await, None);
    let ticket = cache.ticket().await;
    cache.put_chats_of(ann, &[chat, other], ticket).await;
    cache.put_chats_of(bob, &[], ticket).await;
    assert_eq!(cache.chats_of(ann).await, Some(vec![chat, other]));
    assert_eq!(
        cache.chats_of(bob).await,
        Some(vec![]),
        "no chats is an answer too"
    );
    cache.invalidate_member(other, ann).await;
    assert_eq!(cache.chats_of(ann).await, None);
    let stale = cache.ticket().await;
    cache.invalidate_member(chat, bob).await;
    cache.put_chats_of(bob, &[chat], stale).await;
    assert_eq!(
        cache.chats_of(bob).await,
        None,
        "a list read before a change is not kept"
    );
    let ticket = cache.ticket().await;
    cache.put_chats_of(ann, &[chat], ticket).await;
    cache.put_chats_of(bob, &[chat], ticket).await;
    cache.invalidate_chat(chat, &[ann]).await;
    assert_eq!(
        cache.chats_of(ann).await,
        None,
        "a deleted chat drops its members' lists"
    );

    // Two api nodes, one limit.
    let rule = RateRule {
        burst: 3,
        per_second: 1.0,
    };
    let node_a = RedisRateLimiter::new(conn.clone(), keys.clone());
    let node_b = RedisRateLimiter::new(connect(&redis.url()).await?, keys);
    assert!(node_a.check("send:u", rule).await.is_ok());
    assert!(node_b.check("send:u", rule).await.is_ok());
    assert!(node_a.check("send:u", rule).await.is_ok());
    let wait = node_b.check("send:u", rule).await.err();
    assert!(
        wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(1)),
        "{wait:?}"
    );
    assert!(
        node_b.check("send:v", rule).await.is_ok(),
        "keys are independent"
    );
    Ok(())
}

#[tokio::test]
async fn without_redis_each_node_still_limits() -> anyhow::Result<()> {
    let redis = PrivateRedis::start().await?;
    let limiter = RedisRateLimiter::new(connect(&redis.url()).await?, Keys::new("t"));
    let rule = RateRule {
        burst: 3,
        per_second: 0.01,
    };
    assert!(limiter.check("login:ann", rule).await.is_ok());
    drop(redis);
    let mut answers = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..5 {
        answers.push(limiter.check("login:ann", rule).await.is_ok());
    }
    assert_eq!(
        answers,
        [true, true, true, false, false],
        "the node's own buckets limit while Redis is away"
    );
    // Not a timing goal, a hang detector: without a rest after the first failure each check
    // waited for a reconnection (minutes with the library's default backoff).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "checks waited on Redis: {:?}",
        started.elapsed()
    );
    Ok(())
}
