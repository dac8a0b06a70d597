//! The Kafka log against a private broker (tansu, durable sqlite engine) and a private Redis:
//! acknowledged appends with per-chat seqs, idempotent retries, consumer groups that resume
//! after their commits, and records that survive a broker kill -9.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use harmony_core::model::{Author, NewMessage};
use harmony_core::ports::{AppendOutcome, LogConsumer, LogDelivery, MessageLog};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_kafka::{ensure_topic, KafkaCursor, KafkaLog, KafkaSettings};
use harmony_redis::{connect, Keys, RedisIdempotency};
use harmony_testkit::kafka::PrivateBroker;
use harmony_testkit::redis::PrivateRedis;

fn message(
    chat: ChatId,
    author: &Author,
    text: &str,
    key: Option<&str>,
) -> anyhow::Result<NewMessage> {
    Ok(NewMessage {
        id: MessageId::new(),
        chat_id: chat,
        author: author.clone(),
        content: MessageContent::parse(text)?,
        client_msg_id: key.map(ClientMsgId::parse).transpose()?,
        created_at: harmony_core::now(),
    })
}

/// Reads until `count` records arrived (or 30 s passed).
async fn read(cursor: &mut KafkaCursor, count: usize) -> anyhow::Result<Vec<LogDelivery>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < count && tokio::time::Instant::now() < deadline {
        out.extend(cursor.poll(100, Duration::from_millis(500)).await?);
    }
    Ok(out)
}

#[tokio::test]
async fn the_kafka_log_commits_orders_and_survives_a_broker_crash() -> anyhow::Result<()> {
    let mut broker = PrivateBroker::start().await?;
    let redis = PrivateRedis::start().await?;
    let mut settings = KafkaSettings::new(&broker.bootstrap(), "harmony.messages.v1");
    settings.partitions = 2;
    ensure_topic(&settings).await?;
    ensure_topic(&settings).await?;
    let keys = Arc::new(RedisIdempotency::new(
        connect(&redis.url()).await?,
        Keys::new("k:"),
        Duration::from_secs(3600),
        Duration::from_secs(30),
    ));
    let log = KafkaLog::new(settings.clone(), keys)?;
    let author = Author {
        id: UserId::new(),
        username: Username::parse("ann")?,
        display_name: DisplayName::parse("Ann")?,
    };
    let (a, b) = (ChatId::new(), ChatId::new());

    let mut sent = Vec::new();
    for i in 0..6 {
        let chat = if i % 2 == 0 { a } else { b };
        let outcome = log
            .append(message(
                chat,
                &author,
                &format!("m{i}"),
                Some(&format!("k{i}")),
            )?)
            .await?;
        let AppendOutcome::Created(m) = outcome else {
            anyhow::bail!("a first send must create")
        };
        sent.push(m);
    }
    let retry = log
        .append(message(a, &author, "m0 again", Some("k0"))?)
        .await?;
    assert_eq!(
        retry,
        AppendOutcome::Duplicate(sent[0].clone()),
        "a retried client_msg_id finds the first message"
    );
    for chat in [a, b] {
        let seqs: Vec<i64> = sent
            .iter()
            .filter(|m| m.chat_id == chat)
            .map(|m| m.seq)
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "seq increases within a chat: {seqs:?}"
        );
    }

    let mut sink = KafkaCursor::new(&settings, "sink")?;
    let got = read(&mut sink, 6).await?;
    assert_eq!(got.len(), 6, "every acknowledged record is consumed");
    let mut by_chat: HashMap<ChatId, Vec<i64>> = HashMap::new();
    for d in &got {
        by_chat
            .entry(d.message.chat_id)
            .or_default()
            .push(d.message.seq);
        let original = sent.iter().find(|m| m.id == d.message.id);
        assert_eq!(
            original,
            Some(&d.message),
            "the consumed message is the committed one, seq included"
        );
    }
    for (chat, seqs) in &by_chat {
        let expected: Vec<i64> = sent
            .iter()
            .filter(|m| m.chat_id == *chat)
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, &expected, "per-chat order");
    }
    sink.commit(&got.iter().map(|d| d.position).collect::<Vec<_>>())
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(sink);

    // kill -9 the broker: what was acknowledged is still there after the restart.
    broker.restart().await?;
    let after = log
        .append(message(b, &author, "after the crash", None)?)
        .await?;
    let mut fresh = KafkaCursor::new(&settings, "audit")?;
    let all = read(&mut fresh, 7).await?;
    assert_eq!(
        all.len(),
        7,
        "all acknowledged records survive a broker crash"
    );
    // The committed group resumes after its commit: only the new record.
    let mut sink = KafkaCursor::new(&settings, "sink")?;
    let resumed = read(&mut sink, 1).await?;
    assert_eq!(
        resumed.iter().map(|d| d.message.id).collect::<Vec<_>>(),
        [after.message().id]
    );
    assert!(sink.poll(10, Duration::from_millis(500)).await?.is_empty());
    Ok(())
}
