-- Media quality of the caller's stream, copied from the call's media stats at the end.
ALTER TABLE calls ADD COLUMN packets_lost BIGINT;
ALTER TABLE calls ADD COLUMN jitter_ms DOUBLE PRECISION;
