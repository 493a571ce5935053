-- The agent's turns: for each caller turn it answered, when each stage of
-- the reply happened, in milliseconds after the caller's last voiced audio.
-- Written when the reply has played out, was cut by a barge-in, or the call
-- ended (so a crash keeps every turn finished so far).
CREATE TABLE agent_turns (
    record_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    caller_end_ms BIGINT NOT NULL,
    caller_text TEXT NOT NULL,
    intent TEXT NOT NULL,
    started_on TEXT NOT NULL,
    end_declared_ms DOUBLE PRECISION,
    asr_final_ms DOUBLE PRECISION,
    llm_first_token_ms DOUBLE PRECISION,
    first_phrase_ms DOUBLE PRECISION,
    tts_first_audio_ms DOUBLE PRECISION,
    first_rtp_ms DOUBLE PRECISION,
    barge_in_onset_ms DOUBLE PRECISION,
    barge_in_stop_ms DOUBLE PRECISION,
    PRIMARY KEY (record_id, seq)
);
