//! The Kafka log against a private broker (tansu, durable sqlite engine) and the sequencer on a
//! private PostgreSQL: acknowledged appends with dense per-chat seqs, idempotent retries,
//! consumer groups that resume after their commits, and records that survive a broker kill -9.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use harmony_core::model::{Author, NewMessage};
use harmony_core::ports::{
    AppendOutcome, LogConsumer, LogDelivery, LogEntry, MessageLog, Placement, Sequencer,
};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_kafka::{ensure_topic, KafkaCursor, KafkaLog, KafkaSettings};
use harmony_postgres::{PgSequencer, StateDb};
use harmony_testkit::kafka::PrivateBroker;
use harmony_testkit::postgres::PrivatePostgres;
use tokio_util::sync::CancellationToken;

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
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
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

fn unplaced(d: &LogDelivery) -> anyhow::Result<&NewMessage> {
    match &d.entry {
        LogEntry::Unplaced(m) => Ok(m),
        LogEntry::Placed(_) => anyhow::bail!("a Kafka record comes unplaced"),
    }
}

/// What the fan-out does for the sequencer: places every record it consumes, then commits. The
/// broker is killed during the test: a failed poll or commit is tried again.
async fn place_until(
    settings: KafkaSettings,
    sequencer: PgSequencer,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut cursor = KafkaCursor::new(&settings, "placer")?;
    while !stop.is_cancelled() {
        let Ok(batch) = cursor.poll(100, Duration::from_millis(100)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let records = batch
            .iter()
            .map(|d| unplaced(d).cloned())
            .collect::<anyhow::Result<Vec<_>>>()?;
        sequencer.sequence(&records).await?;
        let positions: Vec<_> = batch.iter().map(|d| d.position).collect();
        let _ = cursor.commit(&positions).await;
    }
    Ok(())
}

#[tokio::test]
async fn the_kafka_log_commits_orders_and_survives_a_broker_crash() -> anyhow::Result<()> {
    let mut broker = PrivateBroker::start().await?;
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 4).await?;
    let mut settings = KafkaSettings::new(&broker.bootstrap(), "harmony.messages.v1");
    settings.partitions = 2;
    ensure_topic(&settings).await?;
    ensure_topic(&settings).await?;
    let sequencer = state.sequencer();
    let stop = CancellationToken::new();
    let listening = tokio::spawn(sequencer.listen(stop.clone()));
    let placing = tokio::spawn(place_until(
        settings.clone(),
        state.sequencer(),
        stop.clone(),
    ));
    let log = KafkaLog::new(settings.clone(), Arc::new(sequencer.clone()))?;
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
        assert_eq!(seqs, [1, 2, 3], "each chat's seqs are dense from 1");
    }

    let mut sink = KafkaCursor::new(&settings, "sink")?;
    let got = read(&mut sink, 6).await?;
    assert_eq!(got.len(), 6, "every acknowledged record is consumed");
    let mut by_chat: HashMap<ChatId, Vec<i64>> = HashMap::new();
    let records = got
        .iter()
        .map(|d| unplaced(d).cloned())
        .collect::<anyhow::Result<Vec<_>>>()?;
    for placement in sequencer.placements(&records).await? {
        let Some(Placement::Placed(m)) = placement else {
            anyhow::bail!("every consumed record was placed before its send was answered")
        };
        by_chat.entry(m.chat_id).or_default().push(m.seq);
        let original = sent.iter().find(|s| s.id == m.id);
        assert_eq!(
            original,
            Some(&m),
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
        resumed
            .iter()
            .map(|d| Ok(unplaced(d)?.id))
            .collect::<anyhow::Result<Vec<_>>>()?,
        after
            .message()
            .map(|m| m.id)
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        after.message().map(|m| m.seq),
        Some(4),
        "the chat's order goes on across the crash"
    );
    assert!(sink.poll(10, Duration::from_millis(500)).await?.is_empty());
    stop.cancel();
    placing.await??;
    listening.await?;
    Ok(())
}
