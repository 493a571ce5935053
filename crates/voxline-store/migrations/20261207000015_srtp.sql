-- The SRTP suite a call's media was encrypted with (RTP/SAVP keyed by SDES),
-- NULL for plain RTP: operators must be able to show which calls were
-- protected on the wire.
ALTER TABLE calls ADD COLUMN srtp TEXT;
