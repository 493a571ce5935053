-- What was said on a call, one row per utterance, written as the call goes
-- (so a crash keeps every line recognised so far). Times are milliseconds
-- of call audio from the answer.
CREATE TABLE transcript_lines (
    record_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    speaker TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    text TEXT NOT NULL,
    asr_latency_ms DOUBLE PRECISION,
    PRIMARY KEY (record_id, seq)
);
