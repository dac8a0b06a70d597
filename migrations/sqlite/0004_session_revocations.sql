-- Sessions (refresh-token families) that were ended: logout, reuse of a rotated token, or the
-- per-user cap. Their access tokens carry the family as `sid` and are refused while a row is
-- younger than an access token's lifetime; older rows are pruned.
CREATE TABLE session_revocations (
    family     TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX session_revocations_at ON session_revocations (revoked_at);

-- A user's live sessions are counted at each login (the per-user cap).
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
