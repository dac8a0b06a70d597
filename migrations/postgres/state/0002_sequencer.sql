-- The cluster's per-chat order (docs/decisions/0002-sequencer.md). The fan-out, which owns a log
-- partition, places each record it consumes: the chat's head moves by one and the record is kept
-- with its seq. A record is placed once (by message id), and a (chat, author, client_msg_id) at
-- most once, so this table is also the durable idempotency record of sends.

CREATE TABLE chat_heads (
    chat_id UUID PRIMARY KEY,
    head    BIGINT NOT NULL
);

CREATE TABLE sequenced (
    chat_id       UUID NOT NULL,
    seq           BIGINT NOT NULL,
    id            TEXT NOT NULL UNIQUE,
    author_id     UUID NOT NULL,
    client_msg_id TEXT,
    -- The log record (MessageRecordV1) as the api node wrote it.
    record        BYTEA NOT NULL,
    placed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, seq)
);
CREATE UNIQUE INDEX sequenced_key ON sequenced (chat_id, author_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

-- Membership changes placed in their chat's order. A removal recorded at head h means no message
-- after h may reach the removed member: the fan-out publishes the removal ahead of message h + 1,
-- on the same ordered path, whatever happened to the events that normally carry it.
CREATE TABLE membership_changes (
    id      BIGSERIAL PRIMARY KEY,
    chat_id UUID NOT NULL,
    user_id UUID NOT NULL,
    at_seq  BIGINT NOT NULL,
    removed BOOLEAN NOT NULL
);
CREATE INDEX membership_changes_chat ON membership_changes (chat_id, at_seq);
