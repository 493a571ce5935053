//! `[llm]` and `[tts]`: the language model and the voice the agent routes
//! use. Every field has a default; model paths default to the files
//! `voxline models fetch` puts under `$VOXLINE_MODELS`.

use crate::config::resolve_path;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use voxline_llm::LocalEngine;
use voxline_sip::config::FieldError;

/// `[llm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// The engine running the local model: "llama.cpp" or "mistralrs".
    pub engine: String,
    /// The GGUF file (default: SmolLM2-135M-Instruct, Q8_0).
    pub model: Option<PathBuf>,
    /// A chat template overriding the GGUF's.
    pub chat_template: Option<PathBuf>,
    /// CPU threads of each decode step on llama.cpp (0: one per core).
    pub threads: usize,
    /// Find knowledge by meaning as well as by words, with the sentence-
    /// embedding model (decision 0041).
    pub embedding: bool,
    /// The sentence-embedding model's folder (`config.json`,
    /// `tokenizer.json`, `model.safetensors`; default: all-MiniLM-L6-v2).
    pub embedding_model: Option<PathBuf>,
}

impl Default for LlmConfig {
    fn default() -> LlmConfig {
        LlmConfig {
            engine: "llama.cpp".into(),
            model: None,
            chat_template: None,
            threads: 0,
            embedding: true,
            embedding_model: None,
        }
    }
}

/// `[tts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsSection {
    /// The Piper voice (`.onnx`, its `.onnx.json` beside it; default: en_US joe medium).
    pub voice: Option<PathBuf>,
    /// Synthesis worker threads shared by all calls.
    pub workers: usize,
    /// ONNX Runtime threads per synthesis worker (0: one per core).
    pub threads: usize,
}

impl Default for TtsSection {
    fn default() -> TtsSection {
        TtsSection {
            voice: None,
            workers: 1,
            threads: 0,
        }
    }
}

impl LlmConfig {
    /// Resolves relative paths against the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.model, &mut self.chat_template, &mut self.embedding_model]
            .into_iter()
            .flatten()
        {
            *p = resolve_path(base, p);
        }
    }

    /// The engine named by `engine`.
    pub fn engine(&self) -> Result<LocalEngine, FieldError> {
        self.engine
            .parse()
            .map_err(|e: String| FieldError::new("llm.engine", e))
    }

    /// The model file.
    pub fn model_path(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::LLM))
    }

    /// The sentence-embedding model's folder, when knowledge is found by meaning.
    pub fn embedding_path(&self) -> Option<PathBuf> {
        self.embedding.then(|| {
            self.embedding_model
                .clone()
                .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::EMBEDDING))
        })
    }

    /// Checks the fields, and the files when a route needs them.
    pub fn validate(&self, files: bool) -> Result<(), FieldError> {
        let engine = self.engine()?;
        if self.threads > 256 {
            return Err(FieldError::new("llm.threads", "must be from 0 (one per core) to 256"));
        }
        if self.threads > 0 && engine != LocalEngine::LlamaCpp {
            return Err(FieldError::new("llm.threads", "applies to the llama.cpp engine only"));
        }
        if files {
            let m = self.model_path();
            if !m.is_file() {
                return Err(FieldError::new(
                    "llm.model",
                    format!(
                        "{} not found (voxline models fetch puts the default there)",
                        m.display()
                    ),
                ));
            }
            if let Some(dir) = self.embedding_path() {
                let weights = dir.join("model.safetensors");
                if !weights.is_file() {
                    return Err(FieldError::new(
                        "llm.embedding_model",
                        format!(
                            "{} not found (voxline models fetch puts the default there; embedding = false finds knowledge by words alone)",
                            weights.display()
                        ),
                    ));
                }
            }
            if let Some(t) = &self.chat_template {
                if !t.is_file() {
                    return Err(FieldError::new(
                        "llm.chat_template",
                        format!("{} not found", t.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl TtsSection {
    /// Resolves relative paths against the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.voice.as_mut() {
            *p = resolve_path(base, p);
        }
    }

    /// The voice file.
    pub fn voice_path(&self) -> PathBuf {
        self.voice
            .clone()
            .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::PIPER_VOICE))
    }

    /// Checks the fields, and the files when a route needs them.
    pub fn validate(&self, files: bool) -> Result<(), FieldError> {
        if !(1..=8).contains(&self.workers) {
            return Err(FieldError::new("tts.workers", "must be 1 to 8"));
        }
        if self.threads > 256 {
            return Err(FieldError::new("tts.threads", "must be from 0 (one per core) to 256"));
        }
        if files {
            let v = self.voice_path();
            if !v.is_file() {
                return Err(FieldError::new(
                    "tts.voice",
                    format!(
                        "{} not found (voxline models fetch puts the default there)",
                        v.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}
