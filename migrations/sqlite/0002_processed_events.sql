-- The projector's ledger: events whose database effect is complete, recorded in the same
-- transaction as the effect's last step, so a replayed event does nothing twice.
CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    processed_at INTEGER NOT NULL
);
