-- History is read a chat at a time, in seq order (pages, resumes, the last message of a chat
-- list). Stored by rowid, a page of 50 was 50 lookups scattered over the file, since messages
-- of all chats arrive interleaved. Clustered on (chat_id, seq), a page is one range scan
-- (harmony-bench S7). The id stays unique: the sink's upsert and cursors look messages up by it.
CREATE TABLE messages_by_chat (
    chat_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    id            TEXT NOT NULL UNIQUE,
    author_id     TEXT NOT NULL,
    content       TEXT NOT NULL,
    client_msg_id TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
INSERT INTO messages_by_chat (chat_id, seq, id, author_id, content, client_msg_id, created_at)
    SELECT chat_id, seq, id, author_id, content, client_msg_id, created_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_by_chat RENAME TO messages;
