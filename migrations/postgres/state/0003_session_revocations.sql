-- Sessions (refresh-token families) that were ended: logout, reuse of a rotated token, or the
-- per-user cap. Every node reads new rows a few times a second and refuses the access tokens
-- that carry such a family as `sid`; rows older than an access token's lifetime are pruned.
-- `revoked_at` is the database's clock, so nodes' clocks do not matter for who sees what.
CREATE TABLE session_revocations (
    family     UUID PRIMARY KEY,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX session_revocations_at ON session_revocations (revoked_at);

-- A user's live sessions are counted at each login (the per-user cap).
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
