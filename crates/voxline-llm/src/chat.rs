//! The chat interface every backend implements.

use crate::LlmError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions and domain context.
    System,
    /// The caller.
    User,
    /// The agent.
    Assistant,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }
}

/// A chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far (system prompt first).
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature; 0 decodes greedily.
    pub temperature: f64,
    /// Nucleus sampling (None: off).
    pub top_p: Option<f64>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Generation stops before any of these strings.
    pub stop: Vec<String>,
}

impl ChatRequest {
    /// A greedy request for these messages, up to `max_tokens`.
    pub fn new(messages: Vec<ChatMessage>, max_tokens: usize) -> ChatRequest {
        ChatRequest {
            messages,
            temperature: 0.0,
            top_p: None,
            max_tokens,
            stop: Vec::new(),
        }
    }
}

/// What a finished reply cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// From the request to the first text.
    pub first_token: Duration,
    /// From the request to the end.
    pub total: Duration,
}

impl Usage {
    /// Generation speed after the first token, tokens per second.
    pub fn tokens_per_sec(&self) -> f64 {
        let gen = self.total.saturating_sub(self.first_token).as_secs_f64();
        if self.completion_tokens > 1 && gen > 0.0 {
            (self.completion_tokens - 1) as f64 / gen
        } else {
            0.0
        }
    }
}

/// A piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// More text.
    Delta(String),
    /// The reply is complete (or hit `max_tokens` / a stop string).
    Done(Usage),
}

/// Tells whether the backend has let go of a reply (its channel closed).
pub struct EngineProbe(Box<dyn Fn() -> bool + Send + Sync>);

impl EngineProbe {
    /// A probe answering with `closed`.
    pub fn new(closed: impl Fn() -> bool + Send + Sync + 'static) -> EngineProbe {
        EngineProbe(Box::new(closed))
    }

    /// Whether the backend's side of the reply is closed.
    pub fn is_closed(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for EngineProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineProbe")
    }
}

/// Makes an [`EngineProbe`] while the backend still holds the reply.
pub type ProbeMaker = Box<dyn Fn() -> Option<EngineProbe> + Send + Sync>;

/// A reply being generated. Dropping it (or [`ChatStream::cancel`]) stops
/// the generation: the backend notices at its next step and frees the
/// sequence.
pub struct ChatStream {
    rx: mpsc::Receiver<Result<ChatEvent, LlmError>>,
    started: Instant,
    first_token: Option<Duration>,
    done: bool,
    probe: Option<ProbeMaker>,
    /// Set while the caller wants generation paused (backends that can pause).
    hold: Option<Arc<AtomicBool>>,
    /// Prompt tokens the backend read for this reply, once it knows.
    prompt_read: Option<Arc<std::sync::OnceLock<usize>>>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream").field("done", &self.done).finish()
    }
}

impl ChatStream {
    /// A stream fed through `rx` by a backend; `started` is the request time.
    pub fn new(rx: mpsc::Receiver<Result<ChatEvent, LlmError>>, started: Instant) -> ChatStream {
        ChatStream {
            rx,
            started,
            first_token: None,
            done: false,
            probe: None,
            hold: None,
            prompt_read: None,
        }
    }

    /// Lets [`ChatStream::prompt_read`] report what the backend sets in `read`.
    pub fn with_prompt_read(mut self, read: Arc<std::sync::OnceLock<usize>>) -> ChatStream {
        self.prompt_read = Some(read);
        self
    }

    /// Prompt tokens the backend read for this reply (the rest of the
    /// prompt was reused from its cache), once the reply has started;
    /// `None` from backends that do not say.
    pub fn prompt_read(&self) -> Option<usize> {
        self.prompt_read.as_ref().and_then(|r| r.get().copied())
    }

    /// Lets [`ChatStream::hold`] pause the backend through `flag`.
    pub fn with_hold(mut self, flag: Arc<AtomicBool>) -> ChatStream {
        self.hold = Some(flag);
        self
    }

    /// Pauses (`true`) or resumes the generation. A voice reply holds it
    /// while a phrase is synthesised, so the model and the voice do not
    /// share the CPU when the phrase's audio is wanted first. Backends that
    /// cannot pause go on.
    pub fn hold(&self, on: bool) {
        if let Some(flag) = &self.hold {
            flag.store(on, Ordering::Relaxed);
        }
    }

    /// Lets callers check that the backend lets go when the stream is dropped.
    pub fn with_probe(mut self, probe: ProbeMaker) -> ChatStream {
        self.probe = Some(probe);
        self
    }

    /// A probe of the backend's side of this reply (None when the backend
    /// has none, or has already finished).
    pub fn engine_closed_probe(&self) -> Option<EngineProbe> {
        self.probe.as_ref().and_then(|p| p())
    }

    /// The next event; `None` after `Done`, an error or a cancel. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<ChatEvent, LlmError>> {
        if self.done {
            return None;
        }
        let ev = self.rx.recv().await;
        match &ev {
            Some(Ok(ChatEvent::Delta(_))) if self.first_token.is_none() => {
                self.first_token = Some(self.started.elapsed());
            }
            Some(Ok(ChatEvent::Done(_))) | Some(Err(_)) | None => self.done = true,
            _ => {}
        }
        ev.map(|e| {
            e.map(|ev| match ev {
                // Time to first token as the caller saw it.
                ChatEvent::Done(u) => ChatEvent::Done(Usage {
                    first_token: self.first_token.unwrap_or(u.first_token),
                    total: self.started.elapsed(),
                    ..u
                }),
                other => other,
            })
        })
    }

    /// Collects the whole reply (for tools and tests).
    pub async fn text(mut self) -> Result<(String, Usage), LlmError> {
        let mut text = String::new();
        while let Some(ev) = self.next().await {
            match ev? {
                ChatEvent::Delta(d) => text.push_str(&d),
                ChatEvent::Done(u) => return Ok((text, u)),
            }
        }
        Err(LlmError::Generate("the reply ended without finishing".into()))
    }

    /// Time from the request to the first text, once there was some.
    pub fn first_token(&self) -> Option<Duration> {
        self.first_token
    }

    /// When the first text arrived, once it has.
    pub fn first_token_at(&self) -> Option<Instant> {
        self.first_token.map(|d| self.started + d)
    }

    /// Stops the generation now (the same as dropping the stream).
    pub fn cancel(&mut self) {
        self.done = true;
        self.rx.close();
    }
}

/// A language model that streams chat replies.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// Starts a reply.
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError>;

    /// A short name for logs and metrics.
    fn name(&self) -> String;

    /// Runs one short request with this system prompt, so the first call
    /// pays for no warm-up and (on local engines) the prompt's KV is cached.
    async fn warm(&self, system: &str) -> Result<(), LlmError> {
        let req = ChatRequest::new(
            vec![
                ChatMessage::new(Role::System, system),
                ChatMessage::new(Role::User, "Hello"),
            ],
            4,
        );
        self.chat(req).await?.text().await.map(|_| ())
    }

    /// Reads a prompt into the model's cache without answering it, so a
    /// request that starts with the same messages later reads only what
    /// differs (the caller's question, prefilled from a partial transcript
    /// while they still speak). Backends without a prompt cache of their
    /// own do nothing.
    async fn prefill(&self, _messages: Vec<ChatMessage>) -> Result<(), LlmError> {
        Ok(())
    }

    /// The counters of the engine's work (prompt tokens read, tokens
    /// generated, decode time), for engines that keep them.
    fn engine_stats(&self) -> Option<std::sync::Arc<crate::EngineStats>> {
        None
    }
}
