-- Cluster state store: accounts, sessions, friends, chats and the transactional outbox.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

-- Refresh tokens: only SHA-256 hashes. A family is one login's chain of rotations.
CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    family     UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE friend_requests (
    id         UUID PRIMARY KEY,
    from_id    UUID NOT NULL REFERENCES users (id),
    to_id      UUID NOT NULL REFERENCES users (id),
    pair_key   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX friend_requests_one_pending ON friend_requests (pair_key) WHERE status = 'pending';
CREATE INDEX friend_requests_to ON friend_requests (to_id, status);
CREATE INDEX friend_requests_from ON friend_requests (from_id, status);

-- One row per friendship, user_a < user_b.
CREATE TABLE friendships (
    user_a     UUID NOT NULL REFERENCES users (id),
    user_b     UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_a, user_b)
);
CREATE INDEX friendships_b ON friendships (user_b);

CREATE TABLE chats (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    owner_id   UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    direct_key TEXT UNIQUE
);

CREATE TABLE chat_members (
    chat_id       UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users (id),
    role          TEXT NOT NULL,
    joined_at     TIMESTAMPTZ NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id);

-- Transactional outbox, written in the same transaction as the change it describes.
CREATE TABLE outbox (
    position       BIGSERIAL PRIMARY KEY,
    event_id       UUID NOT NULL UNIQUE,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    payload        JSONB NOT NULL,
    version        INTEGER NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
