//! voxline language models: one chat interface, [`ChatModel`], whose
//! replies stream as text deltas and stop when the stream is dropped or
//! cancelled. Backends: a local GGUF model on llama.cpp or on mistralrs
//! (CPU, no hub access) and any OpenAI-compatible `/v1/chat/completions` server with
//! SSE streaming (vLLM, llama.cpp server, mistralrs-server), several of
//! them pooled in front of the local engine ([`InferencePool`]).

#![warn(missing_docs)]

pub mod chat;
pub mod embed;
pub mod llamacpp;
mod llamacpp_engine;
pub mod local;
pub mod local_engine;
pub mod pool;
pub mod remote;
pub mod text_out;

pub use chat::{ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, EngineProbe, Role, Usage};
pub use embed::{EmbedError, Embedder};
pub use llamacpp::{EngineStats, LlamaCppConfig, LlamaCppModel};
pub use local::{LocalConfig, LocalModel};
pub use local_engine::{load_local, LocalEngine, LocalOptions};
pub use pool::{EndpointStatus, InferencePool, PoolSettings};
pub use remote::{RemoteConfig, RemoteModel};

/// Replies that may wait for a local engine's sequence by default
/// (`[llm] max_waiting`): past it a reply is refused at once.
pub const DEFAULT_MAX_WAITING: usize = 16;

/// Errors from language models.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model could not be loaded.
    #[error("loading the language model {path}: {why}")]
    Load {
        /// The file or URL.
        path: String,
        /// Why.
        why: String,
    },
    /// The request was refused or generation failed.
    #[error("language model: {0}")]
    Generate(String),
    /// The engine has as many replies waiting as it may hold: refused at
    /// once, so the caller hears the facts or the fault line now rather than
    /// after a queue (`[llm] max_waiting`).
    #[error("language model busy: {0}")]
    Busy(String),
    /// The remote server could not be reached or answered badly.
    #[error("language model server {url}: {why}")]
    Remote {
        /// The endpoint.
        url: String,
        /// Why.
        why: String,
    },
}

/// The error for a local model file that failed to load: names the file and why.
pub(crate) fn load_error(gguf: &std::path::Path) -> impl Fn(String) -> LlmError + '_ {
    move |why| LlmError::Load {
        path: gguf.display().to_string(),
        why,
    }
}

/// Refuses a model path that is not a file, naming it.
pub(crate) fn require_model_file(gguf: &std::path::Path) -> Result<(), LlmError> {
    if gguf.is_file() {
        Ok(())
    } else {
        Err(load_error(gguf)(
            "no such file (voxline models fetch puts the default model there)".into(),
        ))
    }
}
