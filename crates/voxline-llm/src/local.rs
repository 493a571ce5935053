//! The local backend: a GGUF model on mistralrs, on the CPU, loaded from a
//! local file with no hub access (`TokenSource::None`): the tokenizer and
//! the chat template come from the GGUF metadata, or the template from a
//! local file. One loaded model serves every call; mistralrs' scheduler
//! batches the sequences of concurrent requests, and its prefix cache keeps
//! the KV of a shared system prompt so a turn only prefills its new words.

use crate::chat::{ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, EngineProbe, Role, Usage};
use crate::{EngineStats, LlmError};
use mistralrs::{
    Constraint, GgufModelBuilder, NormalRequest, Request, RequestLike, Response, SamplingParams, StopTokens,
    TextMessageRole, TextMessages, TokenSource,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// How to load a local model.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalConfig {
    /// The GGUF file.
    pub gguf: PathBuf,
    /// A chat template (`.json` tokenizer config or `.jinja`) overriding the GGUF's.
    pub chat_template: Option<PathBuf>,
    /// Sequences decoded together (concurrent calls batch up to this).
    pub max_seqs: usize,
    /// Prompts whose KV cache is kept for reuse.
    pub prefix_cache: usize,
    /// Most replies waiting beyond `max_seqs` (mistralrs queues on its own:
    /// replies under way are bounded by `max_seqs + max_waiting`); one more
    /// is refused at once with [`LlmError::Busy`].
    pub max_waiting: usize,
}

impl LocalConfig {
    /// Defaults for `gguf`.
    pub fn new(gguf: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            gguf: gguf.into(),
            chat_template: None,
            max_seqs: 16,
            prefix_cache: 16,
            max_waiting: crate::DEFAULT_MAX_WAITING,
        }
    }
}

/// A loaded local model (cheap to clone; clones share the model).
#[derive(Clone)]
pub struct LocalModel {
    model: Arc<mistralrs::Model>,
    name: String,
    /// What the engine did (replies, prompt and generated tokens, time),
    /// from the usage mistralrs reports at each reply's end.
    stats: Arc<EngineStats>,
    /// Most replies under way at once (`max_seqs + max_waiting`).
    limit: usize,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel").field("name", &self.name).finish()
    }
}

impl LocalModel {
    /// Loads the model; errors name the file and why.
    pub async fn load(cfg: &LocalConfig) -> Result<LocalModel, LlmError> {
        let fail = crate::load_error(&cfg.gguf);
        crate::require_model_file(&cfg.gguf)?;
        let dir = cfg.gguf.parent().unwrap_or(Path::new(".")).display().to_string();
        let file = cfg
            .gguf
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .ok_or_else(|| fail("not a file name".into()))?;
        let mut builder = GgufModelBuilder::new(&dir, vec![file.clone()])
            .with_token_source(TokenSource::None)
            .with_force_cpu()
            .with_max_num_seqs(cfg.max_seqs.max(1))
            .with_prefix_cache_n(Some(cfg.prefix_cache));
        if let Some(t) = &cfg.chat_template {
            if !t.is_file() {
                return Err(LlmError::Load {
                    path: t.display().to_string(),
                    why: "chat template not found".into(),
                });
            }
            builder = builder.with_chat_template(t.display().to_string());
        }
        let model = builder.build().await.map_err(|e| fail(format!("{e:#}")))?;
        Ok(LocalModel {
            model: Arc::new(model),
            name: file,
            stats: Arc::default(),
            limit: cfg.max_seqs.max(1) + cfg.max_waiting,
        })
    }
}

fn sampling(req: &ChatRequest) -> SamplingParams {
    let mut p = if req.temperature <= 0.0 {
        SamplingParams::deterministic()
    } else {
        let mut p = SamplingParams::deterministic();
        p.temperature = Some(req.temperature);
        p.top_k = None;
        p.top_p = req.top_p;
        p
    };
    p.max_len = Some(req.max_tokens.max(1));
    if !req.stop.is_empty() {
        p.stop_toks = Some(StopTokens::Seqs(req.stop.clone()));
    }
    p
}

#[async_trait::async_trait]
impl ChatModel for LocalModel {
    async fn chat(&self, req: ChatRequest) -> Result<ChatStream, LlmError> {
        let started = Instant::now();
        let under_way = self.stats.enter_queue(self.limit, false)?;
        let mut messages = TextMessages::new();
        for m in &req.messages {
            let role = match m.role {
                Role::System => TextMessageRole::System,
                Role::User => TextMessageRole::User,
                Role::Assistant => TextMessageRole::Assistant,
            };
            messages = messages.add_message(role, &m.content);
        }
        let (engine_tx, mut engine_rx) = mpsc::channel::<Response>(16);
        let weak = engine_tx.downgrade();
        let request = NormalRequest {
            messages: messages.take_messages(),
            sampling_params: sampling(&req),
            response: engine_tx,
            return_logprobs: false,
            is_streaming: true,
            id: self.model.inner().next_request_id(),
            constraint: Constraint::None,
            suffix: None,
            tools: None,
            tool_choice: None,
            logits_processors: None,
            return_raw_logits: false,
            web_search_options: None,
            model_id: None,
            truncate_sequence: false,
        };
        let sender = self
            .model
            .inner()
            .get_sender(None)
            .map_err(|e| LlmError::Generate(e.to_string()))?;
        sender
            .send(Request::Normal(Box::new(request)))
            .await
            .map_err(|e| LlmError::Generate(format!("the model engine stopped: {e}")))?;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::clone(&self.stats);
        let (tx, rx) = mpsc::channel(64);
        // Forward the engine's chunks; when the caller drops the stream, this
        // task ends at once and drops the engine's receiver, so the engine's
        // next send fails and it frees the sequence (one decode step).
        tokio::spawn(async move {
            let _under_way = under_way;
            loop {
                let resp = tokio::select! {
                    _ = tx.closed() => return,
                    r = engine_rx.recv() => r,
                };
                let ev = match resp {
                    None => Err(LlmError::Generate("the model engine dropped the request".into())),
                    Some(Response::Chunk(c)) => {
                        let mut out = Vec::new();
                        let mut finished = false;
                        for ch in &c.choices {
                            if let Some(t) = ch.delta.content.as_deref().filter(|t| !t.is_empty()) {
                                out.push(Ok(ChatEvent::Delta(t.to_string())));
                            }
                            finished |= ch.finish_reason.is_some();
                        }
                        if finished {
                            let u = c.usage.as_ref();
                            if let Some(u) = u {
                                count(&stats, u);
                            }
                            out.push(Ok(ChatEvent::Done(Usage {
                                prompt_tokens: u.map_or(0, |u| u.prompt_tokens),
                                completion_tokens: u.map_or(0, |u| u.completion_tokens),
                                ..Usage::default()
                            })));
                        }
                        for ev in out {
                            if tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                        if finished {
                            return;
                        }
                        continue;
                    }
                    Some(Response::Done(d)) => {
                        count(&stats, &d.usage);
                        Ok(ChatEvent::Done(Usage {
                            prompt_tokens: d.usage.prompt_tokens,
                            completion_tokens: d.usage.completion_tokens,
                            ..Usage::default()
                        }))
                    }
                    Some(Response::ModelError(e, _)) => Err(LlmError::Generate(e)),
                    Some(Response::InternalError(e)) | Some(Response::ValidationError(e)) => {
                        Err(LlmError::Generate(e.to_string()))
                    }
                    Some(_) => Err(LlmError::Generate("unexpected response kind".into())),
                };
                // Anything but a chunk ends the reply.
                let _ = tx.send(ev).await;
                return;
            }
        });
        Ok(ChatStream::new(rx, started).with_probe(Box::new(move || {
            weak.upgrade().map(|s| EngineProbe::new(move || s.is_closed()))
        })))
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    /// A one-token reply: mistralrs keeps the prompt's KV in its prefix
    /// cache, and a later prompt that starts the same way reads only the
    /// rest (the longest cached prefix is reused).
    async fn prefill(&self, messages: Vec<ChatMessage>) -> Result<(), LlmError> {
        self.chat(ChatRequest::new(messages, 1)).await?.text().await.map(|_| ())
    }

    fn engine_stats(&self) -> Option<Arc<EngineStats>> {
        Some(Arc::clone(&self.stats))
    }
}

/// Adds a finished reply's usage to the counters (mistralrs reports no
/// decode steps or reused tokens: those stay at zero).
fn count(stats: &EngineStats, u: &mistralrs::Usage) {
    stats.prompt_tokens.fetch_add(u.prompt_tokens as u64, Ordering::Relaxed);
    stats
        .generated_tokens
        .fetch_add(u.completion_tokens as u64, Ordering::Relaxed);
    let busy = f64::from(u.total_prompt_time_sec + u.total_completion_time_sec);
    stats
        .decode_us
        .fetch_add((busy.max(0.0) * 1e6) as u64, Ordering::Relaxed);
}
