-- The dialer (issue 21): a call's outcome as its conversation gave it and
-- who answered it (person or machine), the
-- lease a node holds on a contact it dials, and every attempt, written
-- before its INVITE leaves. Portable SQL: the same file runs on SQLite and
-- PostgreSQL.
ALTER TABLE calls ADD COLUMN outcome TEXT;
-- Answering-machine detection on an outbound call: "human: why" or
-- "machine: why", and when it was decided (ms after the answer).
ALTER TABLE calls ADD COLUMN amd TEXT;
ALTER TABLE calls ADD COLUMN amd_ms BIGINT;

ALTER TABLE campaign_contacts ADD COLUMN lease_node TEXT;
ALTER TABLE campaign_contacts ADD COLUMN lease_until BIGINT;
ALTER TABLE campaign_contacts ADD COLUMN last_result TEXT;

-- `result`: how the attempt ended (answered, busy, no_answer, rejected,
-- failed, interrupted…), NULL while it is under way.
CREATE TABLE campaign_attempts (
    campaign_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    node TEXT NOT NULL,
    number TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    result TEXT,
    sip_status INTEGER,
    outcome TEXT,
    PRIMARY KEY (campaign_id, seq, attempt)
);
CREATE INDEX campaign_attempts_call ON campaign_attempts (call_id);
