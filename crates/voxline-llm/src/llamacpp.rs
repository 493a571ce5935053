//! The llama.cpp backend: a GGUF model run by llama.cpp (built from the
//! `llama-cpp-2` crate's sources for this CPU), on one engine thread that
//! batches the sequences of every call into each decode step and keeps the
//! KV cache of recent prompts so a turn only prefills its new words.
//! The chat template comes from the GGUF (or a template file), applied by
//! llama.cpp's built-in template engine.

use crate::chat::{ChatMessage, ChatModel, ChatRequest, ChatStream, EngineProbe, Role};
pub use crate::llamacpp_engine::EngineStats;
use crate::llamacpp_engine::{run_engine, EngineConfig, Job};
use crate::{LlmError, DEFAULT_MAX_WAITING};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{mpsc as std_mpsc, Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;

/// How to load a model into llama.cpp.
#[derive(Debug, Clone)]
pub struct LlamaCppConfig {
    /// The GGUF file.
    pub gguf: PathBuf,
    /// A chat template file (a template llama.cpp knows, or just its name,
    /// e.g. `chatml`) overriding the GGUF's.
    pub chat_template: Option<PathBuf>,
    /// Sequences decoded together (concurrent calls batch up to this).
    pub max_seqs: usize,
    /// Finished prompts whose KV is kept for reuse by later turns.
    pub prefix_cache: usize,
    /// KV cache size in tokens, shared by all sequences (0: the model's
    /// trained context length). One reply never exceeds the trained length.
    pub context_tokens: u32,
    /// CPU threads for each decode step (0: one per core).
    pub threads: usize,
    /// A count of urgent work elsewhere (the recogniser's finals, see
    /// `AsrPool::urgent`): while it is above zero, prompts read ahead by
    /// [`ChatModel::prefill`] wait, so they do not slow down what a caller
    /// is waiting for.
    pub yield_to: Option<Arc<AtomicUsize>>,
    /// Most replies waiting for a sequence (all `max_seqs` busy); one more
    /// is refused at once with [`LlmError::Busy`].
    pub max_waiting: usize,
}

impl LlamaCppConfig {
    /// Defaults for `gguf`.
    pub fn new(gguf: impl Into<PathBuf>) -> LlamaCppConfig {
        LlamaCppConfig {
            gguf: gguf.into(),
            chat_template: None,
            max_seqs: 16,
            prefix_cache: 8,
            context_tokens: 0,
            threads: 0,
            yield_to: None,
            max_waiting: DEFAULT_MAX_WAITING,
        }
    }
}

/// A model loaded into llama.cpp (cheap to clone; clones share the model
/// and its engine thread, which ends when the last clone is dropped).
#[derive(Clone)]
pub struct LlamaCppModel {
    shared: Arc<Shared>,
}

struct Shared {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    jobs: std_mpsc::Sender<Job>,
    name: String,
    /// The longest one reply may grow (prompt and generated tokens).
    context_tokens: usize,
    stats: Arc<EngineStats>,
    /// See [`LlamaCppConfig::max_waiting`].
    max_waiting: usize,
}

impl std::fmt::Debug for LlamaCppModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppModel")
            .field("name", &self.shared.name)
            .finish()
    }
}

/// llama.cpp's process-wide initialisation (it may run only once).
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| e.clone())
}

impl LlamaCppModel {
    /// Loads the model and starts its engine thread; errors name the file and why.
    pub async fn load(cfg: &LlamaCppConfig) -> Result<LlamaCppModel, LlmError> {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || Self::load_blocking(&cfg))
            .await
            .map_err(|e| LlmError::Generate(format!("the model loader failed: {e}")))?
    }

    fn load_blocking(cfg: &LlamaCppConfig) -> Result<LlamaCppModel, LlmError> {
        let fail = crate::load_error(&cfg.gguf);
        crate::require_model_file(&cfg.gguf)?;
        let backend = backend().map_err(|e| fail(format!("starting llama.cpp: {e}")))?;
        let model = LlamaModel::load_from_file(backend, &cfg.gguf, &LlamaModelParams::default())
            .map_err(|e| fail(format!("llama.cpp could not load it ({e}); is it a GGUF model file?")))?;
        let template = match &cfg.chat_template {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| LlmError::Load {
                    path: path.display().to_string(),
                    why: format!("reading the chat template: {e}"),
                })?;
                LlamaChatTemplate::new(text.trim()).map_err(|e| LlmError::Load {
                    path: path.display().to_string(),
                    why: format!("chat template: {e}"),
                })?
            }
            None => model
                .chat_template(None)
                .map_err(|e| fail(format!("no chat template in the GGUF ({e}); set one in the config")))?,
        };
        // The template must be one llama.cpp can apply: find out now, not on the first call.
        let probe = [
            LlamaChatMessage::new("system".into(), "s".into()),
            LlamaChatMessage::new("user".into(), "u".into()),
        ];
        let probe: Vec<LlamaChatMessage> = probe.into_iter().filter_map(Result::ok).collect();
        model.apply_chat_template(&template, &probe, true).map_err(|e| {
            fail(format!(
                "llama.cpp cannot apply this chat template ({e}); give a known one (e.g. chatml, llama3, phi3) as the template"
            ))
        })?;
        let name = cfg
            .gguf
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let model = Arc::new(model);
        let threads = if cfg.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            cfg.threads
        };
        let trained = model.n_ctx_train().max(256);
        let context_tokens = if cfg.context_tokens == 0 {
            trained
        } else {
            cfg.context_tokens.max(256)
        };
        let engine_cfg = EngineConfig {
            max_seqs: cfg.max_seqs.max(1),
            prefix_cache: cfg.prefix_cache,
            context_tokens,
            threads,
            yield_to: cfg.yield_to.clone(),
        };
        let (jobs, rx) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let engine_model = Arc::clone(&model);
        let stats = Arc::new(EngineStats::default());
        let engine_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("llm-engine".into())
            .spawn(move || run_engine(backend, &engine_model, &engine_cfg, rx, ready_tx, engine_stats))
            .map_err(|e| fail(format!("starting the engine thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| fail("the engine thread stopped while starting".into()))?
            .map_err(fail)?;
        Ok(LlamaCppModel {
            shared: Arc::new(Shared {
                model,
                template,
                jobs,
                name,
                context_tokens: context_tokens.min(trained) as usize,
                stats,
                max_waiting: cfg.max_waiting,
            }),
        })
    }

    /// The engine's counters (requests, reused prompt tokens, batched steps).
    pub fn stats(&self) -> &EngineStats {
        &self.shared.stats
    }

    /// The prompt's tokens, as the chat template and tokenizer make them.
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<llama_cpp_2::token::LlamaToken>, LlmError> {
        let msgs = messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                LlamaChatMessage::new(role.into(), m.content.clone())
                    .map_err(|e| LlmError::Generate(format!("a message holds a NUL byte: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let model = &self.shared.model;
        let text = model
            .apply_chat_template(&self.shared.template, &msgs, true)
            .map_err(|e| LlmError::Generate(format!("applying the chat template: {e}")))?;
        Ok(model.vocab().tokenize(text.as_bytes(), true, true))
    }

    /// Queues a reply on the engine; `background`: a read-ahead.
    fn submit(&self, req: ChatRequest, background: bool) -> Result<ChatStream, LlmError> {
        let started = Instant::now();
        let tokens = self.prompt_tokens(&req.messages)?;
        if tokens.is_empty() {
            return Err(LlmError::Generate("the prompt is empty".into()));
        }
        let room = self.shared.context_tokens.saturating_sub(tokens.len());
        if room < 2 {
            return Err(LlmError::Generate(format!(
                "the prompt has {} tokens; the context holds {}",
                tokens.len(),
                self.shared.context_tokens
            )));
        }
        // A read-ahead is optional: it may take only half the waiting room,
        // so read-aheads never crowd out a reply a caller waits for.
        let limit = if background {
            self.shared.max_waiting / 2
        } else {
            self.shared.max_waiting
        };
        let queued = self.shared.stats.enter_queue(limit, background)?;
        let max_tokens = req.max_tokens.clamp(1, room - 1);
        // Room for every token's delta plus the end: the engine never waits on a caller.
        let (tx, rx) = mpsc::channel(max_tokens + 2);
        let probe_tx = tx.downgrade();
        let hold = Arc::new(AtomicBool::new(false));
        let read = Arc::new(OnceLock::new());
        self.shared
            .jobs
            .send(Job {
                tokens,
                temperature: req.temperature,
                top_p: req.top_p,
                max_tokens,
                stop: req.stop,
                tx,
                hold: Arc::clone(&hold),
                background,
                read: Arc::clone(&read),
                queued: Some(queued),
            })
            .map_err(|_| LlmError::Generate("the model engine stopped".into()))?;
        // The engine holds the only sender and drops it when it frees the
        // sequence: the probe reports that moment.
        Ok(ChatStream::new(rx, started)
            .with_hold(hold)
            .with_prompt_read(read)
            .with_probe(Box::new(move || {
                let weak = probe_tx.clone();
                probe_tx
                    .upgrade()
                    .map(|_held| EngineProbe::new(move || weak.upgrade().is_none()))
            })))
    }
}

#[async_trait::async_trait]
impl ChatModel for LlamaCppModel {
    async fn chat(&self, req: ChatRequest) -> Result<ChatStream, LlmError> {
        self.submit(req, false)
    }

    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn engine_stats(&self) -> Option<Arc<EngineStats>> {
        Some(self.shared.stats.clone())
    }

    /// One token is generated (the engine reads a prompt only for a
    /// reply); the slot keeps the prompt's KV once the reply ends. It reads
    /// in the background: it gives way to urgent work (see
    /// [`LlamaCppConfig::yield_to`]).
    async fn prefill(&self, messages: Vec<ChatMessage>) -> Result<(), LlmError> {
        self.submit(ChatRequest::new(messages, 1), true)?
            .text()
            .await
            .map(|_| ())
    }
}
