-- Quality inspection of finished calls (issue 23): a row is queued when an
-- agent call on a route with a scorecard ends (one INSERT, never in the
-- call's media path), leased by one node's analysis worker, then holds the
-- score. `result` is the whole score as JSON (items, verdicts, evidence).
CREATE TABLE call_analysis (
    record_id TEXT PRIMARY KEY,
    -- The scorecard file (a pack's qa.toml) the call is scored against.
    scorecard TEXT NOT NULL,
    -- pending, running, done or failed (given up).
    state TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_node TEXT,
    lease_until BIGINT,
    analyzed_at BIGINT,
    score DOUBLE PRECISION,
    -- 1 passed, 0 failed (NULL until done).
    passed INTEGER,
    result TEXT,
    error TEXT
);
CREATE INDEX call_analysis_due ON call_analysis (state, queued_at);
CREATE INDEX call_analysis_done ON call_analysis (analyzed_at);
-- Each item's verdict, for listing calls by a failed item.
CREATE TABLE call_analysis_items (
    record_id TEXT NOT NULL,
    item TEXT NOT NULL,
    verdict TEXT NOT NULL,
    critical INTEGER NOT NULL,
    PRIMARY KEY (record_id, item)
);
CREATE INDEX call_analysis_items_by_verdict ON call_analysis_items (item, verdict);
