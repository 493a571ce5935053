-- Webhook deliveries: each event for each receiver is written here first
-- (in the call's or campaign's own path, one INSERT), then sent by a
-- delivery worker with retries; it survives a restart.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    -- Whose receiver: '' = a [[webhook]] of the configuration, else a campaign id.
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- pending, sending, delivered or failed (given up).
    state TEXT NOT NULL,
    next_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_node TEXT,
    lease_until BIGINT,
    last_status INTEGER,
    last_error TEXT,
    delivered_at BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_at);
