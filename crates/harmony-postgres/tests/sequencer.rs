//! The sequencer on a private PostgreSQL: dense per-chat seqs from 1, a replayed record placed
//! where it was the first time, a repeated `client_msg_id` placed never, two placers racing on
//! one chat without a repeat or a hole, and a waiting send woken by the placement.

use std::collections::HashMap;
use std::time::Duration;

use harmony_core::model::{Author, NewMessage};
use harmony_core::ports::{Placement, RecentMessages, Sequencer, StoreError};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_postgres::StateDb;
use harmony_testkit::postgres::PrivatePostgres;
use tokio_util::sync::CancellationToken;

fn author(name: &str) -> anyhow::Result<Author> {
    Ok(Author {
        id: UserId::new(),
        username: Username::parse(name)?,
        display_name: DisplayName::parse(name)?,
    })
}

fn message(chat: ChatId, author: &Author, key: Option<&str>) -> anyhow::Result<NewMessage> {
    Ok(NewMessage {
        id: MessageId::new(),
        chat_id: chat,
        author: author.clone(),
        content: MessageContent::parse("hello")?,
        client_msg_id: key.map(ClientMsgId::parse).transpose()?,
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    })
}

fn seqs(placements: &[Placement]) -> Vec<Option<i64>> {
    placements
        .iter()
        .map(|p| match p {
            Placement::Placed(m) => Some(m.seq),
            Placement::Duplicate { .. } | Placement::Refused(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn the_sequencer_places_each_record_once_in_a_dense_order() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let sequencer = state.sequencer();
    let ann = author("ann")?;
    let (a, b) = (ChatId::new(), ChatId::new());

    let batch = vec![
        message(a, &ann, Some("k1"))?,
        message(b, &ann, None)?,
        message(a, &ann, None)?,
        message(a, &ann, Some("k1"))?, // a retry in the same batch
        message(b, &ann, Some("k2"))?,
    ];
    let placed = sequencer.sequence(&batch).await?.placements;
    assert_eq!(seqs(&placed), [Some(1), Some(1), Some(2), None, Some(2)]);
    match &placed[3] {
        Placement::Duplicate { original } => assert_eq!(original.id, batch[0].id),
        other => anyhow::bail!("expected a duplicate, got {other:?}"),
    }

    // A replay (the fan-out restarted before committing) is placed where it was; a retry with
    // the same key in a later batch is a duplicate of the first.
    let mut replay = batch.clone();
    replay.push(message(a, &ann, Some("k1"))?);
    replay.push(message(a, &ann, None)?);
    let again = sequencer.sequence(&replay).await?.placements;
    assert_eq!(
        seqs(&again),
        [Some(1), Some(1), Some(2), None, Some(2), None, Some(3)]
    );

    // What is known without placing: the sink's view.
    let unseen = message(b, &ann, None)?;
    let known = sequencer
        .placements(&[batch[2].clone(), batch[3].clone(), unseen])
        .await?;
    assert!(matches!(&known[0], Some(Placement::Placed(m)) if m.seq == 2));
    assert!(
        matches!(&known[1], Some(Placement::Duplicate { original }) if original.id == batch[0].id)
    );
    assert!(known[2].is_none(), "not placed yet");
    let key = ClientMsgId::parse("k1")?;
    let found = sequencer.by_key(a, ann.id, &key).await?;
    assert_eq!(found.map(|m| (m.id, m.seq)), Some((batch[0].id, 1)));
    assert!(sequencer.by_key(a, UserId::new(), &key).await?.is_none());

    // The truth of heads and recent messages.
    let heads = sequencer.last_seqs(&[a, b, ChatId::new()]).await?;
    assert_eq!(heads, HashMap::from([(a, 3), (b, 2)]));
    let recent = sequencer.recent_after(a, 1, 10).await?;
    assert_eq!(
        recent.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(recent.complete);
    Ok(())
}

#[tokio::test]
async fn two_placers_of_one_chat_never_repeat_or_skip_a_seq() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let ann = author("ann")?;
    let chat = ChatId::new();
    // The same 200 records, offered to two placers at once in batches of 20 (a rebalance in
    // which both the old and the new owner process a partition), plus 100 of each's own (a chat
    // that moved to another partition while the old one still held some of its records).
    let shared: Vec<NewMessage> = (0..200)
        .map(|_| message(chat, &ann, None))
        .collect::<anyhow::Result<_>>()?;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let sequencer = state.sequencer();
        let mut records = shared.clone();
        for _ in 0..100 {
            records.push(message(chat, &ann, None)?);
        }
        tasks.push(tokio::spawn(async move {
            let mut placed = Vec::new();
            for batch in records.chunks(20) {
                placed.extend(sequencer.sequence(batch).await?.placements);
            }
            anyhow::Ok(placed)
        }));
    }
    let mut by_id: HashMap<MessageId, i64> = HashMap::new();
    for task in tasks {
        for p in task.await?? {
            let Placement::Placed(m) = p else {
                anyhow::bail!("no duplicates were sent")
            };
            if let Some(seq) = by_id.insert(m.id, m.seq) {
                assert_eq!(seq, m.seq, "a record is placed once");
            }
        }
    }
    let mut all: Vec<i64> = by_id.values().copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=400).collect::<Vec<_>>(),
        "dense, from 1, no repeat"
    );
    Ok(())
}

#[tokio::test]
async fn a_waiting_send_is_woken_by_its_placement() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let (api, placer) = (state.sequencer(), state.sequencer());
    let stop = CancellationToken::new();
    let listening = tokio::spawn(api.listen(stop.clone()));
    let ann = author("ann")?;
    let record = message(ChatId::new(), &ann, Some("w1"))?;

    // Nothing places it: the wait ends empty at its deadline.
    let none = api
        .wait_placed(&record, produced(), Duration::from_millis(300))
        .await?;
    assert!(none.is_none());

    let waiting = {
        let (api, record) = (api.clone(), record.clone());
        tokio::spawn(async move {
            api.wait_placed(&record, produced(), Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    placer.sequence(std::slice::from_ref(&record)).await?;
    let woken = tokio::time::timeout(Duration::from_secs(20), waiting).await???;
    assert!(matches!(woken, Some(Placement::Placed(m)) if m.id == record.id && m.seq == 1));
    // Woken well before its deadline.
    assert!(started.elapsed() < Duration::from_secs(10));

    // Placed before the log's acknowledgement arrived (the fan-out was quicker): the send is
    // told its seq by the notification, not missed.
    let next = message(record.chat_id, &ann, Some("w2"))?;
    let placed = api
        .wait_placed(&next, placed_by(&placer, &next), Duration::from_secs(20))
        .await?;
    assert!(matches!(placed, Some(Placement::Placed(m)) if m.id == next.id && m.seq == 2));

    // A second record with a taken key is a duplicate: its notification names it without a
    // seq, and the send looks up the original.
    let again = message(record.chat_id, &ann, Some("w2"))?;
    let found = api
        .wait_placed(&again, placed_by(&placer, &again), Duration::from_secs(20))
        .await?;
    assert!(
        matches!(&found, Some(Placement::Duplicate { original }) if original.id == next.id),
        "{found:?}"
    );

    // A produce that fails is the send's error.
    let failed = api
        .wait_placed(
            &message(record.chat_id, &ann, Some("w3"))?,
            Box::pin(async { Err(StoreError::Unavailable("broker down".into())) }),
            Duration::from_secs(20),
        )
        .await;
    assert!(failed.is_err());
    stop.cancel();
    listening.await?;
    Ok(())
}

/// A lost notification (no listener on this node, as when its connection dropped) costs
/// latency, not the answer: the wait finds the placement by its poll.
#[tokio::test]
async fn a_send_whose_notification_is_lost_finds_its_placement_by_polling() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let (deaf, placer) = (state.sequencer(), state.sequencer());
    let ann = author("ann")?;
    let record = message(ChatId::new(), &ann, Some("lost"))?;
    let placed = deaf
        .wait_placed(
            &record,
            placed_by(&placer, &record),
            Duration::from_secs(20),
        )
        .await?;
    assert!(matches!(placed, Some(Placement::Placed(m)) if m.id == record.id && m.seq == 1));
    let found = deaf
        .wait_placements(std::slice::from_ref(&record), Duration::from_secs(20))
        .await?;
    assert!(matches!(&found[..], [Some(Placement::Placed(m))] if m.seq == 1));
    Ok(())
}

/// A produce during which the fan-out places the record (before the log's ack arrives).
fn placed_by(
    placer: &harmony_postgres::PgSequencer,
    record: &NewMessage,
) -> harmony_core::ports::Produce<'static> {
    let (placer, record) = (placer.clone(), record.clone());
    Box::pin(async move {
        placer.sequence(std::slice::from_ref(&record)).await?;
        Ok(())
    })
}

/// A produce that has already happened.
fn produced() -> harmony_core::ports::Produce<'static> {
    Box::pin(async { Ok(()) })
}

#[tokio::test]
async fn a_record_placed_while_it_is_looked_up_is_never_its_own_duplicate() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let ann = author("ann")?;
    let chat = ChatId::new();
    let records: Vec<NewMessage> = (0..300)
        .map(|i| message(chat, &ann, Some(&format!("k{i}"))))
        .collect::<anyhow::Result<_>>()?;
    // The fan-out places them one by one while the sink keeps asking where they stand: a
    // placement committed between the lookup by id and the lookup by key must read as placed.
    let placer = {
        let (sequencer, records) = (state.sequencer(), records.clone());
        tokio::spawn(async move {
            for r in &records {
                sequencer.sequence(std::slice::from_ref(r)).await?;
            }
            anyhow::Ok(())
        })
    };
    let sequencer = state.sequencer();
    loop {
        let found = sequencer.placements(&records).await?;
        for (r, p) in records.iter().zip(&found) {
            if let Some(Placement::Duplicate { original }) = p {
                anyhow::bail!("{} read as a duplicate of {}", r.id, original.id);
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    placer.await??;
    Ok(())
}

#[tokio::test]
async fn a_removal_is_ordered_before_the_chats_next_message_unless_undone_there(
) -> anyhow::Result<()> {
    use harmony_core::model::{Account, Chat, ChatKind, Role, User};
    use harmony_core::ports::{ChatStore, UserStore};
    use harmony_core::values::ChatName;
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let sequencer = state.sequencer();
    let mut users = Vec::new();
    for name in ["ann", "bob", "cat"] {
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
        users.push(user);
    }
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let chat = Chat {
        id: ChatId::new(),
        kind: ChatKind::Group,
        name: Some(ChatName::parse("g")?),
        owner_id: ann.id,
        created_at: harmony_core::now(),
        member_count: 3,
    };
    let members = [
        (ann.clone(), Role::Owner),
        (bob.clone(), Role::Member),
        (cat.clone(), Role::Member),
    ];
    state.create_chat(&chat, &members, None).await?;
    let author = Author::from(ann);
    sequencer
        .sequence(&[message(chat.id, &author, None)?])
        .await?;
    // Bob is removed at 1; cat is removed and added back at 1, before any new message.
    state.remove_member(chat.id, bob.id).await?;
    state.remove_member(chat.id, cat.id).await?;
    state.add_member(chat.id, cat, Role::Member).await?;
    let after = [
        message(chat.id, &author, None)?,
        message(chat.id, &author, None)?,
    ];
    let sequenced = sequencer.sequence(&after).await?;
    assert_eq!(
        sequenced.removals,
        [(chat.id, bob.id, 2)],
        "bob's removal goes right before message 2; cat is a member again there"
    );
    assert_eq!(
        sequencer.sequence(&after).await?.removals,
        sequenced.removals,
        "a replayed batch carries its removals again"
    );
    let later = sequencer
        .sequence(&[message(chat.id, &author, None)?])
        .await?;
    assert!(
        later.removals.is_empty(),
        "nothing takes effect before message 4"
    );
    Ok(())
}

/// A change to `target` by `author` (decision record 0004).
fn change(
    chat: ChatId,
    author: &Author,
    change: harmony_core::changes::Change,
) -> anyhow::Result<NewMessage> {
    let content = match change {
        harmony_core::changes::Change::Edit { .. } => MessageContent::parse("edited")?,
        _ => MessageContent::from_trusted(String::new()),
    };
    Ok(NewMessage {
        content,
        change: Some(change),
        ..message(chat, author, None)?
    })
}

#[tokio::test]
async fn the_order_refuses_what_a_delete_or_the_author_forbids_and_a_replay_is_refused_again(
) -> anyhow::Result<()> {
    use harmony_core::changes::{Change, Refusal};
    let pg = PrivatePostgres::start().await?;
    let state = StateDb::connect(&pg.database("state").await?, 8).await?;
    let sequencer = state.sequencer();
    let (ann, bob) = (author("ann")?, author("bob")?);
    let (chat, other) = (ChatId::new(), ChatId::new());
    let first = message(chat, &ann, None)?;
    let target = first.id;
    // One batch: the message, bob's edit of it, ann's edit, a reaction, the delete, then an
    // edit and a second delete after it, and a change naming the message from another chat.
    let batch = vec![
        first,
        change(chat, &bob, Change::Edit { target })?,
        change(chat, &ann, Change::Edit { target })?,
        change(
            chat,
            &bob,
            Change::React {
                target,
                emoji: harmony_core::changes::Emoji::parse("👍")?,
            },
        )?,
        change(chat, &bob, Change::Delete { target })?,
        change(chat, &ann, Change::Edit { target })?,
        change(chat, &ann, Change::Delete { target })?,
        change(other, &ann, Change::Delete { target })?,
    ];
    let placed = sequencer.sequence(&batch).await?.placements;
    assert_eq!(
        seqs(&placed),
        [Some(1), None, Some(2), Some(3), Some(4), None, None, None]
    );
    let refusals: Vec<Option<Refusal>> = placed
        .iter()
        .map(|p| match p {
            Placement::Refused(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        [
            None,
            Some(Refusal::NotAuthor),
            None,
            None,
            None,
            Some(Refusal::Deleted),
            Some(Refusal::Unchanged),
            Some(Refusal::NotFound)
        ]
    );
    // A replay is answered the same, and places nothing more.
    assert_eq!(sequencer.sequence(&batch).await?.placements, placed);
    assert_eq!(
        sequencer.placements(&batch[5..6]).await?,
        vec![Some(placed[5].clone())]
    );
    // The message and its edit are scrubbed in the chat's order; the reaction is not.
    let entries = sequencer.recent_after(chat, 0, 10).await?.messages;
    let contents: Vec<(&str, bool)> = entries
        .iter()
        .map(|m| (m.content.as_str(), m.state.deleted_at.is_some()))
        .collect();
    assert_eq!(
        contents,
        [("", true), ("", true), ("", false), ("", false)],
        "{entries:?}"
    );
    Ok(())
}
