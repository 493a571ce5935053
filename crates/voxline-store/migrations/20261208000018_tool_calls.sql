-- The business tools an agent called on a call, in order, written as each
-- one answers (or fails, or the call ends first), so a call's page shows
-- what was done for the caller. Arguments are JSON; digits the pack keeps
-- out of transcripts are stored as "(4 digits)", never in clear.
CREATE TABLE tool_calls (
    record_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    ok BIGINT NOT NULL,
    error TEXT,
    at_ms BIGINT NOT NULL,
    took_ms BIGINT,
    PRIMARY KEY (record_id, seq)
);
