//! One caller turn's stage times, collected while the agent replies: the
//! caller's last voiced audio, the declared end of speech, the final
//! transcript, the model's first token, the first checked phrase, its
//! synthesised audio, the first RTP packet of the reply and a barge-in that
//! cut it. Logged and counted when the first audio is queued; stored with
//! the call record (and observed on `/metrics`) when the reply is over.
//!
//! Times are tokio's clock (the same as the system's monotonic clock on a
//! running server; virtual in tests that pause it).

use super::SessionObserver;
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;
use voxline_media::Playout;
use voxline_store::AgentTurn;

/// When the reply's own stages happened (stamped where they happen: the
/// generation and synthesis task).
#[derive(Debug, Clone, Copy)]
pub struct ReplyStages {
    /// The model's first token (none for a fixed line).
    pub llm_first_token: Option<Instant>,
    /// Prompt tokens the model read for the reply after it was asked.
    pub llm_prompt_read: Option<usize>,
    /// The first phrase was ready to synthesise.
    pub first_phrase: Instant,
    /// Its audio was synthesised.
    pub audio_ready: Instant,
}

/// Stage times of one caller turn.
#[derive(Debug, Clone, Default)]
pub struct TurnTimes {
    /// The caller's last voiced audio (the VAD's end of speech, on the stream clock).
    pub caller_end: Option<Instant>,
    /// The same, ms of call audio.
    pub caller_end_ms: u64,
    /// When the recogniser declared the end of speech.
    pub speech_end: Option<Instant>,
    /// The final transcript.
    pub asr_final: Option<Instant>,
    /// The reply's model, phrase and synthesis stages, from its first audio.
    pub reply: Option<ReplyStages>,
    /// The first phrase's audio queued for playout.
    pub first_audio: Option<Instant>,
    /// Its playout mark (when its first packet went out is asked with it).
    pub first_audio_mark: Option<u64>,
    /// The caller's onset and the playout cleared, when a barge-in cut the reply.
    pub barge_in: Option<(Instant, Instant)>,
    /// The final transcript's text.
    pub text: String,
    /// How the turn was routed (`Intent::name`).
    pub intent: String,
    /// The reply was started on the early final.
    pub early: bool,
}

impl TurnTimes {
    /// The recogniser's end of speech: the last voiced audio was at stream
    /// `at_ms`, the stream is at `now_ms`.
    pub fn caller_ended(&mut self, at_ms: u64, now_ms: u64) {
        let now = Instant::now();
        self.speech_end = Some(now);
        self.caller_end = Some(
            now.checked_sub(Duration::from_millis(now_ms.saturating_sub(at_ms)))
                .unwrap_or(now),
        );
        self.caller_end_ms = at_ms;
    }

    /// The reply's first audio was queued with playout `mark`: logs the
    /// turn and counts it.
    pub fn first_audio_queued(&mut self, stages: ReplyStages, mark: Option<u64>, observer: &dyn SessionObserver) {
        if self.first_audio.is_some() {
            return;
        }
        let audio = Instant::now();
        self.first_audio = Some(audio);
        self.reply = Some(stages);
        self.first_audio_mark = mark;
        let Some(fin) = self.asr_final else {
            return;
        };
        observer.first_audio(
            audio.saturating_duration_since(fin),
            self.speech_end.map(|e| audio.saturating_duration_since(e)),
        );
        let ms = |d: Duration| d.as_millis() as u64;
        info!(
            speech_end_to_first_audio_ms = self.speech_end.map(|e| ms(audio.saturating_duration_since(e))),
            final_to_first_audio_ms = ms(audio.saturating_duration_since(fin)),
            speech_end_to_final_ms = self.speech_end.map(|e| ms(fin.saturating_duration_since(e))),
            llm_first_token_after_final_ms = stages.llm_first_token.map(|t| ms(t.saturating_duration_since(fin))),
            llm_prompt_read = stages.llm_prompt_read,
            early_final = self.early,
            "turn: first reply audio queued"
        );
    }

    /// The turn's row for the store, once its reply is over; `playout`
    /// tells when its first packet went out. Observes the stages.
    pub fn record(&self, seq: i64, playout: &dyn Playout, observer: &dyn SessionObserver) -> Option<AgentTurn> {
        self.asr_final?;
        let base = self.caller_end.or(self.speech_end).or(self.asr_final)?;
        let rel = |t: Option<Instant>| {
            t.map(|t| {
                let ms = match t.checked_duration_since(base) {
                    Some(d) => d.as_secs_f64() * 1e3,
                    None => -(base.saturating_duration_since(t).as_secs_f64() * 1e3),
                };
                (ms * 10.0).round() / 10.0
            })
        };
        // When the playout took the reply's first sample (its packet is
        // sent in the same media-clock slot); none if it never played.
        let first_rtp = self
            .first_audio_mark
            .and_then(|m| playout.started_at(m))
            .map(Instant::from_std);
        let turn = AgentTurn {
            seq,
            caller_end_ms: self.caller_end_ms as i64,
            caller_text: self.text.clone(),
            intent: self.intent.clone(),
            started_on: if self.early { "early_final" } else { "final" }.into(),
            end_declared_ms: rel(self.speech_end),
            asr_final_ms: rel(self.asr_final),
            llm_first_token_ms: rel(self.reply.and_then(|r| r.llm_first_token)),
            llm_prompt_read: self.reply.and_then(|r| r.llm_prompt_read).map(|n| n as i64),
            first_phrase_ms: rel(self.reply.map(|r| r.first_phrase)),
            tts_first_audio_ms: rel(self.reply.map(|r| r.audio_ready)),
            first_rtp_ms: rel(first_rtp),
            barge_in_onset_ms: rel(self.barge_in.map(|b| b.0)),
            barge_in_stop_ms: rel(self.barge_in.map(|b| b.1)),
        };
        for (stage, ms) in [
            ("end_declared", turn.end_declared_ms),
            ("asr_final", turn.asr_final_ms),
            ("llm_first_token", turn.llm_first_token_ms),
            ("first_phrase", turn.first_phrase_ms),
            ("tts_first_audio", turn.tts_first_audio_ms),
            ("first_rtp", turn.first_rtp_ms),
        ] {
            if let Some(ms) = ms {
                observer.stage(stage, Duration::from_secs_f64((ms / 1e3).max(0.0)));
            }
        }
        Some(turn)
    }
}
