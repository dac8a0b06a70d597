-- Changes to messages (decision record 0004): edits, deletes and reactions are entries of the
-- chat's log with their own seq, stored in history next to the messages they change, so resume
-- reads them in order. A message row also holds its current state, so a page is still one range
-- scan: its edits (`content`, `edited_at`), its deletion (`deleted_at`, content emptied) and its
-- reactions (JSON). Replies keep the quote they were sent with, for when the original is gone;
-- history reads the original as it is now. Mentions are resolved at send (a JSON array of ids).
ALTER TABLE messages ADD COLUMN change TEXT;
ALTER TABLE messages ADD COLUMN target_id TEXT;
ALTER TABLE messages ADD COLUMN reply_to_id TEXT;
ALTER TABLE messages ADD COLUMN reply_quote TEXT;
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mentions_everyone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE messages ADD COLUMN reactions TEXT;
-- Where each entry's record sits in the log, so a delete can scrub the records of the message
-- and of its edits without an index on the log (which stays a pure append).
ALTER TABLE messages ADD COLUMN position INTEGER;
CREATE INDEX message_log_by_chat_seq ON message_log (chat_id, seq);
UPDATE messages SET position =
    (SELECT l.position FROM message_log l WHERE l.chat_id = messages.chat_id AND l.seq = messages.seq);
DROP INDEX message_log_by_chat_seq;
-- A delete finds the edits of its target.
CREATE INDEX messages_by_target ON messages (target_id) WHERE target_id IS NOT NULL;
