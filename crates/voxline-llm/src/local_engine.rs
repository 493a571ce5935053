//! Choosing the engine that runs a local GGUF model.

use crate::{ChatModel, LlamaCppConfig, LlamaCppModel, LlmError, LocalConfig, LocalModel};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// The inference engine for a local GGUF model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalEngine {
    /// llama.cpp (the default: about 2-3x mistralrs' speed on a small CPU).
    #[default]
    LlamaCpp,
    /// mistralrs (pure Rust).
    Mistralrs,
}

impl std::str::FromStr for LocalEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<LocalEngine, String> {
        match s {
            "llama.cpp" | "llamacpp" | "llama-cpp" => Ok(LocalEngine::LlamaCpp),
            "mistralrs" | "mistral.rs" => Ok(LocalEngine::Mistralrs),
            other => Err(format!("unknown engine {other:?} (llama.cpp or mistralrs)")),
        }
    }
}

impl std::fmt::Display for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LocalEngine::LlamaCpp => "llama.cpp",
            LocalEngine::Mistralrs => "mistralrs",
        })
    }
}

/// How to run a local model beyond its file and engine.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// A chat template overriding the GGUF's.
    pub chat_template: Option<PathBuf>,
    /// CPU threads per decode step on llama.cpp (0: one per core; mistralrs
    /// picks its own).
    pub threads: usize,
    /// On llama.cpp, prompts read ahead wait while this is above zero (see
    /// [`LlamaCppConfig::yield_to`]).
    pub yield_to: Option<Arc<AtomicUsize>>,
    /// Most replies waiting for a sequence; one more is refused at once
    /// with [`LlmError::Busy`].
    pub max_waiting: usize,
}

impl Default for LocalOptions {
    fn default() -> LocalOptions {
        LocalOptions {
            chat_template: None,
            threads: 0,
            yield_to: None,
            max_waiting: crate::DEFAULT_MAX_WAITING,
        }
    }
}

/// Loads a local GGUF model on `engine` with `opts`; errors name the file
/// and why.
pub async fn load_local(engine: LocalEngine, gguf: &Path, opts: LocalOptions) -> Result<Arc<dyn ChatModel>, LlmError> {
    Ok(match engine {
        LocalEngine::LlamaCpp => {
            let mut cfg = LlamaCppConfig::new(gguf);
            cfg.chat_template = opts.chat_template;
            cfg.threads = opts.threads;
            cfg.yield_to = opts.yield_to;
            cfg.max_waiting = opts.max_waiting;
            Arc::new(LlamaCppModel::load(&cfg).await?)
        }
        LocalEngine::Mistralrs => {
            let mut cfg = LocalConfig::new(gguf);
            cfg.chat_template = opts.chat_template;
            cfg.max_waiting = opts.max_waiting;
            Arc::new(LocalModel::load(&cfg).await?)
        }
    })
}
