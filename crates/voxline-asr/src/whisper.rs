//! One Whisper model shared by all calls, and decoding with a state of the
//! caller's own (a context is Send + Sync; each worker keeps a state).

use crate::AsrError;
use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

/// How to decode one utterance.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Language code ("en"); None lets a multilingual model detect it.
    pub language: Option<String>,
    /// Domain words that steer the decoder (Whisper's initial prompt).
    pub initial_prompt: Option<String>,
    /// Encoder window in frames (1500 = 30 s); shorter is faster for short audio.
    pub audio_ctx: Option<i32>,
    /// CPU threads for this decode.
    pub threads: i32,
    /// Stop after this many tokens (a decode stuck in a loop ends there).
    pub max_tokens: Option<i32>,
    /// Re-decode at a higher temperature when the greedy result looks
    /// broken (Whisper's fallback). Costs whole extra decodes; partials
    /// turn it off.
    pub temperature_fallback: bool,
    /// Each word's start and end (whisper.cpp's token timestamps), in
    /// [`Heard::words`]; for recordings transcribed after the call.
    pub word_times: bool,
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            language: Some("en".into()),
            initial_prompt: None,
            audio_ctx: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
            temperature_fallback: true,
            max_tokens: None,
            word_times: false,
        }
    }
}

/// How sure Whisper was of what it heard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// Mean log-probability of the text tokens (Whisper's `avg_logprob`;
    /// 0 is certain, below about -1 the decode is usually wrong).
    pub mean_logprob: f32,
    /// The least likely text token's probability.
    pub min_prob: f32,
    /// Whisper's probability that the audio held no speech at all.
    pub no_speech: f32,
    /// Text tokens decoded.
    pub tokens: u32,
}

impl Confidence {
    /// Text that was not recognised (typed, or from a test): no doubt.
    pub const CERTAIN: Confidence = Confidence {
        mean_logprob: 0.0,
        min_prob: 1.0,
        no_speech: 0.0,
        tokens: 0,
    };
}

impl Default for Confidence {
    fn default() -> Confidence {
        Confidence::CERTAIN
    }
}

/// When a decode is too unsure to act on: the caller is asked to say it
/// again rather than answered on words they may not have said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Doubt {
    /// A decode whose mean token log-probability is below this is doubtful.
    pub min_mean_logprob: f32,
    /// A decode Whisper thinks is more likely no speech than this is doubtful.
    pub max_no_speech: f32,
}

impl Default for Doubt {
    fn default() -> Doubt {
        Doubt {
            min_mean_logprob: -0.7,
            max_no_speech: 0.6,
        }
    }
}

impl Doubt {
    /// Whether Whisper was too unsure of this decode.
    pub fn doubts(&self, c: &Confidence) -> bool {
        c.tokens > 0 && (c.mean_logprob < self.min_mean_logprob || c.no_speech > self.max_no_speech)
    }
}

/// What Whisper heard in one decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    /// The text, trimmed.
    pub text: String,
    /// How sure the decoder was of it.
    pub confidence: Confidence,
    /// Each word with its times, when [`DecodeOptions::word_times`] asked.
    pub words: Vec<Word>,
}

/// A word and when it was said, ms from the start of the decoded audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as written (with its punctuation).
    pub text: String,
    /// When it started.
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
}

/// A loaded Whisper model.
pub struct WhisperModel {
    ctx: WhisperContext,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WhisperModel")
    }
}

impl WhisperModel {
    /// Loads a ggml Whisper model; the error names the file and why.
    pub fn load(path: &Path) -> Result<WhisperModel, AsrError> {
        let fail = |why: String| AsrError::Load {
            path: path.display().to_string(),
            why,
        };
        if !path.is_file() {
            return Err(fail(
                "no such file (voxline models fetch converts the default one)".into(),
            ));
        }
        // whisper.cpp's own log lines go to tracing, not stderr.
        whisper_rs::install_logging_hooks();
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| fail(format!("{e} (not a whisper.cpp ggml model?)")))?;
        Ok(WhisperModel { ctx })
    }

    /// A decoding state (one per worker; reuse it between utterances).
    pub fn state(&self) -> Result<WhisperState, AsrError> {
        self.ctx.create_state().map_err(|e| AsrError::Decode(e.to_string()))
    }

    /// Decodes 16 kHz mono samples (-1..1) into text, greedily, without
    /// timestamps.
    pub fn transcribe(
        &self,
        state: &mut WhisperState,
        samples: &[f32],
        opts: &DecodeOptions,
    ) -> Result<Heard, AsrError> {
        self.transcribe_abortable(state, samples, opts, &AtomicBool::new(false))
    }

    /// Like [`WhisperModel::transcribe`], but gives up (with
    /// [`AsrError::Aborted`]) soon after `abort` becomes true: whisper.cpp
    /// checks it between graph computations, so a running decode stops
    /// within one encoder or decoder step.
    pub fn transcribe_abortable(
        &self,
        state: &mut WhisperState,
        samples: &[f32],
        opts: &DecodeOptions,
        abort: &AtomicBool,
    ) -> Result<Heard, AsrError> {
        if abort.load(Ordering::Acquire) {
            return Err(AsrError::Aborted);
        }
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_language(opts.language.as_deref());
        params.set_n_threads(opts.threads.max(1));
        // Word times need the timestamp tokens decoded.
        params.set_no_timestamps(!opts.word_times);
        params.set_single_segment(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if let Some(ctx) = opts.audio_ctx {
            params.set_audio_ctx(ctx);
        }
        if let Some(p) = opts.initial_prompt.as_deref() {
            params.set_initial_prompt(p);
        }
        if let Some(n) = opts.max_tokens {
            params.set_max_tokens(n);
        }
        if !opts.temperature_fallback {
            params.set_temperature_inc(0.0);
        }
        params.set_token_timestamps(opts.word_times);
        // SAFETY: the callback only reads the AtomicBool behind the pointer,
        // which outlives `full` (the borrow of `abort` spans this call), and
        // `params` is consumed by `full`. (whisper-rs' `set_abort_callback_safe`
        // is not used: it casts its boxed `dyn FnMut` back to the concrete
        // closure type.)
        unsafe {
            params.set_abort_callback(Some(abort_requested));
            params.set_abort_callback_user_data(abort as *const AtomicBool as *mut c_void);
        }
        let result = state.full(params, samples);
        if abort.load(Ordering::Acquire) {
            return Err(AsrError::Aborted);
        }
        result.map_err(|e| AsrError::Decode(e.to_string()))?;
        let mut text = String::new();
        let mut words: Vec<Word> = Vec::new();
        let eot = self.ctx.token_eot();
        let (mut logprob_sum, mut min_prob, mut tokens, mut no_speech) = (0.0f32, 1.0f32, 0u32, 0.0f32);
        for i in 0..state.full_n_segments() {
            if let Some(seg) = state.get_segment(i) {
                let s = seg.to_str_lossy().map_err(|e| AsrError::Decode(e.to_string()))?;
                text.push_str(&s);
                no_speech = no_speech.max(seg.no_speech_probability());
                for t in 0..seg.n_tokens() {
                    // Special tokens (start, language, timestamps) come after
                    // the end-of-text token in the vocabulary.
                    let Some(token) = seg.get_token(t).filter(|t| t.token_id() < eot) else {
                        continue;
                    };
                    if opts.word_times {
                        let piece = token.to_str_lossy().map_err(|e| AsrError::Decode(e.to_string()))?;
                        let data = token.token_data();
                        // Centiseconds from the start of the audio.
                        let (t0, t1) = (data.t0.max(0) as u64 * 10, data.t1.max(0) as u64 * 10);
                        match words.last_mut() {
                            // A piece without a leading space goes on the word before.
                            Some(w) if !piece.starts_with(' ') && !piece.trim().is_empty() => {
                                w.text.push_str(&piece);
                                w.end_ms = w.end_ms.max(t1);
                            }
                            _ if !piece.trim().is_empty() => words.push(Word {
                                text: piece.trim().to_string(),
                                start_ms: t0,
                                end_ms: t1.max(t0),
                            }),
                            _ => {}
                        }
                    }
                    let p = token.token_probability().clamp(1e-6, 1.0);
                    logprob_sum += p.ln();
                    min_prob = min_prob.min(p);
                    tokens += 1;
                }
            }
        }
        let confidence = Confidence {
            mean_logprob: if tokens == 0 { 0.0 } else { logprob_sum / tokens as f32 },
            min_prob,
            no_speech,
            tokens,
        };
        Ok(Heard {
            text: text.trim().to_string(),
            confidence,
            words,
        })
    }
}

/// whisper.cpp's abort callback: true once the flag behind `data` is set.
unsafe extern "C" fn abort_requested(data: *mut c_void) -> bool {
    // SAFETY: `data` is the `&AtomicBool` given in `transcribe_abortable`,
    // alive for the whole decode.
    unsafe { (*(data as *const AtomicBool)).load(Ordering::Acquire) }
}
