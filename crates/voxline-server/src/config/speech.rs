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
    /// `[[llm.server]]`: OpenAI-compatible servers answering before the
    /// local engine (an inference pool; decision 0050).
    #[serde(rename = "server")]
    pub servers: Vec<LlmServer>,
    /// A server whose first text takes longer is passed over for the
    /// reply (the next one, else the local engine, answers), ms.
    pub server_first_token_ms: u64,
    /// A server that sends no text for this long in the middle of a reply
    /// is given up for it (the next server, else the local engine, goes on
    /// after what was said), ms.
    pub server_stall_ms: u64,
    /// How often each server's health is checked, s.
    pub server_check_s: u64,
    /// Replies that may wait for a free sequence of the local engine; one
    /// more is refused at once (the caller hears the facts or the fault line
    /// instead of waiting in a queue).
    pub max_waiting: usize,
}

/// `[[llm.server]]`: one OpenAI-compatible `/v1/chat/completions` server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmServer {
    /// Base URL, e.g. `http://10.0.0.5:8080/v1`.
    pub url: String,
    /// The model name sent in requests.
    #[serde(default = "default_server_model")]
    pub model: String,
    /// A file holding the server's bearer token (read at start).
    pub api_key_file: Option<PathBuf>,
}

impl LlmServer {
    /// The server as the client reaches it, its token read from its file;
    /// errors name the field under `at`.
    pub fn remote(
        &self,
        at: &str,
        connect_timeout: std::time::Duration,
    ) -> Result<voxline_llm::RemoteConfig, FieldError> {
        let api_key = match &self.api_key_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| FieldError::new(format!("{at}.api_key_file"), format!("{}: {e}", f.display())))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(voxline_llm::RemoteConfig {
            base_url: self.url.trim_end_matches('/').to_string(),
            model: self.model.clone(),
            api_key,
            connect_timeout,
        })
    }
}

fn default_server_model() -> String {
    "default".into()
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
            servers: Vec::new(),
            server_first_token_ms: 1500,
            server_stall_ms: 2000,
            max_waiting: voxline_llm::DEFAULT_MAX_WAITING,
            server_check_s: 5,
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
        for s in &mut self.servers {
            if let Some(p) = s.api_key_file.as_mut() {
                *p = resolve_path(base, p);
            }
        }
    }

    /// The pool's servers, their tokens read from their files; errors
    /// name the field.
    pub fn pool_servers(&self) -> Result<Vec<voxline_llm::RemoteConfig>, FieldError> {
        let timeout = std::time::Duration::from_millis(self.server_first_token_ms);
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| s.remote(&format!("llm.server[{i}]"), timeout))
            .collect()
    }

    /// How the pool waits for and checks its servers.
    pub fn pool_settings(&self) -> voxline_llm::PoolSettings {
        voxline_llm::PoolSettings {
            first_token_timeout: std::time::Duration::from_millis(self.server_first_token_ms),
            stall_timeout: std::time::Duration::from_millis(self.server_stall_ms),
            health_interval: std::time::Duration::from_secs(self.server_check_s),
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
            return Err(FieldError::new(
                "llm.threads",
                "applies to the llama.cpp engine only (mistralrs follows RAYON_NUM_THREADS)",
            ));
        }
        for (i, s) in self.servers.iter().enumerate() {
            let rest = s.url.strip_prefix("http://").or_else(|| s.url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace)) {
                return Err(FieldError::new(
                    format!("llm.server[{i}].url"),
                    "must be an http:// or https:// URL such as http://10.0.0.5:8080/v1",
                ));
            }
            if s.model.trim().is_empty() {
                return Err(FieldError::new(format!("llm.server[{i}].model"), "must not be empty"));
            }
        }
        if !(100..=60_000).contains(&self.server_first_token_ms) {
            return Err(FieldError::new(
                "llm.server_first_token_ms",
                "must be from 100 to 60000",
            ));
        }
        if !(100..=600_000).contains(&self.server_stall_ms) {
            return Err(FieldError::new("llm.server_stall_ms", "must be from 100 to 600000"));
        }
        if !(1..=4096).contains(&self.max_waiting) {
            return Err(FieldError::new("llm.max_waiting", "must be from 1 to 4096"));
        }
        if !(1..=3600).contains(&self.server_check_s) {
            return Err(FieldError::new("llm.server_check_s", "must be from 1 to 3600"));
        }
        if files {
            // The servers' key files are read at start: they must be readable.
            self.pool_servers()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> LlmServer {
        LlmServer {
            url: url.into(),
            model: "default".into(),
            api_key_file: None,
        }
    }

    #[test]
    fn pool_servers_are_checked_and_named_by_field() {
        let with = |servers: Vec<LlmServer>| LlmConfig {
            servers,
            ..LlmConfig::default()
        };
        assert!(with(vec![server("http://10.0.0.5:8080/v1/")]).validate(false).is_ok());
        let bad = with(vec![server("http://10.0.0.5:8080/v1"), server("10.0.0.6:8080")]);
        assert_eq!(bad.validate(false).unwrap_err().field, "llm.server[1].url");
        let slow = LlmConfig {
            server_first_token_ms: 50,
            ..with(vec![server("https://gpu.example/v1")])
        };
        assert_eq!(slow.validate(false).unwrap_err().field, "llm.server_first_token_ms");
        // The trailing slash goes; a key file that is not there is named.
        let ok = with(vec![server("http://10.0.0.5:8080/v1/")]);
        assert_eq!(ok.pool_servers().unwrap()[0].base_url, "http://10.0.0.5:8080/v1");
        let keyless = with(vec![LlmServer {
            api_key_file: Some("/nonexistent/key".into()),
            ..server("http://10.0.0.5:8080/v1")
        }]);
        assert_eq!(keyless.pool_servers().unwrap_err().field, "llm.server[0].api_key_file");
    }
}
