-- Outbound campaigns (issue 21): the campaign, its contacts with their
-- state, and do-not-call numbers (scope '' = every campaign, else a
-- campaign's id). Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    route TEXT NOT NULL,
    settings TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per contact; `number` in E.164, unique within its campaign.
-- `next_at`: when it may be dialled next (ms), `disposition`: its final
-- outcome once it has one.
CREATE TABLE campaign_contacts (
    campaign_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    number TEXT NOT NULL,
    tz TEXT NOT NULL,
    variables TEXT NOT NULL,
    source_line BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at BIGINT NOT NULL,
    disposition TEXT,
    sip_status INTEGER,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, seq),
    UNIQUE (campaign_id, number)
);
CREATE INDEX campaign_contacts_due ON campaign_contacts (campaign_id, state, next_at);

CREATE TABLE dnc_numbers (
    scope TEXT NOT NULL,
    number TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (scope, number)
);
