-- Changes to messages (decision record 0004) are placed like messages. The sequencer decides
-- what their order decides: a change's target must be a message of the chat, an edit comes
-- from the author, nothing changes a deleted message. So it knows which entries are changes
-- (`kind`, `target_id`) and which messages are deleted; a delete scrubs the records of the
-- message and of its edits here, in the placing transaction.
ALTER TABLE sequenced
    ADD COLUMN kind       TEXT,
    ADD COLUMN target_id  TEXT,
    ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX sequenced_by_target ON sequenced (target_id) WHERE target_id IS NOT NULL;

-- Changes the order refused: never placed, and answered the same on a replay.
CREATE TABLE refused_changes (
    id         TEXT PRIMARY KEY,
    chat_id    UUID NOT NULL,
    refusal    TEXT NOT NULL,
    refused_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
