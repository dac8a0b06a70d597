-- Cluster message store (history), separate from state so it can live on its own database.
-- Rows hold the author's id only: names are re-hydrated on read, so they are always current.
-- Writes are upserts by message id, so a replayed log record changes nothing.

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    chat_id       UUID NOT NULL,
    seq           BIGINT NOT NULL,
    author_id     UUID NOT NULL,
    content       TEXT NOT NULL,
    client_msg_id TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX messages_chat_seq ON messages (chat_id, seq);
