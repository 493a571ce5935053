-- The steps of a domain pack's flow (flows.toml) a call reached, in order,
-- written as each is reached (so a crash keeps how far the call got).
CREATE TABLE flow_steps (
    record_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    flow TEXT NOT NULL,
    step TEXT NOT NULL,
    via TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (record_id, seq)
);
