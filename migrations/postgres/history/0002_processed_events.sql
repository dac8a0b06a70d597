-- The projector's ledger: events whose effect on the message store is complete, recorded in the
-- same transaction as the effect's last step, so a replayed event does nothing twice.
CREATE TABLE processed_events (
    event_id     UUID PRIMARY KEY,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
