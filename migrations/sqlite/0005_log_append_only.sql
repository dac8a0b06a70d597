-- The log becomes a pure append: no secondary index to keep per send (harmony-bench S7's
-- profile: a send committed four b-trees where the floor commits two). Resume reads the history
-- table, which is written in the same transaction and clustered by (chat_id, seq), whose
-- primary key already keeps a chat's seqs unique; a retried send is found by its key there.
-- Positions are kept as they are: consumers' committed positions point into them.
CREATE TABLE message_log_appended (
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    prev_seq      INTEGER,
    author_id     TEXT NOT NULL,
    client_msg_id TEXT,
    record        BLOB NOT NULL
);
INSERT INTO message_log_appended (position, chat_id, seq, prev_seq, author_id, client_msg_id, record)
    SELECT position, chat_id, seq, prev_seq, author_id, client_msg_id, record FROM message_log;
DROP TABLE message_log;
ALTER TABLE message_log_appended RENAME TO message_log;
CREATE UNIQUE INDEX messages_client_msg_id
    ON messages (chat_id, author_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
