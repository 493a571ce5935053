-- A finished call's summary (issue 23): a short account, the caller's
-- intent, the outcome, follow-ups and the pack's fields, as JSON; written
-- with the score by the analysis worker.
ALTER TABLE call_analysis ADD COLUMN summary TEXT;
