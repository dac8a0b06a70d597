-- Changes to messages (decision record 0004): edits, deletes and reactions are entries of the
-- chat's order, stored next to the messages they change (resume reads them in order), and a
-- message row holds its current state (content, edited_at, deleted_at, reactions as JSON text)
-- so a page stays one range scan. Replies keep the quote they were sent with; history reads
-- the original as it is now. Mentions are resolved at send.
ALTER TABLE messages
    ADD COLUMN change            TEXT,
    ADD COLUMN target_id         TEXT,
    ADD COLUMN reply_to_id       TEXT,
    ADD COLUMN reply_quote       TEXT,
    ADD COLUMN mentions          UUID[],
    ADD COLUMN mentions_everyone BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN edited_at         TIMESTAMPTZ,
    ADD COLUMN deleted_at        TIMESTAMPTZ,
    ADD COLUMN reactions         TEXT;
-- A delete finds the edits of its target.
CREATE INDEX messages_by_target ON messages (target_id) WHERE target_id IS NOT NULL;
