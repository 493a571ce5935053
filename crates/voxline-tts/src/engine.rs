//! Streaming synthesis: worker threads (each with its own voice session)
//! turn phrases into audio; a reply's text arrives in pieces, is cut into
//! phrases, and its audio comes out phrase by phrase in order as soon as
//! each is ready. Cancelling a reply drops its queued phrases and any audio
//! not yet handed out. Fixed lines are synthesised once and pinned.

use crate::voice::PiperVoice;
use crate::TtsError;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use voxline_text::phrases::{PhraseSplitter, SplitterConfig};
use voxline_text::spoken::normalize;

/// Size of the synthesis pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtsConfig {
    /// Worker threads, each with its own voice session.
    pub workers: usize,
    /// ONNX Runtime threads per worker.
    pub threads_per_worker: usize,
    /// Phrase sizes.
    pub splitter: SplitterConfig,
}

impl Default for TtsConfig {
    fn default() -> TtsConfig {
        TtsConfig {
            workers: 1,
            threads_per_worker: std::thread::available_parallelism().map_or(1, |n| n.get()),
            splitter: SplitterConfig::default(),
        }
    }
}

/// Audio of one phrase.
#[derive(Debug, Clone)]
pub struct AudioChunk {
    /// The phrase as written.
    pub text: String,
    /// 16-bit samples at the voice's rate.
    pub samples: Arc<[i16]>,
    /// Time from the phrase's submission to its audio.
    pub latency: Duration,
}

/// Where a phrase's audio (or why there is none) arrives.
type AudioReply = oneshot::Receiver<Result<Vec<i16>, TtsError>>;

struct Job {
    text: String,
    cancel: Arc<AtomicBool>,
    submitted: Instant,
    reply: oneshot::Sender<Result<Vec<i16>, TtsError>>,
}

/// The synthesis engine (cheap to clone).
#[derive(Clone)]
pub struct TtsEngine {
    tx: flume::Sender<Job>,
    sample_rate: u32,
    lang: String,
    config: TtsConfig,
    /// The audio of pinned fixed lines, by text.
    cache: Arc<Mutex<HashMap<String, Arc<[i16]>>>>,
    crowd: Arc<AtomicUsize>,
}

impl std::fmt::Debug for TtsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsEngine").field("config", &self.config).finish()
    }
}

impl TtsEngine {
    /// Loads the voice once per worker (twice with several threads per
    /// worker: a one-thread session for a crowded machine, see
    /// [`TtsEngine::crowd`]) and starts the workers.
    pub fn start(runtime_lib: &Path, model: &Path, config: TtsConfig) -> Result<TtsEngine, TtsError> {
        let (tx, rx) = flume::unbounded::<Job>();
        let mut sample_rate = 0;
        let mut lang = String::new();
        let crowd = Arc::new(AtomicUsize::new(0));
        let load = |threads: usize| -> Result<PiperVoice, TtsError> {
            let mut voice = PiperVoice::load(runtime_lib, model, threads)?;
            // Warm the session: the first run pays for allocations.
            voice.synthesize("Hello.")?;
            Ok(voice)
        };
        for n in 0..config.workers.max(1) {
            let mut voice = load(config.threads_per_worker)?;
            let mut lean = if config.threads_per_worker > 1 {
                Some(load(1)?)
            } else {
                None
            };
            sample_rate = voice.sample_rate();
            lang = voice.config().espeak.voice.clone();
            let (rx, crowd) = (rx.clone(), crowd.clone());
            std::thread::Builder::new()
                .name(format!("tts-worker-{n}"))
                .spawn(move || work(&mut voice, lean.as_mut(), &rx, &crowd))
                .map_err(|e| TtsError::Synthesis(format!("starting a synthesis thread: {e}")))?;
        }
        Ok(TtsEngine {
            tx,
            sample_rate,
            lang,
            config,
            cache: Arc::default(),
            crowd,
        })
    }

    /// How many calls share the CPU now (their handlers count themselves
    /// in). Above one, phrases are synthesised on one thread: ONNX
    /// Runtime's threads spin while they wait, and on a busy machine the
    /// spinning takes the cores the other engines need.
    pub fn crowd(&self) -> Arc<AtomicUsize> {
        self.crowd.clone()
    }

    /// Output sample rate of the voice, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Synthesises one phrase (normalised for the phone first).
    pub async fn synthesize(&self, text: &str) -> Result<Vec<i16>, TtsError> {
        self.submit(text, Arc::new(AtomicBool::new(false)))?
            .await
            .map_err(|_| TtsError::Stopped)?
    }

    /// Synthesises a fixed line (a greeting, a tool's prompt) and keeps its
    /// audio for the engine's life, so [`TtsEngine::line`] plays it at once.
    pub async fn pin(&self, text: &str) -> Result<Arc<[i16]>, TtsError> {
        if let Some(a) = self.pinned(text) {
            return Ok(a);
        }
        let audio: Arc<[i16]> = self.synthesize(text).await?.into();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(text.to_string(), audio.clone());
        }
        Ok(audio)
    }

    /// A whole line's audio: the pinned audio of a fixed line, else a fresh
    /// synthesis that is not kept (lines with a caller's data, such as a
    /// balance, must not pile up in memory).
    pub async fn line(&self, text: &str) -> Result<Arc<[i16]>, TtsError> {
        match self.pinned(text) {
            Some(a) => Ok(a),
            None => Ok(self.synthesize(text).await?.into()),
        }
    }

    fn pinned(&self, text: &str) -> Option<Arc<[i16]>> {
        self.cache.lock().ok().and_then(|c| c.get(text).cloned())
    }

    /// A stream for one reply.
    pub fn stream(&self) -> TtsStream {
        TtsStream {
            engine: self.clone(),
            splitter: PhraseSplitter::new(self.config.splitter),
            pending: VecDeque::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            finished: false,
        }
    }

    fn submit(&self, text: &str, cancel: Arc<AtomicBool>) -> Result<AudioReply, TtsError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                text: normalize(text, &self.lang),
                cancel,
                submitted: Instant::now(),
                reply,
            })
            .map_err(|_| TtsError::Stopped)?;
        Ok(rx)
    }
}

/// One worker: synthesise phrases until the engine is dropped, on `lean`
/// (one thread) while more than one call shares the CPU.
fn work(voice: &mut PiperVoice, mut lean: Option<&mut PiperVoice>, rx: &flume::Receiver<Job>, crowd: &AtomicUsize) {
    while let Ok(job) = rx.recv() {
        if job.cancel.load(Ordering::Acquire) || job.reply.is_closed() {
            let _ = job.reply.send(Err(TtsError::Cancelled));
            continue;
        }
        let wait = job.submitted.elapsed();
        let result = match lean.as_deref_mut() {
            Some(one) if crowd.load(Ordering::Relaxed) > 1 => one.synthesize(&job.text),
            _ => voice.synthesize(&job.text),
        };
        tracing::trace!(
            wait_ms = wait.as_millis() as u64,
            chars = job.text.len(),
            "phrase synthesised"
        );
        // Audio finished after a cancel is not handed out.
        let result = if job.cancel.load(Ordering::Acquire) {
            Err(TtsError::Cancelled)
        } else {
            result
        };
        let _ = job.reply.send(result);
    }
}

/// The audio of one reply, phrase by phrase.
pub struct TtsStream {
    engine: TtsEngine,
    splitter: PhraseSplitter,
    /// Phrases submitted, in order: text, submission time, result.
    pending: VecDeque<(String, Instant, AudioReply)>,
    cancel: Arc<AtomicBool>,
    finished: bool,
}

impl std::fmt::Debug for TtsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsStream")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl TtsStream {
    /// Takes the next piece of the reply's text; complete phrases start
    /// synthesising at once. Returns the phrases submitted.
    pub fn push_text(&mut self, delta: &str) -> Result<Vec<String>, TtsError> {
        if self.cancel.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let phrases = self.splitter.push(delta);
        for p in &phrases {
            self.submit(p)?;
        }
        Ok(phrases)
    }

    /// The reply's text is complete: its last phrase goes too.
    pub fn finish(&mut self) -> Result<Option<String>, TtsError> {
        self.finished = true;
        if self.cancel.load(Ordering::Acquire) {
            return Ok(None);
        }
        let last = self.splitter.finish();
        if let Some(p) = &last {
            self.submit(p)?;
        }
        Ok(last)
    }

    fn submit(&mut self, phrase: &str) -> Result<(), TtsError> {
        let rx = self.engine.submit(phrase, self.cancel.clone())?;
        self.pending.push_back((phrase.to_string(), Instant::now(), rx));
        Ok(())
    }

    /// The next phrase's audio, in order. `None` once the reply is finished
    /// and all its audio handed out, or once cancelled. Cancel-safe.
    pub async fn next_chunk(&mut self) -> Option<Result<AudioChunk, TtsError>> {
        loop {
            if self.cancel.load(Ordering::Acquire) {
                self.pending.clear();
                return None;
            }
            let (_, _, rx) = self.pending.front_mut()?;
            let result = rx.await;
            let (text, submitted, _) = self.pending.pop_front()?;
            match result {
                Ok(Ok(samples)) if samples.is_empty() => continue,
                Ok(Ok(samples)) => {
                    return Some(Ok(AudioChunk {
                        text,
                        samples: samples.into(),
                        latency: submitted.elapsed(),
                    }))
                }
                Ok(Err(TtsError::Cancelled)) => return None,
                Ok(Err(e)) => return Some(Err(e)),
                Err(_) => return Some(Err(TtsError::Stopped)),
            }
        }
    }

    /// Whether every phrase has been handed out and no more text will come.
    pub fn done(&self) -> bool {
        self.finished && self.pending.is_empty()
    }

    /// Stops the reply: queued phrases are dropped, audio not yet handed
    /// out is discarded, and further text is ignored.
    pub fn cancel(&mut self) {
        self.cancel.store(true, Ordering::Release);
        self.pending.clear();
    }
}

impl Drop for TtsStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Release);
    }
}
