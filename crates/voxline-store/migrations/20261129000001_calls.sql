-- One row per call attempt that reached routing (CDR). Written when the
-- INVITE arrives and completed when the call ends, so a crash leaves a row.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    call_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    from_uri TEXT NOT NULL,
    to_uri TEXT NOT NULL,
    source_addr TEXT,
    trunk TEXT,
    route TEXT,
    handler TEXT,
    codec TEXT,
    status TEXT NOT NULL,
    invite_at BIGINT NOT NULL,
    answer_at BIGINT,
    end_at BIGINT,
    end_reason TEXT,
    hangup_by TEXT,
    sip_status INTEGER,
    recording_path TEXT,
    packets_sent BIGINT,
    packets_received BIGINT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);
CREATE INDEX IF NOT EXISTS calls_invite_at ON calls (invite_at);
