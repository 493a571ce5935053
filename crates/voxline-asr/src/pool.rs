//! A bounded pool of Whisper workers shared by all calls. Each worker is an
//! OS thread of its own (never a tokio thread, never a media clock thread)
//! holding one reused `WhisperState`. Jobs wait in a bounded queue: a
//! caller that must be heard (a final hypothesis) waits for room
//! (back-pressure), a caller that may be skipped (a partial) is turned away
//! when the queue is full. The time each job waited is measured.

use crate::whisper::{Confidence, DecodeOptions, Heard, WhisperModel};
use crate::AsrError;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Size of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads, each decoding one utterance at a time.
    pub workers: usize,
    /// CPU threads a decode may use (a job asking for fewer gets fewer).
    pub threads_per_worker: usize,
    /// Jobs that may wait for a worker before submitters are held back.
    pub queue: usize,
}

impl Default for PoolConfig {
    /// Two workers that may each use every core: a decode alone runs at
    /// full speed (the lowest final latency); with several calls each
    /// decode gets one thread (see [`AsrPool::crowd`]) and two run at once.
    fn default() -> PoolConfig {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PoolConfig {
            workers: 2,
            threads_per_worker: cores,
            queue: 16,
        }
    }
}

/// A decoded utterance and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The text, trimmed.
    pub text: String,
    /// How sure Whisper was of it.
    pub confidence: Confidence,
    /// Time from submission until a worker took the job.
    pub queue_wait: Duration,
    /// Time the worker spent decoding.
    pub decode: Duration,
    /// Seconds of audio decoded.
    pub audio_secs: f64,
}

/// Counters of the pool since start (for `/metrics` and benchmarks).
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Jobs decoded to the end.
    pub decoded: AtomicU64,
    /// Jobs cancelled before or while decoding.
    pub aborted: AtomicU64,
    /// Optional jobs turned away because the queue was full.
    pub skipped_full: AtomicU64,
    /// Jobs that failed in whisper.cpp.
    pub failed: AtomicU64,
    /// Sum of queue waits, microseconds.
    pub queue_wait_us_sum: AtomicU64,
    /// Longest queue wait, microseconds.
    pub queue_wait_us_max: AtomicU64,
    /// Sum of decode times, microseconds.
    pub decode_us_sum: AtomicU64,
    /// Sum of decoded audio, milliseconds.
    pub audio_ms_sum: AtomicU64,
    /// Workers decoding now.
    pub busy: AtomicU64,
    /// Worker threads running (a worker that ends, e.g. by a panic in
    /// whisper.cpp, stops counting).
    pub workers: AtomicU64,
}

/// Counts a worker thread in [`PoolStats::workers`] from its start until it
/// ends, however it ends.
struct WorkerAlive(Arc<PoolStats>);

impl WorkerAlive {
    fn new(stats: &Arc<PoolStats>) -> WorkerAlive {
        stats.workers.fetch_add(1, Ordering::AcqRel);
        WorkerAlive(stats.clone())
    }
}

impl Drop for WorkerAlive {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Job {
    audio: Arc<[f32]>,
    opts: Arc<DecodeOptions>,
    abort: Arc<AtomicBool>,
    submitted: Instant,
    reply: oneshot::Sender<Result<Transcript, AsrError>>,
    /// Counted in [`AsrPool::urgent`] until its result is sent.
    urgent: Option<UrgentMark>,
}

/// One job counted in [`AsrPool::urgent`]; uncounted when dropped.
struct UrgentMark(Arc<AtomicUsize>);

impl UrgentMark {
    fn new(count: &Arc<AtomicUsize>) -> UrgentMark {
        count.fetch_add(1, Ordering::AcqRel);
        UrgentMark(count.clone())
    }
}

impl Drop for UrgentMark {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Handle to the pool; cheap to clone. Workers stop when the last handle
/// is dropped and the queue is empty.
#[derive(Clone)]
pub struct AsrPool {
    tx: flume::Sender<Job>,
    stats: Arc<PoolStats>,
    config: PoolConfig,
    crowd: Arc<AtomicUsize>,
    urgent: Arc<AtomicUsize>,
}

impl std::fmt::Debug for AsrPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsrPool").field("config", &self.config).finish()
    }
}

impl AsrPool {
    /// Starts the workers, each with its own decoding state.
    pub fn start(model: Arc<WhisperModel>, config: PoolConfig) -> Result<AsrPool, AsrError> {
        let config = PoolConfig {
            workers: config.workers.max(1),
            threads_per_worker: config.threads_per_worker.max(1),
            queue: config.queue.max(1),
        };
        let (tx, rx) = flume::bounded::<Job>(config.queue);
        let stats = Arc::new(PoolStats::default());
        let crowd = Arc::new(AtomicUsize::new(0));
        for n in 0..config.workers {
            let state = model.state()?;
            let (model, rx, stats, crowd) = (model.clone(), rx.clone(), stats.clone(), crowd.clone());
            let threads = config.threads_per_worker as i32;
            let alive = WorkerAlive::new(&stats);
            std::thread::Builder::new()
                .name(format!("asr-worker-{n}"))
                .spawn(move || work(&model, state, &rx, &stats, threads, &crowd, alive))
                .map_err(|e| AsrError::Decode(format!("starting an ASR worker thread: {e}")))?;
        }
        Ok(AsrPool {
            tx,
            stats,
            config,
            crowd,
            urgent: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How many calls share the CPU now (their handlers count themselves
    /// in). Above one, each decode runs on one thread: whisper.cpp's
    /// threads wait for each other by spinning, and on a busy machine the
    /// spinning takes the cores the other engines need.
    pub fn crowd(&self) -> Arc<AtomicUsize> {
        self.crowd.clone()
    }

    /// Decodes someone waits for (finals, early finals: every
    /// [`AsrPool::transcribe`] job), queued or running. A caller's turn waits
    /// on them, so other engines let speculative work (a prompt read ahead
    /// from a partial) wait while this is above zero.
    pub fn urgent(&self) -> Arc<AtomicUsize> {
        self.urgent.clone()
    }

    /// How many calls share the CPU now (see [`AsrPool::crowd`]).
    pub fn sharing(&self) -> usize {
        self.crowd.load(Ordering::Relaxed)
    }

    /// The pool's size.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// The pool's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// The pool's counters, to keep after the handle is gone.
    pub fn stats_handle(&self) -> Arc<PoolStats> {
        self.stats.clone()
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Whether a worker is free and nothing waits: optional work (partials)
    /// is only worth submitting then, so it never delays a final.
    pub fn idle(&self) -> bool {
        self.tx.is_empty() && self.stats.busy.load(Ordering::Relaxed) < self.config.workers as u64
    }

    /// Decodes `audio` (16 kHz, -1..1), waiting for room in the queue when it
    /// is full. Setting `abort` cancels the job, queued or running.
    pub async fn transcribe(
        &self,
        audio: Arc<[f32]>,
        opts: Arc<DecodeOptions>,
        abort: Arc<AtomicBool>,
    ) -> Result<Transcript, AsrError> {
        let (job, reply) = job(audio, opts, abort, Some(UrgentMark::new(&self.urgent)));
        self.tx
            .send_async(job)
            .await
            .map_err(|_| AsrError::Pool("the recognition workers have stopped"))?;
        reply
            .await
            .map_err(|_| AsrError::Pool("a recognition worker stopped"))?
    }

    /// Like [`AsrPool::transcribe`] for work that may be skipped: fails at
    /// once with [`AsrError::Pool`] when the queue is full.
    pub fn try_transcribe(
        &self,
        audio: Arc<[f32]>,
        opts: Arc<DecodeOptions>,
        abort: Arc<AtomicBool>,
    ) -> Result<impl std::future::Future<Output = Result<Transcript, AsrError>> + Send + 'static, AsrError> {
        let (job, reply) = job(audio, opts, abort, None);
        match self.tx.try_send(job) {
            Ok(()) => Ok(async move {
                reply
                    .await
                    .map_err(|_| AsrError::Pool("a recognition worker stopped"))?
            }),
            Err(flume::TrySendError::Full(_)) => {
                self.stats.skipped_full.fetch_add(1, Ordering::Relaxed);
                Err(AsrError::Pool("queue full"))
            }
            Err(flume::TrySendError::Disconnected(_)) => Err(AsrError::Pool("the recognition workers have stopped")),
        }
    }
}

fn job(
    audio: Arc<[f32]>,
    opts: Arc<DecodeOptions>,
    abort: Arc<AtomicBool>,
    urgent: Option<UrgentMark>,
) -> (Job, oneshot::Receiver<Result<Transcript, AsrError>>) {
    let (reply, rx) = oneshot::channel();
    let job = Job {
        audio,
        opts,
        abort,
        submitted: Instant::now(),
        reply,
        urgent,
    };
    (job, rx)
}

/// One worker's loop: take a job, decode it unless cancelled, reply.
fn work(
    model: &WhisperModel,
    mut state: whisper_rs::WhisperState,
    rx: &flume::Receiver<Job>,
    stats: &PoolStats,
    threads: i32,
    crowd: &AtomicUsize,
    _alive: WorkerAlive,
) {
    while let Ok(job) = rx.recv() {
        let started = Instant::now();
        stats.busy.fetch_add(1, Ordering::Relaxed);
        let queue_wait = started - job.submitted;
        let wait_us = micros(queue_wait);
        stats.queue_wait_us_sum.fetch_add(wait_us, Ordering::Relaxed);
        stats.queue_wait_us_max.fetch_max(wait_us, Ordering::Relaxed);
        if job.reply.is_closed() {
            // Nobody waits for the answer (the call is gone): skip it.
            job.abort.store(true, Ordering::Release);
        }
        let threads = if crowd.load(Ordering::Relaxed) > 1 { 1 } else { threads };
        let opts = DecodeOptions {
            threads: job.opts.threads.clamp(1, threads),
            ..(*job.opts).clone()
        };
        let result = model.transcribe_abortable(&mut state, &job.audio, &opts, &job.abort);
        let decode = started.elapsed();
        stats.busy.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(
            audio_ms = job.audio.len() / 16,
            window = opts.audio_ctx,
            threads = opts.threads,
            queued_us = wait_us,
            decode_us = micros(decode),
            ok = result.is_ok(),
            "asr decode"
        );
        let result = match result {
            Ok(Heard { text, confidence, .. }) => {
                stats.decoded.fetch_add(1, Ordering::Relaxed);
                stats.decode_us_sum.fetch_add(micros(decode), Ordering::Relaxed);
                stats
                    .audio_ms_sum
                    .fetch_add((job.audio.len() / 16) as u64, Ordering::Relaxed);
                Ok(Transcript {
                    text,
                    confidence,
                    queue_wait,
                    decode,
                    audio_secs: job.audio.len() as f64 / f64::from(crate::ASR_RATE),
                })
            }
            Err(AsrError::Aborted) => {
                stats.aborted.fetch_add(1, Ordering::Relaxed);
                Err(AsrError::Aborted)
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "ASR decode failed");
                Err(e)
            }
        };
        // Uncounted before the submitter hears back.
        drop(job.urgent);
        // The submitter may have gone away meanwhile; that is fine.
        let _ = job.reply.send(result);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
