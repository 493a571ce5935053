-- Training sessions (issue 24): a call between a human trainee and the
-- bot playing a scenario's customer. A row is queued when the call ends
-- (one INSERT, never in the call's media path), leased by one node's
-- analysis worker, then holds the trainee's report: the scenario's
-- scorecard with the trainee as the agent side, the objections settled,
-- the facts stated or missed, as JSON in `report`.
CREATE TABLE training_sessions (
    record_id TEXT PRIMARY KEY,
    -- Who was trained: the caller's user part on a training number, the
    -- callee's (or the name given) on a call the bot placed.
    trainee TEXT NOT NULL,
    -- The scenario's name (its file's stem) and its file.
    scenario TEXT NOT NULL,
    scenario_file TEXT NOT NULL,
    -- pending, running, done or failed (given up).
    state TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_node TEXT,
    lease_until BIGINT,
    reported_at BIGINT,
    score DOUBLE PRECISION,
    -- 1 passed, 0 failed (NULL until done).
    passed INTEGER,
    -- How the customer left: satisfied, angry, or NULL (the trainee hung up).
    outcome TEXT,
    report TEXT,
    error TEXT
);
CREATE INDEX training_sessions_due ON training_sessions (state, queued_at);
CREATE INDEX training_sessions_by_trainee ON training_sessions (trainee, queued_at);
