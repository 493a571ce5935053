//! The llama.cpp engine thread. Every decode step carries the next token of
//! each generating sequence plus a chunk of any prompt still being read, so
//! calls are batched rather than queued. Sequences live in slots of one
//! unified KV cache: a new prompt starts from the slot sharing its longest
//! prefix (a copy of that prefix costs nothing in a unified cache), and a
//! finished or cancelled reply leaves its slot cached for the next turn.

use crate::chat::{ChatEvent, Usage};
use crate::text_out::{Filtered, StopFilter, Utf8Joiner};
use crate::LlmError;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Tokens in one decode step (generation tokens first, then prompt chunks).
const BATCH: usize = 512;

/// Most prompt tokens a read-ahead (background) sequence feeds per step, so
/// that it gives way within one short step when urgent work starts (~50 ms
/// here; 32 tokens took ~180 ms alone and up to ~460 ms next to a final
/// decode, which both waited through: decision 0036).
const BACKGROUND_CHUNK: usize = 8;

/// How often a held engine looks whether a sequence was released.
const HELD_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// One chat reply for the engine to generate.
pub(crate) struct Job {
    /// The whole prompt, templated and tokenized.
    pub tokens: Vec<LlamaToken>,
    /// Sampling temperature (0: greedy).
    pub temperature: f64,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Where the reply goes; room for every event, so sends never wait.
    pub tx: mpsc::Sender<Result<ChatEvent, LlmError>>,
    /// While set, the sequence sits out the decode steps.
    pub hold: Arc<AtomicBool>,
    /// A prompt read ahead on speculation (a prefill): it sits out the steps
    /// while [`EngineConfig::yield_to`] is above zero and reads its prompt
    /// in short chunks.
    pub background: bool,
    /// Set when the sequence starts: prompt tokens it reads (not reused
    /// from a cached slot).
    pub read: Arc<std::sync::OnceLock<usize>>,
    /// Counts the job as waiting until it gets a sequence.
    pub queued: Option<QueueMark>,
}

/// Counters of the engine's work since start.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Replies started.
    pub requests: AtomicU64,
    /// Prompt tokens of those replies.
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens whose KV was reused from a cached slot (not read again).
    pub reused_tokens: AtomicU64,
    /// Tokens generated.
    pub generated_tokens: AtomicU64,
    /// Decode steps run.
    pub steps: AtomicU64,
    /// Decode steps that carried more than one sequence.
    pub batched_steps: AtomicU64,
    /// Time spent in decode steps, microseconds.
    pub decode_us: AtomicU64,
    /// Replies waiting for a free sequence now (llama.cpp), or replies
    /// under way (mistralrs, which queues on its own).
    pub waiting: AtomicU64,
    /// Replies refused because as many were waiting as the engine may hold.
    pub refused: AtomicU64,
    /// Set when the engine thread has ended (every handle gone, or it failed):
    /// no reply can be generated any more.
    pub stopped: AtomicBool,
}

impl EngineStats {
    /// Counts one more waiting reply unless `limit` are waiting already
    /// (then counts a refusal and says so); the reply stops counting when
    /// the mark is dropped.
    /// A refused read-ahead (`optional`) is not counted in `refused`.
    pub(crate) fn enter_queue(self: &Arc<Self>, limit: usize, optional: bool) -> Result<QueueMark, LlmError> {
        let limit = limit as u64;
        match self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
        {
            Ok(_) => Ok(QueueMark(Arc::clone(self))),
            Err(n) => {
                if !optional {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(LlmError::Busy(format!(
                    "{n} replies are waiting for the model already (llm.max_waiting = {limit})"
                )))
            }
        }
    }
}

/// One reply counted in [`EngineStats::waiting`] until dropped.
pub(crate) struct QueueMark(Arc<EngineStats>);

impl Drop for QueueMark {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks the engine stopped when its thread ends, however it ends.
struct StoppedOnExit(Arc<EngineStats>);

impl Drop for StoppedOnExit {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
    }
}

/// Engine sizing.
pub(crate) struct EngineConfig {
    /// Sequences generating at once.
    pub max_seqs: usize,
    /// Extra slots keeping finished prompts' KV.
    pub prefix_cache: usize,
    /// KV cache size in tokens.
    pub context_tokens: u32,
    /// CPU threads per decode step.
    pub threads: usize,
    /// A count of urgent work elsewhere on the machine (the recogniser's
    /// finals): while above zero, background sequences wait.
    pub yield_to: Option<Arc<AtomicUsize>>,
}

struct Active {
    job: Job,
    /// Tokens to feed next: the unread prompt, then the last sampled token.
    pending: Vec<LlamaToken>,
    sampler: LlamaSampler,
    generated: usize,
    utf8: Utf8Joiner,
    stop: StopFilter,
}

enum State {
    Free,
    Cached { used: u64 },
    Active(Box<Active>),
}

struct Slot {
    seq: i32,
    /// The tokens whose KV this sequence holds, position by position.
    tokens: Vec<LlamaToken>,
    state: State,
}

/// Runs the engine until every model handle is gone and no reply is left.
pub(crate) fn run_engine(
    backend: &LlamaBackend,
    model: &LlamaModel,
    cfg: &EngineConfig,
    jobs: std_mpsc::Receiver<Job>,
    ready: std_mpsc::Sender<Result<(), String>>,
    stats: Arc<EngineStats>,
) {
    let _stopped = StoppedOnExit(Arc::clone(&stats));
    let slots = cfg.max_seqs + cfg.prefix_cache;
    let threads = i32::try_from(cfg.threads).unwrap_or(2);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(cfg.context_tokens))
        .with_n_batch(BATCH as u32)
        .with_n_ubatch(BATCH as u32)
        .with_n_seq_max(slots as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_kv_unified(true);
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!("creating the llama.cpp context: {e}")));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut engine = Engine {
        slots: (0..slots)
            .map(|i| Slot {
                seq: i as i32,
                tokens: Vec::new(),
                state: State::Free,
            })
            .collect(),
        waiting: VecDeque::new(),
        max_seqs: cfg.max_seqs,
        tick: 0,
        batch: LlamaBatch::new(BATCH, 1),
        stats,
        yield_to: cfg.yield_to.clone(),
    };
    let mut closing = false;
    loop {
        if engine.is_idle() {
            if closing {
                return;
            }
            match jobs.recv() {
                Ok(job) => engine.waiting.push_back(job),
                Err(_) => return,
            }
        }
        loop {
            match jobs.try_recv() {
                Ok(job) => engine.waiting.push_back(job),
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
            }
        }
        engine.drop_cancelled();
        engine.admit(&mut ctx);
        if !engine.step(&mut ctx, model) && !engine.is_idle() {
            // Every live sequence is held: wait for a new job or a release.
            match jobs.recv_timeout(HELD_POLL) {
                Ok(job) => engine.waiting.push_back(job),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => closing = true,
            }
        }
    }
}

struct Engine {
    slots: Vec<Slot>,
    waiting: VecDeque<Job>,
    max_seqs: usize,
    tick: u64,
    batch: LlamaBatch<'static>,
    stats: Arc<EngineStats>,
    yield_to: Option<Arc<AtomicUsize>>,
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn sampler_for(job: &Job) -> LlamaSampler {
    if job.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut chain = Vec::new();
    if let Some(p) = job.top_p {
        chain.push(LlamaSampler::top_p(p as f32, 1));
    }
    chain.push(LlamaSampler::temp(job.temperature as f32));
    chain.push(LlamaSampler::dist(seed));
    LlamaSampler::chain_simple(chain)
}

impl Engine {
    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && !self.slots.iter().any(|s| matches!(s.state, State::Active(_)))
    }

    fn active_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::Active(_)))
            .count()
    }

    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Replies whose stream was dropped stop here, before the next step;
    /// their slot keeps the KV already computed.
    fn drop_cancelled(&mut self) {
        self.waiting.retain(|j| !j.tx.is_closed());
        let now = self.touch();
        for slot in &mut self.slots {
            if matches!(&slot.state, State::Active(a) if a.job.tx.is_closed()) {
                slot.state = State::Cached { used: now };
            }
        }
    }

    /// Starts waiting jobs while there is room.
    fn admit(&mut self, ctx: &mut LlamaContext<'_>) {
        while self.active_count() < self.max_seqs {
            let Some(mut job) = self.waiting.pop_front() else {
                return;
            };
            // The slot sharing the longest prefix (at least one prompt token
            // must still be read, for its logits).
            let limit = job.tokens.len() - 1;
            let source = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !matches!(s.state, State::Free))
                .map(|(i, s)| (i, common_prefix(&s.tokens, &job.tokens).min(limit)))
                .max_by_key(|&(_, n)| n)
                .filter(|&(_, n)| n > 0);
            // A cached slot the prompt simply extends (the same call's last
            // turn) is taken over; otherwise a free or least recently used
            // cached slot gets a copy of the shared prefix.
            let in_place = source.filter(|&(i, n)| {
                matches!(self.slots[i].state, State::Cached { .. }) && n == self.slots[i].tokens.len()
            });
            // With no other slot to use, a cached source is cut back to the
            // shared prefix and reused (only with a tiny prefix cache).
            let source_cached = source
                .filter(|&(i, _)| matches!(self.slots[i].state, State::Cached { .. }))
                .map(|(i, _)| i);
            let target = in_place
                .map(|(i, _)| i)
                .or_else(|| self.free_slot(source.map(|(i, _)| i)))
                .or(source_cached);
            let Some(target) = target else {
                self.waiting.push_front(job);
                return;
            };
            let shared = source.map_or(0, |(_, n)| n);
            let seq = self.slots[target].seq;
            match source {
                Some((src, _)) if src == target => {
                    let _ = ctx.clear_kv_cache_seq(Some(seq as u32), Some(shared as u32), None);
                }
                _ => {
                    let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                    if let Some((src, n)) = source {
                        let src_seq = self.slots[src].seq;
                        let _ = ctx.copy_kv_cache_seq(src_seq, seq, None, Some(n as u32));
                    }
                }
            }
            let slot = &mut self.slots[target];
            slot.tokens.clear();
            slot.tokens.extend_from_slice(&job.tokens[..shared]);
            tracing::debug!(seq, prompt = job.tokens.len(), reused = shared, "llm sequence starts");
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            self.stats
                .prompt_tokens
                .fetch_add(job.tokens.len() as u64, Ordering::Relaxed);
            self.stats.reused_tokens.fetch_add(shared as u64, Ordering::Relaxed);
            let _ = job.read.set(job.tokens.len() - shared);
            // It has a sequence: it no longer counts as waiting.
            job.queued = None;
            slot.state = State::Active(Box::new(Active {
                pending: job.tokens[shared..].to_vec(),
                sampler: sampler_for(&job),
                generated: 0,
                utf8: Utf8Joiner::default(),
                stop: StopFilter::new(&job.stop),
                job,
            }));
        }
    }

    /// A free slot, else the least recently used cached one (never `keep`).
    fn free_slot(&self, keep: Option<usize>) -> Option<usize> {
        if let Some(i) = self.slots.iter().position(|s| matches!(s.state, State::Free)) {
            return Some(i);
        }
        self.slots
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != keep)
            .filter_map(|(i, s)| match s.state {
                State::Cached { used } => Some((i, used)),
                _ => None,
            })
            .min_by_key(|&(_, used)| used)
            .map(|(i, _)| i)
    }

    /// Drops the least recently used cached slot's KV; false if none.
    fn evict_one(&mut self, ctx: &mut LlamaContext<'_>) -> bool {
        let Some(i) = self
            .free_slot(None)
            .filter(|&i| !matches!(self.slots[i].state, State::Free))
        else {
            return false;
        };
        let _ = ctx.clear_kv_cache_seq(Some(self.slots[i].seq as u32), None, None);
        self.slots[i].tokens.clear();
        self.slots[i].state = State::Free;
        true
    }

    /// One decode step over every active sequence not held; false when
    /// there was nothing to decode.
    fn step(&mut self, ctx: &mut LlamaContext<'_>, model: &LlamaModel) -> bool {
        // (slot, tokens fed, batch index of the logits wanted)
        let mut fed: Vec<(usize, usize, Option<i32>)> = Vec::new();
        self.batch.clear();
        let mut budget = BATCH;
        let yielding = self.yield_to.as_ref().is_some_and(|n| n.load(Ordering::Acquire) > 0);
        // Generating sequences first (one token each), then prompt chunks.
        for generating in [true, false] {
            for (i, slot) in self.slots.iter().enumerate() {
                let State::Active(a) = &slot.state else {
                    continue;
                };
                if (a.generated > 0) != generating
                    || budget == 0
                    || a.pending.is_empty()
                    || a.job.hold.load(Ordering::Relaxed)
                    || (a.job.background && yielding)
                {
                    continue;
                }
                let chunk = if a.job.background { BACKGROUND_CHUNK } else { budget };
                let want = a.pending.len().min(budget).min(chunk);
                let last = want == a.pending.len();
                let base = slot.tokens.len();
                let mut n = 0;
                for (k, &tok) in a.pending[..want].iter().enumerate() {
                    let logits = last && k + 1 == want;
                    if self.batch.add(tok, (base + k) as i32, &[slot.seq], logits).is_err() {
                        break;
                    }
                    n += 1;
                }
                if n == 0 {
                    continue;
                }
                let last = last && n == want;
                budget -= n;
                let index = self.batch.n_tokens() - 1;
                fed.push((i, n, last.then_some(index)));
            }
        }
        if fed.is_empty() {
            return false;
        }
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        if fed.len() > 1 {
            self.stats.batched_steps.fetch_add(1, Ordering::Relaxed);
        }
        let started = std::time::Instant::now();
        let decoded = loop {
            match ctx.decode(&mut self.batch) {
                Ok(()) => break true,
                Err(DecodeError::NoKvCacheSlot) if self.evict_one(ctx) => continue,
                Err(e) => {
                    let why = match e {
                        DecodeError::NoKvCacheSlot => "the context is full (raise llm.context_tokens)".to_string(),
                        other => format!("llama.cpp decode failed: {other}"),
                    };
                    tracing::warn!(%why, "llm step failed");
                    let now = self.touch();
                    for &(i, _, _) in &fed {
                        if let State::Active(a) = &self.slots[i].state {
                            let _ = a.job.tx.try_send(Err(LlmError::Generate(why.clone())));
                        }
                        self.slots[i].state = State::Cached { used: now };
                    }
                    break false;
                }
            }
        };
        let took = started.elapsed();
        self.stats
            .decode_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        tracing::debug!(
            sequences = fed.len(),
            tokens = self.batch.n_tokens(),
            us = took.as_micros() as u64,
            "llm step"
        );
        if !decoded {
            return true;
        }
        let vocab = model.vocab();
        for (i, n, logits) in fed {
            let now = self.touch();
            let slot = &mut self.slots[i];
            let State::Active(a) = &mut slot.state else {
                continue;
            };
            slot.tokens.extend(a.pending.drain(..n));
            let Some(index) = logits else {
                continue;
            };
            let token = a.sampler.sample(ctx, index);
            let mut text = String::new();
            let mut done = vocab.is_eog(token);
            if !done {
                a.generated += 1;
                self.stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
                text = a.utf8.push(&vocab.token_to_piece(token, false, None));
                a.pending.push(token);
                done = a.generated >= a.job.max_tokens;
            }
            let (mut out, stopped) = match a.stop.push(&text) {
                Filtered::Text(t) => (t, false),
                Filtered::Stop(t) => (t, true),
            };
            if done && !stopped {
                match a.stop.push(&a.utf8.finish()) {
                    Filtered::Text(t) => {
                        out.push_str(&t);
                        out.push_str(&a.stop.finish());
                    }
                    Filtered::Stop(t) => out.push_str(&t),
                }
            }
            let done = done || stopped;
            let mut sent = out.is_empty() || a.job.tx.try_send(Ok(ChatEvent::Delta(out))).is_ok();
            if done && sent {
                let usage = Usage {
                    prompt_tokens: a.job.tokens.len(),
                    completion_tokens: a.generated,
                    ..Usage::default()
                };
                sent = a.job.tx.try_send(Ok(ChatEvent::Done(usage))).is_ok();
            }
            if done || !sent {
                // The sampled token was never decoded: its KV is not kept.
                slot.state = State::Cached { used: now };
            }
        }
        true
    }
}
