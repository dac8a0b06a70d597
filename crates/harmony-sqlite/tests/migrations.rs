//! Schema migrations against a real SQLite file: a database written by an older version opens
//! with its data intact.

use harmony_core::model::{Author, NewMessage, User};
use harmony_core::ports::{
    AppendOutcome, HistoryStore, LogConsumer, LogEntry, MessageLog, PageCursor, RecentMessages,
};
use harmony_core::values::{ClientMsgId, DisplayName, MessageContent, Username};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_protocol::record::MessageRecordV1;
use harmony_sqlite::Database;

/// A database as version 2 of the schema left it, with two messages of one chat (inserted out
/// of seq order, as interleaved chats leave them) and one of another.
fn version_2(path: &std::path::Path, chat: &str, other: &str) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(include_str!("../../../migrations/sqlite/0001_init.sql"))?;
    conn.execute_batch(include_str!(
        "../../../migrations/sqlite/0002_processed_events.sql"
    ))?;
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 0), (2, 0);",
    )?;
    let ann = "0192f0a4-0000-7000-8000-000000000001";
    conn.execute(
        "INSERT INTO users (id, username, display_name, password_hash, created_at) \
         VALUES (?, 'ann', 'Ann', 'x', 0)",
        [ann],
    )?;
    let mut insert = conn.prepare(
        "INSERT INTO messages (id, chat_id, seq, author_id, content, client_msg_id, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?;
    for (id, chat, seq, text, key) in [
        ("01JD0000000000000000000002", chat, 2, "second", None),
        ("01JD0000000000000000000003", other, 1, "elsewhere", None),
        ("01JD0000000000000000000001", chat, 1, "first", Some("k1")),
    ] {
        insert.execute(rusqlite::params![
            id,
            chat,
            seq,
            ann,
            text,
            key,
            1_700_000_000_000i64
        ])?;
    }
    Ok(())
}

#[tokio::test]
async fn history_written_before_the_clustered_messages_table_reads_the_same_after(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("h.db");
    let chat = ChatId::new();
    let other = ChatId::new();
    version_2(&path, &chat.to_string(), &other.to_string())?;

    let db = Database::open(&path).await?;
    let page = db
        .page(chat, PageCursor::Latest, 10)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no page"))?;
    let texts: Vec<(i64, &str, &str)> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.content.as_str(), m.author.username.as_str()))
        .collect();
    assert_eq!(texts, vec![(1, "first", "ann"), (2, "second", "ann")]);
    assert_eq!(
        page.messages[0].client_msg_id.as_ref().map(|k| k.as_str()),
        Some("k1")
    );
    assert!(!page.has_more);
    let after = db.messages_after_seq(other, 0, 10).await?;
    assert_eq!(after.len(), 1, "the other chat's message moved too");

    // The id is still unique: the sink's upsert of a message already stored adds nothing.
    db.upsert_messages(&page.messages).await?;
    let again = db.page(chat, PageCursor::Latest, 10).await?;
    assert_eq!(again.map(|p| p.messages.len()), Some(2));
    drop(db);

    // And the table is clustered on (chat_id, seq): it has no rowid.
    let conn = rusqlite::Connection::open(&path)?;
    assert!(conn.prepare("SELECT rowid FROM messages").is_err());
    let version: i64 = conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
        r.get(0)
    })?;
    assert!(version >= 3, "every migration ran, this one too: {version}");
    Ok(())
}

/// A database as version 4 left it: the log with its (chat_id, seq) and key indexes, and the
/// same messages in history, written by sends (`seqs` of `chat`, the first with key `k1`).
fn version_4(path: &std::path::Path, chat: ChatId, ann: &User) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    for sql in [
        include_str!("../../../migrations/sqlite/0001_init.sql"),
        include_str!("../../../migrations/sqlite/0002_processed_events.sql"),
        include_str!("../../../migrations/sqlite/0003_messages_by_chat.sql"),
        include_str!("../../../migrations/sqlite/0004_session_revocations.sql"),
    ] {
        conn.execute_batch(sql)?;
    }
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0), (4, 0);",
    )?;
    conn.execute(
        "INSERT INTO users (id, username, display_name, password_hash, created_at) \
         VALUES (?, 'ann', 'Ann', 'x', 0)",
        [ann.id.to_string()],
    )?;
    for seq in 1..=2i64 {
        let message = NewMessage {
            id: MessageId::new(),
            chat_id: chat,
            author: Author::from(ann),
            content: MessageContent::from_trusted(format!("m{seq}")),
            client_msg_id: (seq == 1).then(|| ClientMsgId::from_trusted("k1".into())),
            created_at: harmony_core::now(),
            change: None,
            reply_to: None,
            mentions: Default::default(),
            state: Default::default(),
            notice: None,
        };
        let key = message
            .client_msg_id
            .as_ref()
            .map(|k| k.as_str().to_owned());
        conn.execute(
            "INSERT INTO message_log (chat_id, seq, prev_seq, author_id, client_msg_id, record) \
             VALUES (?, ?, ?, ?, ?, ?)",
            rusqlite::params![
                chat.to_string(),
                seq,
                (seq > 1).then_some(seq - 1),
                ann.id.to_string(),
                key,
                MessageRecordV1::from(&message).encode()
            ],
        )?;
        conn.execute(
            "INSERT INTO messages (id, chat_id, seq, author_id, content, client_msg_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            rusqlite::params![
                message.id.to_string(),
                chat.to_string(),
                seq,
                ann.id.to_string(),
                message.content.as_str(),
                key,
                1_700_000_000_000i64
            ],
        )?;
    }
    conn.execute(
        "INSERT INTO log_heads (chat_id, last_seq) VALUES (?, 2)",
        [chat.to_string()],
    )?;
    conn.execute(
        "INSERT INTO consumer_offsets (consumer, position) VALUES ('fanout', 1)",
        [],
    )?;
    Ok(())
}

#[tokio::test]
async fn a_log_written_with_its_indexes_keeps_its_positions_keys_and_resumes_after_0005(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("l.db");
    let chat = ChatId::new();
    let ann = User {
        id: UserId::new(),
        username: Username::from_trusted("ann".into()),
        display_name: DisplayName::from_trusted("Ann".into()),
        created_at: harmony_core::now(),
    };
    version_4(&path, chat, &ann)?;
    let db = Database::open(&path).await?;

    // A consumer goes on from its committed position: the second entry, not the first again.
    let mut cursor = db.log_cursor("fanout").await?;
    let next = cursor
        .poll(10, std::time::Duration::from_millis(10))
        .await?;
    let seqs: Vec<(i64, i64)> = next
        .iter()
        .map(|d| match &d.entry {
            LogEntry::Placed(m) => (d.position.offset, m.seq),
            LogEntry::Unplaced(_) => (d.position.offset, -1),
        })
        .collect();
    assert_eq!(seqs, vec![(2, 2)], "positions survive the rebuilt table");

    // A retried send finds the message its key made before the migration.
    let retry = NewMessage {
        id: MessageId::new(),
        chat_id: chat,
        author: Author::from(&ann),
        content: MessageContent::from_trusted("m1 again".into()),
        client_msg_id: Some(ClientMsgId::from_trusted("k1".into())),
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    };
    match db.append(retry).await? {
        AppendOutcome::Duplicate(m) => assert_eq!((m.seq, m.content.as_str()), (1, "m1")),
        AppendOutcome::Created(m) => anyhow::bail!("the retry created seq {}", m.seq),
        AppendOutcome::Refused(r) => anyhow::bail!("the retry was refused: {r:?}"),
    }
    // A new send takes the next seq and the next position; resume reads all three.
    let fresh = NewMessage {
        id: MessageId::new(),
        chat_id: chat,
        author: Author::from(&ann),
        content: MessageContent::from_trusted("m3".into()),
        client_msg_id: None,
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    };
    assert_eq!(db.append(fresh).await?.message().map(|m| m.seq), Some(3));
    let resumed = db.recent_after(chat, 0, 10).await?;
    let got: Vec<i64> = resumed.messages.iter().map(|m| m.seq).collect();
    assert_eq!(got, vec![1, 2, 3]);
    assert!(resumed.complete);
    let later = cursor
        .poll(10, std::time::Duration::from_millis(200))
        .await?;
    assert_eq!(later.first().map(|d| d.position.offset), Some(3));
    Ok(())
}
