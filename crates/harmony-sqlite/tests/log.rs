//! The embedded log against a real SQLite file: appends are ordered and idempotent, cursors
//! resume after their committed position across a reopen, and the outbox is written with the
//! change it describes.

use std::time::Duration;

use harmony_core::model::{Account, Author, NewMessage, User};
use harmony_core::ports::{
    AppendOutcome, EventConsumer, HistoryStore, LogConsumer, MessageLog, PageCursor,
    RecentMessages, UserStore,
};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_sqlite::Database;

/// The embedded log numbers each chat itself: every entry comes placed.
fn placed(d: &harmony_core::ports::LogDelivery) -> &harmony_core::model::Message {
    match &d.entry {
        harmony_core::ports::LogEntry::Placed(m) => m,
        harmony_core::ports::LogEntry::Unplaced(m) => panic!("unplaced entry {}", m.id),
    }
}

fn message(chat: ChatId, author: &Author, text: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        chat_id: chat,
        author: author.clone(),
        content: MessageContent::parse(text).expect("valid"),
        client_msg_id: key.map(|k| ClientMsgId::parse(k).expect("valid")),
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    }
}

#[tokio::test]
async fn appends_are_ordered_idempotent_and_resumable() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("h.db");
    let db = Database::open(&path).await?;
    let user = User {
        id: UserId::new(),
        username: Username::parse("ann")?,
        display_name: DisplayName::parse("Ann")?,
        created_at: harmony_core::now(),
    };
    db.create_account(&Account {
        user: user.clone(),
        password_hash: "x".into(),
    })
    .await?;
    let author = Author::from(&user);
    let (a, b) = (ChatId::new(), ChatId::new());
    let first = db.append(message(a, &author, "a1", Some("k1"))).await?;
    let again = db
        .append(message(a, &author, "a1 again", Some("k1")))
        .await?;
    assert!(matches!(first, AppendOutcome::Created(ref m) if m.seq == 1));
    assert_eq!(
        Some(again),
        first.message().cloned().map(AppendOutcome::Duplicate)
    );
    db.append(message(b, &author, "b1", None)).await?;
    db.append(message(a, &author, "a2", None)).await?;
    // History is written by the append itself: readable as soon as the append is answered.
    let page = db.page(a, PageCursor::Latest, 10).await?.expect("chat a");
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2]
    );

    let mut cursor = db.log_cursor("test").await?;
    let batch = cursor.poll(2, Duration::from_millis(10)).await?;
    let seen: Vec<(ChatId, i64, Option<i64>)> = batch
        .iter()
        .map(|d| {
            let m = placed(d);
            (m.chat_id, m.seq, m.prev_seq())
        })
        .collect();
    assert_eq!(seen, [(a, 1, None), (b, 1, None)]);
    cursor.commit(&[batch[1].position]).await?;
    let recent = db.recent_after(a, 0, 10).await?;
    assert_eq!(
        recent.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(recent.complete);
    // A busy cursor writes its position at most every 200 ms; dropping it queues the write,
    // and `close` waits for it.
    drop(cursor);
    db.close().await;

    // After a reopen the cursor starts after what it committed.
    let db = Database::open(&path).await?;
    let mut cursor = db.log_cursor("test").await?;
    let batch = cursor.poll(10, Duration::from_millis(10)).await?;
    assert_eq!(
        batch
            .iter()
            .map(|d| (placed(d).seq, placed(d).prev_seq()))
            .collect::<Vec<_>>(),
        [(2, Some(1))]
    );
    let empty = cursor.poll(10, Duration::from_millis(50)).await?;
    assert!(empty.is_empty());
    let heads = db.last_seqs(&[a, b, ChatId::new()]).await?;
    assert_eq!(
        (heads.get(&a), heads.get(&b), heads.len()),
        (Some(&2), Some(&1), 2)
    );
    Ok(())
}

#[tokio::test]
async fn a_state_change_and_its_event_commit_together() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(&dir.path().join("h.db")).await?;
    let user = User {
        id: UserId::new(),
        username: Username::parse("ann")?,
        display_name: DisplayName::parse("Ann")?,
        created_at: harmony_core::now(),
    };
    let account = Account {
        user: user.clone(),
        password_hash: "x".into(),
    };
    db.create_account(&account).await?;
    let mut outbox = db.outbox_cursor("projector").await?;
    let events = outbox.poll(10, Duration::from_millis(10)).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.event_type(), "user_created");
    // A refused change writes no event.
    let dup = db.create_account(&account).await;
    assert!(matches!(
        dup,
        Err(harmony_core::ports::StoreError::Conflict("username"))
    ));
    assert!(outbox.poll(10, Duration::from_millis(50)).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn no_successor_joins_a_revoked_token_family() -> anyhow::Result<()> {
    use harmony_core::ports::{RefreshRecord, SessionStore};
    let dir = tempfile::tempdir()?;
    let db = Database::open(&dir.path().join("h.db")).await?;
    let user = User {
        id: UserId::new(),
        username: Username::parse("ann")?,
        display_name: DisplayName::parse("Ann")?,
        created_at: harmony_core::now(),
    };
    db.create_account(&Account {
        user: user.clone(),
        password_hash: "x".into(),
    })
    .await?;
    let now = harmony_core::now();
    let record = |hash: u8, family| RefreshRecord {
        hash: [hash; 32],
        family,
        user_id: user.id,
        created_at: now,
        expires_at: now + time::Duration::days(1),
        rotated_at: None,
        revoked: false,
    };
    let family = uuid::Uuid::new_v4();
    assert!(db.insert_refresh(&record(1, family)).await?);
    assert!(db.mark_rotated(&[1; 32], now).await?);
    assert!(
        !db.mark_rotated(&[1; 32], now).await?,
        "only one rotation wins"
    );
    db.revoke_family(family).await?;
    assert!(
        !db.insert_refresh(&record(2, family)).await?,
        "a successor joined a revoked family"
    );
    assert!(db.insert_refresh(&record(3, uuid::Uuid::new_v4())).await?);
    Ok(())
}

/// Concurrent writes share group commits; one that fails inside a group is undone alone, and
/// every other write of that group (its outbox event included) is kept.
#[tokio::test]
async fn a_failed_write_in_a_group_commit_is_undone_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = std::sync::Arc::new(Database::open(&dir.path().join("h.db")).await?);
    let account = |name: &str| -> anyhow::Result<Account> {
        Ok(Account {
            user: User {
                id: UserId::new(),
                username: Username::parse(name)?,
                display_name: DisplayName::parse(name)?,
                created_at: harmony_core::now(),
            },
            password_hash: "x".into(),
        })
    };
    // 60 accounts, every third a second claim on a name: launched at once, so they meet in
    // the writer's groups in any order.
    let mut writes = Vec::new();
    for i in 0..60 {
        let name = if i % 3 == 2 {
            format!("user{}", i - 1)
        } else {
            format!("user{i}")
        };
        let (db, account) = (db.clone(), account(&name)?);
        writes.push(tokio::spawn(
            async move { db.create_account(&account).await },
        ));
    }
    let (mut created, mut refused) = (0, 0);
    for write in writes {
        match write.await? {
            Ok(()) => created += 1,
            Err(harmony_core::ports::StoreError::Conflict("username")) => refused += 1,
            Err(e) => anyhow::bail!("unexpected error: {e}"),
        }
    }
    assert_eq!((created, refused), (40, 20));
    let mut outbox = db.outbox_cursor("projector").await?;
    let mut events = 0;
    loop {
        let batch = outbox.poll(100, Duration::from_millis(50)).await?;
        if batch.is_empty() {
            break;
        }
        events += batch.len();
        outbox.commit(&batch[batch.len() - 1]).await?;
    }
    assert_eq!(
        events, 40,
        "one event per created account, none for a refused one"
    );
    for i in (0..60).filter(|i| i % 3 != 2) {
        let name = Username::parse(&format!("user{i}"))?;
        assert!(
            db.account_by_username(&name).await?.is_some(),
            "{name:?} lost"
        );
    }
    Ok(())
}
