-- One row per server node, touched every few seconds while it runs. After a
-- crash, calls the node left open are closed at its last heartbeat.
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);
