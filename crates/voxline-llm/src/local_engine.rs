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

/// Loads a local GGUF model on `engine`, with its own chat template or
/// `chat_template`, and `threads` per decode step on llama.cpp (0: one per
/// core; mistralrs picks its own); errors name the file and why. On
/// llama.cpp, prompts read ahead wait while `yield_to` is above zero (see
/// [`LlamaCppConfig::yield_to`]).
pub async fn load_local(
    engine: LocalEngine,
    gguf: &Path,
    chat_template: Option<PathBuf>,
    threads: usize,
    yield_to: Option<Arc<AtomicUsize>>,
) -> Result<Arc<dyn ChatModel>, LlmError> {
    Ok(match engine {
        LocalEngine::LlamaCpp => {
            let mut cfg = LlamaCppConfig::new(gguf);
            cfg.chat_template = chat_template;
            cfg.threads = threads;
            cfg.yield_to = yield_to;
            Arc::new(LlamaCppModel::load(&cfg).await?)
        }
        LocalEngine::Mistralrs => {
            let mut cfg = LocalConfig::new(gguf);
            cfg.chat_template = chat_template;
            Arc::new(LocalModel::load(&cfg).await?)
        }
    })
}
