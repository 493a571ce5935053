//! Transcribing a recorded channel after the call, at batch speed: Silero
//! VAD finds where someone speaks, each stretch of speech is decoded whole
//! by Whisper (with word times), and the silence between is never decoded.
//! For recordings of human agents' calls, one channel per speaker.

use crate::segmenter::{Segmenter, SegmenterConfig, VadEvent};
use crate::stream::{audio_ctx_for, cut_repetition, max_tokens_for, MIN_WINDOW_MS};
use crate::vad::{SileroVad, VAD_WINDOW};
use crate::whisper::{DecodeOptions, WhisperModel, Word};
use crate::{AsrError, ASR_RATE};
use whisper_rs::WhisperState;

/// One stretch of speech on a channel and what was said in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// When the speech started, ms from the recording's start.
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
    /// The words, as one text.
    pub text: String,
    /// Each word with its times (ms from the recording's start).
    pub words: Vec<Word>,
}

/// How a channel is cut into utterances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConfig {
    /// Speech start and end from the VAD; a pause longer than the
    /// hang-over ends an utterance.
    pub segmenter: SegmenterConfig,
    /// Audio kept before and after each stretch of speech, ms.
    pub pad_ms: u32,
    /// A stretch of speech longer than this is cut (Whisper hears 30 s at
    /// most), ms.
    pub max_utterance_ms: u32,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            segmenter: SegmenterConfig {
                hangover_ms: 700,
                ..SegmenterConfig::default()
            },
            pad_ms: 200,
            max_utterance_ms: 25_000,
        }
    }
}

/// Transcribes channels one after another with one Whisper state and one
/// VAD.
pub struct ChannelTranscriber<'m> {
    whisper: &'m WhisperModel,
    state: WhisperState,
    vad: SileroVad,
    decode: DecodeOptions,
    cfg: BatchConfig,
}

impl std::fmt::Debug for ChannelTranscriber<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelTranscriber").field("cfg", &self.cfg).finish()
    }
}

impl<'m> ChannelTranscriber<'m> {
    /// A transcriber decoding with `decode` (word times are always on).
    pub fn new(
        whisper: &'m WhisperModel,
        vad: SileroVad,
        decode: DecodeOptions,
        cfg: BatchConfig,
    ) -> Result<ChannelTranscriber<'m>, AsrError> {
        Ok(ChannelTranscriber {
            state: whisper.state()?,
            whisper,
            vad,
            decode: DecodeOptions {
                word_times: true,
                ..decode
            },
            cfg,
        })
    }

    /// Where speech is on a channel (16 kHz, -1..1): (start, end) in ms.
    pub fn speech(&mut self, samples: &[f32]) -> Result<Vec<(u64, u64)>, AsrError> {
        self.vad.reset();
        let mut seg = Segmenter::new(self.cfg.segmenter);
        let window_ms = (VAD_WINDOW as u64 * 1000 / u64::from(ASR_RATE)) as u32;
        let mut spans = Vec::new();
        let mut open: Option<u64> = None;
        for window in samples.chunks_exact(VAD_WINDOW) {
            let p = self.vad.process(window)?;
            match seg.push(p, window_ms) {
                Some(VadEvent::SpeechStart { at_ms }) => open = Some(at_ms),
                Some(VadEvent::SpeechEnd { at_ms, .. }) => {
                    if let Some(s) = open.take() {
                        spans.push((s, at_ms));
                    }
                }
                None => {}
            }
            // A stretch too long for one decode is cut where it stands.
            if let Some(s) = open.filter(|&s| seg.now_ms() >= s + u64::from(self.cfg.max_utterance_ms)) {
                spans.push((s, seg.now_ms()));
                open = Some(seg.now_ms());
            }
        }
        if let Some(s) = open {
            spans.push((s, seg.now_ms()));
        }
        Ok(spans)
    }

    /// Transcribes one channel (16 kHz, -1..1): its utterances in order;
    /// `done` hears how many ms of the channel are done after each one.
    pub fn transcribe(&mut self, samples: &[f32], done: &mut dyn FnMut(u64)) -> Result<Vec<Utterance>, AsrError> {
        let per_ms = u64::from(ASR_RATE) / 1000;
        let pad = u64::from(self.cfg.pad_ms);
        let mut out = Vec::new();
        for (start, end) in self.speech(samples)? {
            let from = start.saturating_sub(pad);
            let to = (end + pad).min(samples.len() as u64 / per_ms);
            let clip = &samples[(from * per_ms) as usize..(to * per_ms) as usize];
            let opts = DecodeOptions {
                audio_ctx: Some(audio_ctx_for(clip.len(), MIN_WINDOW_MS)),
                max_tokens: Some(max_tokens_for(clip.len())),
                ..self.decode.clone()
            };
            let heard = self.whisper.transcribe(&mut self.state, clip, &opts)?;
            done(end);
            let text = cut_repetition(&heard.text);
            if !text.chars().any(char::is_alphanumeric) || is_non_speech(&text) {
                continue;
            }
            let kept = text.split_whitespace().count();
            let words = heard
                .words
                .into_iter()
                .take(kept)
                .map(|w| Word {
                    start_ms: (from + w.start_ms).clamp(start, end),
                    end_ms: (from + w.end_ms).clamp(start, end),
                    text: w.text,
                })
                .collect();
            out.push(Utterance {
                start_ms: start,
                end_ms: end,
                text,
                words,
            });
        }
        done(samples.len() as u64 / per_ms);
        Ok(out)
    }
}

/// Whisper's own notes for audio without words ("[BLANK_AUDIO]",
/// "(music)").
fn is_non_speech(text: &str) -> bool {
    let t = text.trim();
    (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('(') && t.ends_with(')'))
}

#[cfg(test)]
mod tests {
    use super::is_non_speech;

    #[test]
    fn whisper_notes_are_not_speech() {
        assert!(is_non_speech("[BLANK_AUDIO]"));
        assert!(is_non_speech(" (music) "));
        assert!(!is_non_speech("My card [the old one] is lost."));
    }
}
