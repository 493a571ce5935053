//! The streaming recogniser of one call: 16 kHz audio in, speech events and
//! hypotheses out.
//!
//! Silero VAD marks speech start and end (see [`crate::segmenter`]). While
//! the caller talks, the growing utterance is re-decoded about every
//! `partial_interval_ms` for a partial hypothesis (short encoder window, no
//! temperature fallback, skipped when the pool is busy; started only on a
//! voiced window, never in a pause: see [`partial_due`]). The final
//! hypothesis is started *before* the end of speech is declared: once the
//! caller has been silent for `tail_ms` the utterance (with that much
//! trailing silence) goes to the pool, and if they stay silent until the
//! hang-over ends, that decode is the final one; if they speak again it is
//! cancelled. So the hang-over (500 ms by default) hides the decode time.
//! Finals come out in the order the caller spoke, whichever decode ends
//! first: a later utterance's final waits for every earlier one.
//! Closing or dropping the recogniser cancels every decode it started.

use crate::pool::{AsrPool, Transcript};
use crate::segmenter::{Segmenter, SegmenterConfig, VadEvent};
use crate::vad::{SileroVad, VAD_WINDOW};
use crate::whisper::DecodeOptions;
use crate::AsrError;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Samples per millisecond at 16 kHz.
const PER_MS: u64 = 16;

/// Settings of the streaming recogniser.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Speech start/end detection.
    pub segmenter: SegmenterConfig,
    /// Re-decode the growing utterance this often for a partial (0: no partials).
    pub partial_interval_ms: u32,
    /// Audio kept before the detected speech start (the first syllable's onset).
    pub preroll_ms: u32,
    /// Silence after the last speech kept at the end of the utterance; the
    /// final decode starts once the caller has been silent this long.
    pub tail_ms: u32,
    /// An utterance longer than this is cut and finalised (Whisper sees at
    /// most 30 s).
    pub max_utterance_ms: u32,
    /// Language, domain prompt and fallback for final decodes.
    pub decode: DecodeOptions,
    /// Decode with an encoder window fitted to the utterance instead of 30 s.
    pub fit_audio_ctx: bool,
    /// The shortest encoder window of a final decode, ms (see [`audio_ctx_for`]).
    pub min_window_ms: u32,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            segmenter: SegmenterConfig::default(),
            partial_interval_ms: 500,
            preroll_ms: 200,
            tail_ms: 200,
            max_utterance_ms: 20_000,
            decode: DecodeOptions {
                temperature_fallback: false,
                ..DecodeOptions::default()
            },
            fit_audio_ctx: true,
            min_window_ms: MIN_WINDOW_MS,
        }
    }
}

/// The default shortest encoder window of a final decode, ms (384 frames,
/// 7.7 s; decision 0030: as accurate as 10 s with the loop guard, a fifth
/// less decoding).
pub const MIN_WINDOW_MS: u32 = 7_680;

/// The encoder window (in 20 ms encoder frames, 1500 = 30 s) for `samples`
/// at 16 kHz: the audio plus 2.5 s — tiny.en falls into repetition loops
/// when the window ends just after the speech (at +1 s every other clip
/// looped) — but never under `min_window_ms`, rounded up to 64 frames.
pub fn audio_ctx_for(samples: usize, min_window_ms: u32) -> i32 {
    let frames = (samples.div_ceil(320) + 128).max(min_window_ms.div_ceil(20) as usize);
    (frames.div_ceil(64) * 64).min(1500) as i32
}

/// Whether a partial is due: partials are on (`configured_ms` > 0), the
/// caller is voicing now (`silence_ms` 0) and `interval_ms` passed since
/// the last one. Not in a silence, even one shorter than `tail_ms`: it may
/// be the end of the turn, whose early final would make the partial
/// pointless, and whisper.cpp only looks at an abort after the whole
/// encoder, so a cancelled partial still takes a core from the early final
/// (measured: the early final 100 ms later when a partial fell in the
/// caller's trailing silence, load-tests/RESULTS.md).
pub fn partial_due(silence_ms: u64, since_last_ms: u64, configured_ms: u32, interval_ms: u64) -> bool {
    configured_ms > 0 && silence_ms == 0 && since_last_ms >= interval_ms
}

/// The encoder window for a partial: the audio plus 1.3 s, no floor.
/// Cheaper (a 2 s partial costs a fifth of a final) at the price of
/// occasional repetition, which [`cut_repetition`] removes.
pub fn partial_audio_ctx_for(samples: usize) -> i32 {
    let frames = samples.div_ceil(320) + 64;
    (frames.div_ceil(64) * 64).min(1500) as i32
}

/// Cuts a decoding loop: when a run of 3 or more words is immediately
/// repeated (a run of 2 words: twice more), the text ends after its first
/// occurrence ("the hogs were fed. the hogs were fed." → "the hogs were
/// fed."). Genuine speech rarely repeats a whole phrase back to back;
/// Whisper stuck at the end of its window does. Runs of numbers are left
/// alone (digits read out can repeat).
pub fn cut_repetition(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let key = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    for end in 0..=keys.len() {
        // Does a run of k words ending at `end` repeat right after it?
        for k in 2..=end {
            let run = &keys[end - k..end];
            let repeats = if k == 2 { 2 } else { 1 };
            let looped = (1..=repeats).all(|r| keys.get(end + (r - 1) * k..end + r * k) == Some(run));
            let wordy = run.iter().any(|w| w.chars().any(char::is_alphabetic));
            if looped && wordy {
                return words[..end].join(" ");
            }
        }
    }
    text.to_string()
}

/// The token bound of a partial: 5 per second plus 6, enough for fast
/// speech, and a loop stops early (partials run at a small window, where
/// tiny.en loops often).
pub fn partial_max_tokens_for(samples: usize) -> i32 {
    (6 + samples.div_ceil(3_200)).min(440) as i32
}

/// A bound on the tokens of an utterance: 8 per second of audio (fast
/// speech makes ~5) plus 10; a decode that loops stops there.
pub fn max_tokens_for(samples: usize) -> i32 {
    (10 + samples.div_ceil(2_000)).min(440) as i32
}

/// What the recogniser reports, in stream time (ms of audio pushed).
#[derive(Debug, Clone, PartialEq)]
pub enum AsrEvent {
    /// The caller started speaking (the segmenter's start, before `min_speech_ms`).
    SpeechStart {
        /// Utterance number in this stream, from 1.
        utterance: u64,
        /// Stream time of the speech onset, ms.
        at_ms: u64,
    },
    /// A hypothesis of the utterance so far.
    Partial {
        /// Utterance number.
        utterance: u64,
        /// The text.
        text: String,
        /// Stream time of the last audio decoded, ms.
        upto_ms: u64,
    },
    /// The caller stopped speaking (declared after the hang-over).
    SpeechEnd {
        /// Utterance number.
        utterance: u64,
        /// End of the last speech window, ms.
        at_ms: u64,
        /// Speech length, ms.
        duration_ms: u64,
    },
    /// The final hypothesis of an utterance.
    Final {
        /// Utterance number.
        utterance: u64,
        /// The text.
        text: String,
        /// Wall time from the speech end being declared to this result
        /// (zero when the early decode had already finished).
        latency: Duration,
        /// Stream time from the end of the last speech window to the moment
        /// this text was ready (usually before the hang-over ends), ms.
        after_speech_ms: u64,
        /// Whether the utterance was cut at `max_utterance_ms` (more follows).
        cut: bool,
        /// Queue wait and decode time of the decode that produced it.
        cost: Transcript,
    },
    /// The early final's text, ready while the hang-over still runs: the
    /// final will be this text unless the caller speaks again (then a new
    /// `SpeechStart` comes first). Lets a consumer start its reply early.
    Tentative {
        /// Utterance number.
        utterance: u64,
        /// The text.
        text: String,
        /// How sure Whisper was of it.
        confidence: crate::Confidence,
    },
    /// The audio end-of-turn model's verdict on the utterance, heard once
    /// the caller fell silent (with the early final); only while they stay
    /// silent (a `SpeechStart` makes it out of date).
    TurnAudio {
        /// Utterance number.
        utterance: u64,
        /// Probability that the caller's turn is complete, 0..1.
        complete: f32,
        /// Features and inference, wall time.
        took: Duration,
    },
    /// Decoding an utterance failed; the text is lost.
    Failed {
        /// Utterance number.
        utterance: u64,
        /// Why.
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Partial,
    /// The early final, started once the caller fell silent.
    Early,
    Final,
}

/// A decode in flight.
struct Job {
    kind: Kind,
    utterance: u64,
    abort: Arc<AtomicBool>,
    /// Stream sample index where its audio ends.
    end: u64,
}

/// The early final of the current utterance.
struct Early {
    job: u64,
    end: u64,
    /// Its result and the stream time it came in (before the end of
    /// speech was declared).
    result: Option<(Result<Transcript, AsrError>, u64)>,
}

/// A final the caller waits for.
struct Awaited {
    /// The utterance it finalises.
    utterance: u64,
    declared: Instant,
    cut: bool,
    /// End of the last speech window, stream ms.
    speech_end_ms: u64,
}

type Done = (u64, Result<Transcript, AsrError>);

/// An audio end-of-turn verdict: the utterance, the sample its audio ends
/// at, the result.
type TurnDone = (u64, u64, Result<crate::TurnVerdict, AsrError>);

/// What a recogniser's decodes cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecognizerStats {
    /// Partial decodes that finished.
    pub partials: u64,
    /// Their decode time.
    pub partial_decode: Duration,
    /// Early finals started.
    pub early: u64,
    /// Early finals dropped because the caller spoke again.
    pub early_dropped: u64,
    /// Decode time of early finals that finished but were not used.
    pub early_wasted: Duration,
}

/// The recogniser of one audio stream (one call's caller side).
pub struct StreamingRecognizer {
    pool: AsrPool,
    vad: SileroVad,
    seg: Segmenter,
    cfg: StreamConfig,
    partial_opts: DecodeOptions,
    /// Recent audio: `audio[0]` is stream sample `audio_start`.
    audio: Vec<f32>,
    audio_start: u64,
    /// Next sample the VAD looks at.
    vad_pos: u64,
    /// The utterance in progress: number and first sample.
    utterance: u64,
    utt_start: u64,
    last_partial_end: u64,
    early: Option<Early>,
    jobs: HashMap<u64, Job>,
    next_job: u64,
    awaited: HashMap<u64, Awaited>,
    /// Finals (or failures) ready while an earlier utterance's final is
    /// still decoding, by utterance.
    held: BTreeMap<u64, AsrEvent>,
    events: VecDeque<AsrEvent>,
    stats: RecognizerStats,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// The audio end-of-turn model, when the configuration names one.
    turn_model: Option<Arc<crate::TurnModel>>,
    turn_tx: mpsc::UnboundedSender<TurnDone>,
    turn_rx: mpsc::UnboundedReceiver<TurnDone>,
}

impl std::fmt::Debug for StreamingRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingRecognizer")
            .field("utterance", &self.utterance)
            .field("jobs", &self.jobs.len())
            .finish()
    }
}

impl StreamingRecognizer {
    /// A recogniser for one stream, decoding on `pool`.
    pub fn new(pool: AsrPool, vad: SileroVad, cfg: StreamConfig) -> StreamingRecognizer {
        // Partials decode few tokens over a small window: one thread does
        // them faster than two (96 vs 167 ms mean on 2 cores, where the
        // threads' barriers cost more than the work) and leaves a core free.
        // They decode without the initial prompt: it made every decode
        // ~40 % dearer, and under load partials are most of the work, while
        // the words it steers matter in the final (decision 0035).
        let partial_opts = DecodeOptions {
            temperature_fallback: false,
            threads: 1,
            initial_prompt: None,
            ..cfg.decode.clone()
        };
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (turn_tx, turn_rx) = mpsc::unbounded_channel();
        StreamingRecognizer {
            pool,
            vad,
            seg: Segmenter::new(cfg.segmenter),
            cfg,
            partial_opts,
            audio: Vec::with_capacity(16_000 * 4),
            audio_start: 0,
            vad_pos: 0,
            utterance: 0,
            utt_start: 0,
            last_partial_end: 0,
            early: None,
            jobs: HashMap::new(),
            next_job: 0,
            awaited: HashMap::new(),
            held: BTreeMap::new(),
            events: VecDeque::new(),
            stats: RecognizerStats::default(),
            done_tx,
            done_rx,
            turn_model: None,
            turn_tx,
            turn_rx,
        }
    }

    /// Judges each utterance's end with the audio end-of-turn model too
    /// ([`AsrEvent::TurnAudio`], when the early final starts).
    pub fn set_turn_model(&mut self, model: Arc<crate::TurnModel>) {
        self.turn_model = Some(model);
    }

    /// The segmenter's state.
    pub fn segmenter(&self) -> &Segmenter {
        &self.seg
    }

    /// The segmenter (to read its state or change its hang-over).
    pub fn segmenter_mut(&mut self) -> &mut Segmenter {
        &mut self.seg
    }

    /// Stream time of the audio the VAD has seen, ms.
    pub fn now_ms(&self) -> u64 {
        self.vad_pos / PER_MS
    }

    /// Takes the next 16 kHz samples of the stream (any amount).
    pub fn push(&mut self, samples: &[i16]) -> Result<(), AsrError> {
        self.audio.extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
        let mut window = [0f32; VAD_WINDOW];
        while self.end() - self.vad_pos >= VAD_WINDOW as u64 {
            let at = self.index(self.vad_pos);
            window.copy_from_slice(&self.audio[at..at + VAD_WINDOW]);
            let prob = self.vad.process(&window)?;
            self.vad_pos += VAD_WINDOW as u64;
            let event = self.seg.push(prob, (VAD_WINDOW as u64 / PER_MS) as u32);
            self.after_window(event);
        }
        self.trim();
        Ok(())
    }

    /// The next event: those already noticed first, then decode results as
    /// they arrive. Cancel-safe (for `tokio::select!`). `None` never comes
    /// while the recogniser lives.
    pub async fn next_event(&mut self) -> Option<AsrEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            tokio::select! {
                done = self.done_rx.recv() => {
                    let (job, result) = done?;
                    self.finished(job, result);
                }
                Some((utterance, end, result)) = self.turn_rx.recv() => self.turn_judged(utterance, end, result),
            }
        }
    }

    /// An event if one is ready now, without waiting.
    pub fn try_event(&mut self) -> Option<AsrEvent> {
        while let Ok((job, result)) = self.done_rx.try_recv() {
            self.finished(job, result);
        }
        while let Ok((utterance, end, result)) = self.turn_rx.try_recv() {
            self.turn_judged(utterance, end, result);
        }
        self.events.pop_front()
    }

    /// Whether the audio end-of-turn model judges each utterance's end.
    pub fn hears_turn_audio(&self) -> bool {
        self.turn_model.is_some()
    }

    /// The audio end-of-turn model's verdict came back: reported while the
    /// caller is still silent after the audio it judged.
    fn turn_judged(&mut self, utterance: u64, end: u64, result: Result<crate::TurnVerdict, AsrError>) {
        let current = utterance == self.utterance && self.early.as_ref().is_some_and(|e| e.end == end);
        match result {
            Ok(v) if current => self.events.push_back(AsrEvent::TurnAudio {
                utterance,
                complete: v.complete,
                took: v.took,
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audio end-of-turn model failed"),
        }
    }

    /// Sends the utterance up to sample `end` to the audio end-of-turn model.
    fn judge_turn(&mut self, end: u64) {
        let Some(model) = self.turn_model.clone() else {
            return;
        };
        let Some(turn) = self.utterance_audio(end) else {
            return;
        };
        let audio: Arc<[f32]> = Arc::from(&turn[turn.len().saturating_sub(crate::turn_features::WINDOW_SAMPLES)..]);
        let tx = self.turn_tx.clone();
        let utterance = self.utterance;
        tokio::spawn(async move {
            let _ = tx.send((utterance, end, model.judge(audio).await));
        });
    }

    /// What the decodes cost so far.
    pub fn stats(&self) -> RecognizerStats {
        self.stats
    }

    /// Decodes still running or queued.
    pub fn pending(&self) -> usize {
        self.jobs.len()
    }

    /// Cancels every decode this recogniser started (the call ended).
    pub fn close(&mut self) {
        for job in self.jobs.values() {
            job.abort.store(true, Ordering::Release);
        }
    }

    fn end(&self) -> u64 {
        self.audio_start + self.audio.len() as u64
    }

    fn index(&self, sample: u64) -> usize {
        (sample.saturating_sub(self.audio_start)) as usize
    }

    /// Drops audio nobody can need any more: in speech, what precedes the
    /// utterance (decodes in flight hold their own copy); outside speech,
    /// all but what a coming speech start may reach back to.
    fn trim(&mut self) {
        let keep = u64::from(self.cfg.preroll_ms + self.cfg.segmenter.min_speech_ms + 1_000) * PER_MS;
        let from = if self.seg.speaking() {
            self.utt_start
        } else {
            self.vad_pos.saturating_sub(keep)
        };
        if from > self.audio_start + 16_000 {
            self.audio.drain(..self.index(from));
            self.audio_start = from;
        }
    }

    fn after_window(&mut self, event: Option<VadEvent>) {
        match event {
            Some(VadEvent::SpeechStart { at_ms }) => {
                self.utterance += 1;
                let onset = at_ms.saturating_sub(u64::from(self.cfg.preroll_ms)) * PER_MS;
                self.utt_start = onset.max(self.audio_start);
                self.last_partial_end = self.vad_pos;
                self.early = None;
                self.events.push_back(AsrEvent::SpeechStart {
                    utterance: self.utterance,
                    at_ms,
                });
            }
            Some(VadEvent::SpeechEnd { at_ms, duration_ms }) => {
                self.events.push_back(AsrEvent::SpeechEnd {
                    utterance: self.utterance,
                    at_ms,
                    duration_ms,
                });
                self.finish_utterance(at_ms, false);
                return;
            }
            None => {}
        }
        let Some(silence) = self.seg.silence_ms() else {
            return;
        };
        if silence == 0 {
            // Talking (again): an early final is out of date.
            if let Some(early) = self.early.take() {
                self.stats.early_dropped += 1;
                self.abort(early.job);
            }
            if self.vad_pos - self.utt_start >= u64::from(self.cfg.max_utterance_ms) * PER_MS {
                self.cut_utterance();
                return;
            }
        }
        if silence >= u64::from(self.cfg.tail_ms) && self.early.is_none() {
            let end = self.vad_pos;
            // The early final makes any partial of this utterance pointless.
            let partials: Vec<u64> = self
                .jobs
                .iter()
                .filter(|(_, j)| j.kind == Kind::Partial && j.utterance == self.utterance)
                .map(|(&id, _)| id)
                .collect();
            for id in partials {
                self.abort(id);
            }
            if let Some(job) = self.submit(Kind::Early, end) {
                self.stats.early += 1;
                self.early = Some(Early { job, end, result: None });
                self.judge_turn(end);
            }
        } else if partial_due(
            silence,
            (self.vad_pos - self.last_partial_end) / PER_MS,
            self.cfg.partial_interval_ms,
            self.partial_interval_ms(),
        ) && !self.jobs.values().any(|j| j.kind == Kind::Partial)
            && self.pool.idle()
        {
            self.last_partial_end = self.vad_pos;
            self.submit(Kind::Partial, self.vad_pos);
        }
    }

    /// How often a partial is decoded now: `partial_interval_ms`, times the
    /// calls sharing the CPU ([`AsrPool::sharing`]), so that together they
    /// decode partials about as often as one call alone. Partials are
    /// optional work; on a crowded machine they took the CPU the finals,
    /// the model and the voice needed.
    fn partial_interval_ms(&self) -> u64 {
        u64::from(self.cfg.partial_interval_ms) * self.pool.sharing().max(1) as u64
    }

    /// Speech ended at `at_ms`: the early final is the final if it covers
    /// the same audio, else a final decode starts now.
    fn finish_utterance(&mut self, at_ms: u64, cut: bool) {
        let declared = Instant::now();
        let end = ((at_ms + u64::from(self.cfg.tail_ms)) * PER_MS).min(self.vad_pos);
        match self.early.take() {
            Some(early) if early.end >= end => match early.result {
                Some((result, ready_ms)) => {
                    let after = ready_ms.saturating_sub(at_ms);
                    self.emit_final(self.utterance, result, Duration::ZERO, after, cut)
                }
                None => {
                    let speech_end_ms = at_ms;
                    self.awaited.insert(
                        early.job,
                        Awaited {
                            utterance: self.utterance,
                            declared,
                            cut,
                            speech_end_ms,
                        },
                    );
                }
            },
            other => {
                if let Some(early) = other {
                    self.abort(early.job);
                }
                if let Some(job) = self.submit(Kind::Final, end) {
                    let speech_end_ms = at_ms;
                    self.awaited.insert(
                        job,
                        Awaited {
                            utterance: self.utterance,
                            declared,
                            cut,
                            speech_end_ms,
                        },
                    );
                }
            }
        }
    }

    /// The utterance grew past `max_utterance_ms`: finalise what there is
    /// and go on with a new utterance from here.
    fn cut_utterance(&mut self) {
        let now = self.now_ms();
        self.finish_utterance(now.saturating_sub(u64::from(self.cfg.tail_ms)), true);
        self.utterance += 1;
        self.utt_start = self.vad_pos;
        self.last_partial_end = self.vad_pos;
    }

    /// The current utterance's audio up to stream sample `end` (None when empty).
    fn utterance_audio(&self, end: u64) -> Option<&[f32]> {
        let (from, to) = (self.index(self.utt_start), self.index(end).min(self.audio.len()));
        (to > from).then(|| &self.audio[from..to])
    }

    /// Sends the utterance up to sample `end` to the pool; the result comes
    /// back through `done_rx`. Partials are skipped when the pool is full.
    fn submit(&mut self, kind: Kind, end: u64) -> Option<u64> {
        let audio: Arc<[f32]> = Arc::from(self.utterance_audio(end)?);
        let mut opts = if kind == Kind::Partial {
            self.partial_opts.clone()
        } else {
            self.cfg.decode.clone()
        };
        if self.cfg.fit_audio_ctx {
            opts.audio_ctx = Some(if kind == Kind::Partial {
                partial_audio_ctx_for(audio.len())
            } else {
                audio_ctx_for(audio.len(), self.cfg.min_window_ms)
            });
        }
        opts.max_tokens = Some(if kind == Kind::Partial {
            partial_max_tokens_for(audio.len())
        } else {
            max_tokens_for(audio.len())
        });
        let opts = Arc::new(opts);
        let abort = Arc::new(AtomicBool::new(false));
        let id = self.next_job;
        self.next_job += 1;
        let tx = self.done_tx.clone();
        if kind == Kind::Partial {
            let fut = self.pool.try_transcribe(audio, opts, abort.clone()).ok()?;
            tokio::spawn(async move {
                let _ = tx.send((id, fut.await));
            });
        } else {
            let pool = self.pool.clone();
            let flag = abort.clone();
            tokio::spawn(async move {
                let _ = tx.send((id, pool.transcribe(audio, opts, flag).await));
            });
        }
        self.jobs.insert(
            id,
            Job {
                kind,
                utterance: self.utterance,
                abort,
                end,
            },
        );
        Some(id)
    }

    fn abort(&mut self, job: u64) {
        if let Some(j) = self.jobs.get(&job) {
            j.abort.store(true, Ordering::Release);
        }
    }

    /// A decode came back.
    fn finished(&mut self, id: u64, mut result: Result<Transcript, AsrError>) {
        if let Ok(t) = result.as_mut() {
            t.text = cut_repetition(&t.text);
        }
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        if matches!(result, Err(AsrError::Aborted)) && !self.awaited.contains_key(&id) {
            return;
        }
        if let Some(wait) = self.awaited.remove(&id) {
            let after = self.now_ms().saturating_sub(wait.speech_end_ms);
            self.emit_final(job.utterance, result, wait.declared.elapsed(), after, wait.cut);
            return;
        }
        match job.kind {
            Kind::Partial => {
                if let Ok(t) = &result {
                    self.stats.partials += 1;
                    self.stats.partial_decode += t.decode;
                }
                let current = job.utterance == self.utterance && self.seg.speaking();
                if let (true, Ok(t)) = (current, result) {
                    if !t.text.is_empty() {
                        self.events.push_back(AsrEvent::Partial {
                            utterance: job.utterance,
                            text: t.text,
                            upto_ms: job.end / PER_MS,
                        });
                    }
                }
            }
            Kind::Early => {
                // A reply started early must not overtake an earlier
                // utterance still being decoded.
                let first_in_line = self.oldest_awaited().is_none_or(|u| u >= self.utterance);
                match self.early.as_mut().filter(|e| e.job == id) {
                    Some(early) => {
                        if let (Ok(t), true) = (&result, first_in_line) {
                            let text = t.text.trim();
                            if !text.is_empty() {
                                self.events.push_back(AsrEvent::Tentative {
                                    utterance: self.utterance,
                                    text: text.to_string(),
                                    confidence: t.confidence,
                                });
                            }
                        }
                        early.result = Some((result, self.vad_pos / PER_MS));
                    }
                    None => {
                        if let Ok(t) = &result {
                            self.stats.early_wasted += t.decode;
                        }
                    }
                }
            }
            Kind::Final => {}
        }
    }

    fn emit_final(
        &mut self,
        utterance: u64,
        result: Result<Transcript, AsrError>,
        latency: Duration,
        after_speech_ms: u64,
        cut: bool,
    ) {
        let event = match result {
            Ok(cost) => AsrEvent::Final {
                utterance,
                text: cost.text.clone(),
                latency,
                after_speech_ms,
                cut,
                cost,
            },
            Err(e) => AsrEvent::Failed {
                utterance,
                error: e.to_string(),
            },
        };
        self.held.insert(utterance, event);
        let oldest = self.oldest_awaited();
        while let Some(entry) = self.held.first_entry() {
            if oldest.is_some_and(|u| u < *entry.key()) {
                break;
            }
            self.events.push_back(entry.remove());
        }
    }

    /// The earliest utterance whose final is still decoding.
    fn oldest_awaited(&self) -> Option<u64> {
        self.awaited.values().map(|w| w.utterance).min()
    }
}

impl Drop for StreamingRecognizer {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_is_started_only_while_the_caller_is_voicing() {
        // Voicing, the interval passed: due.
        assert!(partial_due(0, 512, 500, 500));
        // Too soon after the last one.
        assert!(!partial_due(0, 480, 500, 500));
        // A silence shorter than the tail (200 ms) may be the turn's end.
        for silence in [32, 96, 192] {
            assert!(!partial_due(silence, 512, 500, 500), "{silence} ms of silence");
        }
        // Partials off.
        assert!(!partial_due(0, 10_000, 0, 0));
        // A crowded pool stretches the interval.
        assert!(!partial_due(0, 512, 500, 1000));
    }

    #[test]
    fn a_decoding_loop_is_cut_after_its_first_round() {
        assert_eq!(
            cut_repetition("The hogs were fed. The hogs were fed. The hogs were"),
            "The hogs were fed."
        );
        assert_eq!(cut_repetition("Hello World. Hello World. Hello World."), "Hello World.");
        assert_eq!(cut_repetition("thank you, thank you"), "thank you, thank you");
        assert_eq!(cut_repetition("1 2 3 1 2 3 1 2 3"), "1 2 3 1 2 3 1 2 3");
        assert_eq!(cut_repetition("no no no, I said no"), "no no no, I said no");
        assert_eq!(
            cut_repetition("ask not what your country can do for you, ask what you can do for your country"),
            "ask not what your country can do for you, ask what you can do for your country"
        );
    }

    #[test]
    fn encoder_windows_cover_the_audio() {
        assert_eq!(audio_ctx_for(16_000, MIN_WINDOW_MS), 384);
        assert_eq!(audio_ctx_for(16_000, 10_240), 512);
        assert_eq!(audio_ctx_for(16_000, 5_120), 256);
        assert_eq!(audio_ctx_for(16_000 * 4, 5_120), 384);
        assert_eq!(audio_ctx_for(16_000 * 12, MIN_WINDOW_MS), 768);
        assert_eq!(audio_ctx_for(16_000 * 40, MIN_WINDOW_MS), 1500);
        assert_eq!(partial_audio_ctx_for(16_000), 128);
        assert!(max_tokens_for(16_000 * 30) <= 440);
    }
}
