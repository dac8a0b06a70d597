//! The outbox relay against a private PostgreSQL (logical decoding) and broker: events reach
//! `harmony.events.v1` in commit order; a relay that dies between the broker's ack and the slot
//! advance leaves its batch to be published again; one relay leads at a time.

use std::collections::HashMap;
use std::time::Duration;

use harmony_core::model::{Account, Chat, ChatKind, Message, Role, User};
use harmony_core::ports::{
    ChatStore, EventConsumer, EventPublisher, HistoryStore, OutboxStream, OutboxWake, UserStore,
};
use harmony_core::values::{ChatName, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_kafka::{ensure_topic, KafkaEventCursor, KafkaEvents, KafkaSettings};
use harmony_postgres::{HistoryDb, StateDb, WalOutbox};
use harmony_testkit::kafka::PrivateBroker;
use harmony_testkit::postgres::PrivatePostgres;

async fn user(state: &StateDb, name: &str) -> anyhow::Result<User> {
    let user = User {
        id: UserId::new(),
        username: Username::parse(name)?,
        display_name: DisplayName::parse(name)?,
        created_at: harmony_core::now(),
    };
    state
        .create_account(&Account {
            user: user.clone(),
            password_hash: "x".into(),
        })
        .await?;
    Ok(user)
}

#[tokio::test]
async fn the_relay_publishes_in_commit_order_again_after_a_crash_and_leads_alone(
) -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let broker = PrivateBroker::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 4).await?;
    let settings = KafkaSettings::new(&broker.bootstrap(), "harmony.events.v1");
    ensure_topic(&settings).await?;
    let publisher = KafkaEvents::new(settings.clone())?;

    // The slot exists before the first event is written.
    let mut first = WalOutbox::lead(&state, "harmony_relay").await?;
    let (ann, bob) = (user(&state, "ann").await?, user(&state, "bob").await?);
    let chat = Chat {
        id: ChatId::new(),
        kind: ChatKind::Group,
        name: Some(ChatName::parse("g")?),
        owner_id: ann.id,
        created_at: harmony_core::now(),
        member_count: 1,
    };
    state
        .create_chat(&chat, &[(ann.clone(), Role::Owner)], None)
        .await?;
    state.add_member(chat.id, &bob, Role::Member).await?;
    state.remove_member(chat.id, bob.id).await?;

    // Published, then the relay dies before advancing its slot.
    let batch = first.peek(500).await?;
    let types: Vec<&str> = batch.events.iter().map(|e| e.event.event_type()).collect();
    assert_eq!(
        types,
        [
            "user_created",
            "user_created",
            "chat_created",
            "member_added",
            "member_removed"
        ],
        "commit order"
    );
    publisher.publish(&batch.events).await?;
    drop(first);

    // A standby takes over and finds the same batch: it is published again, then consumed.
    let mut second = WalOutbox::lead(&state, "harmony_relay").await?;
    let standby = tokio::time::timeout(
        Duration::from_millis(1500),
        WalOutbox::lead(&state, "harmony_relay"),
    )
    .await;
    assert!(standby.is_err(), "a second relay must wait while one leads");
    let again = second.peek(500).await?;
    assert_eq!(
        again.events, batch.events,
        "the unadvanced batch comes again"
    );
    publisher.publish(&again.events).await?;
    second.advance(&again).await?;
    assert!(
        second.peek(500).await?.events.is_empty(),
        "advanced: nothing left"
    );
    let mut admin: sqlx::PgConnection = sqlx::Connection::connect(&pg.url("state")).await?;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&mut admin)
        .await?;
    assert_eq!(left, 0, "published outbox rows are cleaned up");

    // On the topic: every event twice (at-least-once), each aggregate's events in order.
    let mut cursor = KafkaEventCursor::new(&settings, "audit")?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 10 && tokio::time::Instant::now() < deadline {
        seen.extend(cursor.poll(100, Duration::from_millis(500)).await?);
    }
    assert_eq!(seen.len(), 10);
    let mut per_id: HashMap<uuid::Uuid, usize> = HashMap::new();
    for e in &seen {
        *per_id.entry(e.id).or_default() += 1;
    }
    assert!(
        per_id.values().all(|n| *n == 2) && per_id.len() == 5,
        "{per_id:?}"
    );
    let chat_events: Vec<&str> = seen
        .iter()
        .filter(|e| e.event.aggregate().1 == chat.id.to_string())
        .map(|e| e.event.event_type())
        .collect();
    assert_eq!(
        chat_events,
        [
            "chat_created",
            "member_added",
            "member_removed",
            "chat_created",
            "member_added",
            "member_removed"
        ]
    );
    let health = state
        .slot_health("harmony_relay")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no slot"))?;
    assert_eq!(health.wal_status, "reserved");
    assert!(health.lag_bytes >= 0);
    assert!(state.slot_health("no_such_slot").await?.is_none());
    drop(second);
    let third = tokio::time::timeout(
        Duration::from_secs(10),
        WalOutbox::lead(&state, "harmony_relay"),
    )
    .await;
    assert!(third.is_ok(), "leadership passes on when the leader goes");
    Ok(())
}

/// The relay does not poll: a commit that wrote an event wakes it, and so does nothing else
/// but its heartbeat (whose peek finds the heartbeat it wrote, not an event).
#[tokio::test]
async fn the_relay_wakes_on_a_commit_that_wrote_an_event() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 4).await?;
    let mut relay = WalOutbox::lead(&state, "harmony_relay").await?;
    // A new leader's first wait writes a heartbeat at once; the next peek moves past it.
    let first = relay.peek(500).await?;
    assert!(first.events.is_empty() && first.end.is_none(), "{first:?}");
    assert_eq!(relay.wait().await?, OutboxWake::Upkeep);
    let heartbeat = relay.peek(500).await?;
    assert!(heartbeat.end.is_some(), "the heartbeat is read");
    assert!(heartbeat.events.is_empty(), "a heartbeat is no event");
    relay.advance(&heartbeat).await?;

    // Nothing committed: the wait ends for upkeep, after the heartbeat's interval.
    let started = tokio::time::Instant::now();
    assert_eq!(relay.wait().await?, OutboxWake::Upkeep);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let batch = relay.peek(500).await?;
    relay.advance(&batch).await?;
    assert!(batch.events.is_empty(), "{batch:?}");

    // Two commits with events while the relay waits: one wake-up, one peek finds both.
    let waiting = tokio::spawn(async move {
        let woke = relay.wait().await;
        (relay, woke)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ann = user(&state, "ann").await?;
    let bob = user(&state, "bob").await?;
    let (mut relay, woke) = waiting.await?;
    assert_eq!(woke?, OutboxWake::Committed);
    let mut found = Vec::new();
    while found.len() < 2 {
        let batch = relay.peek(500).await?;
        if batch.end.is_none() {
            assert_eq!(relay.wait().await?, OutboxWake::Committed, "{found:?}");
            continue;
        }
        found.extend(batch.events.iter().map(|e| e.event.clone()));
        relay.advance(&batch).await?;
    }
    let created: Vec<_> = found
        .iter()
        .filter_map(|e| match e {
            harmony_core::events::DomainEvent::UserCreated { user } => Some(user.id),
            _ => None,
        })
        .collect();
    assert_eq!(created, vec![ann.id, bob.id]);
    Ok(())
}

/// Writes that carry no event (here: history rows in another database of the same server)
/// still add WAL the slot must decode. An idle relay writes a heartbeat, so its slot moves past
/// them: otherwise every idle peek decodes all the WAL since the last event, and the server
/// keeps it on disk.
#[tokio::test]
async fn an_idle_relay_moves_its_slot_past_writes_that_carry_no_event() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = std::sync::Arc::new(StateDb::connect(&pg.database("state").await?, 4).await?);
    let history = HistoryDb::connect(&pg.database("history").await?, 4, state.clone()).await?;
    let mut relay = WalOutbox::lead(&state, "harmony_relay").await?;
    let ann = user(&state, "ann").await?;
    let chat = ChatId::new();
    let messages = (1..=2000)
        .map(|seq| {
            Ok(Message {
                id: MessageId::new(),
                chat_id: chat,
                seq,
                author: (&ann).into(),
                content: MessageContent::parse(&format!("message {seq} {}", "x".repeat(100)))?,
                client_msg_id: None,
                created_at: harmony_core::now(),
                change: None,
                reply_to: None,
                mentions: Default::default(),
                state: Default::default(),
                notice: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    history.upsert_messages(&messages).await?;
    let lag = || async {
        anyhow::Ok(
            state
                .slot_health("harmony_relay")
                .await?
                .ok_or_else(|| anyhow::anyhow!("no slot"))?
                .lag_bytes,
        )
    };
    let written = lag().await?;
    assert!(
        written > 200_000,
        "the history rows wrote WAL: {written} bytes"
    );

    // The slot's restart point moves at the next snapshot of running transactions in the WAL
    // (the server writes one every 15 s; a checkpoint writes one now), once the slot was
    // confirmed past it.
    let admin = sqlx::PgPool::connect(&pg.url("state")).await?;
    // What the relay does: peek, publish (nothing here but the account's event), advance.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut events = 0;
    while lag().await? > written / 4 {
        sqlx::query("CHECKPOINT").execute(&admin).await?;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot still holds {} of {written} bytes",
            lag().await?
        );
        let batch = relay.peek(500).await?;
        events += batch.events.len();
        relay.advance(&batch).await?;
        if batch.end.is_none() {
            relay.wait().await?;
        }
    }
    assert_eq!(events, 1, "only the account's event; heartbeats are none");
    Ok(())
}
