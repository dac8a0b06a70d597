-- Single-node schema: state, outbox, the embedded message log and the message store, in one
-- SQLite file. Times are Unix milliseconds (UTC).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Refresh tokens: only SHA-256 hashes. A family is one login's chain of rotations.
CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY,
    family     TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE friend_requests (
    id         TEXT PRIMARY KEY,
    from_id    TEXT NOT NULL REFERENCES users (id),
    to_id      TEXT NOT NULL REFERENCES users (id),
    pair_key   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- At most one pending request between two users, whichever way it goes.
CREATE UNIQUE INDEX friend_requests_one_pending ON friend_requests (pair_key) WHERE status = 'pending';
CREATE INDEX friend_requests_to ON friend_requests (to_id, status);
CREATE INDEX friend_requests_from ON friend_requests (from_id, status);

-- One row per friendship, user_a < user_b.
CREATE TABLE friendships (
    user_a     TEXT NOT NULL REFERENCES users (id),
    user_b     TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_a, user_b)
);
CREATE INDEX friendships_b ON friendships (user_b);

CREATE TABLE chats (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    owner_id   TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    -- "<smaller user id>:<larger user id>" for direct chats: one per pair.
    direct_key TEXT UNIQUE
);

CREATE TABLE chat_members (
    chat_id       TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id),
    role          TEXT NOT NULL,
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id);

-- Transactional outbox: written in the same transaction as the change it describes.
CREATE TABLE outbox (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    payload        TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

-- The embedded message log. `position` orders the whole log; `seq` orders one chat.
CREATE TABLE message_log (
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    prev_seq      INTEGER,
    author_id     TEXT NOT NULL,
    client_msg_id TEXT,
    record        BLOB NOT NULL,
    UNIQUE (chat_id, seq)
);
-- A retried send finds the message it created before.
CREATE UNIQUE INDEX message_log_client_msg_id
    ON message_log (chat_id, author_id, client_msg_id) WHERE client_msg_id IS NOT NULL;

-- The newest seq of each chat's log.
CREATE TABLE log_heads (
    chat_id  TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);

-- Each consumer's committed position, in the log or the outbox.
CREATE TABLE consumer_offsets (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

-- The message store (history), written by the sink by upsert. Authors are re-hydrated on read.
CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    chat_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    author_id     TEXT NOT NULL,
    content       TEXT NOT NULL,
    client_msg_id TEXT,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX messages_chat_seq ON messages (chat_id, seq);
