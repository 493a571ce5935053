-- What RTCP said about voxline's stream: round-trip time, and the loss and
-- jitter the far end reported (NULL when it sent no RTCP).
ALTER TABLE calls ADD COLUMN rtt_ms DOUBLE PRECISION;
ALTER TABLE calls ADD COLUMN remote_lost BIGINT;
ALTER TABLE calls ADD COLUMN remote_jitter_ms DOUBLE PRECISION;
