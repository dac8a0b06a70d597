//! Schema migrations against a real SQLite file: a database written by an older version opens
//! with its data intact.

use harmony_core::ports::{HistoryStore, PageCursor};
use harmony_core::ChatId;
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
