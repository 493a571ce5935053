//! `[analysis]`: the language model of the work after a call (outcome
//! items judged with a quote, summaries checked against the transcript).
//! Post-call work may use a larger model than the live calls: a GGUF of
//! its own or an OpenAI-compatible server.

use crate::config::resolve_path;
use crate::config::speech::LlmServer;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use voxline_sip::config::FieldError;

/// `[analysis]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// `"agent"`: the `[llm]` model the agents use (its engine or pool);
    /// `"none"`: no model (outcome items stay unsure, summaries are the
    /// call's own sentences); else a GGUF file, loaded once on the `[llm]`
    /// engine settings.
    pub model: String,
    /// An OpenAI-compatible server for post-call work (`[analysis.server]`),
    /// instead of `model`.
    pub server: Option<LlmServer>,
    /// With the agents' own model, the model's part of an analysis waits
    /// up to this long for this node to have no call up (a reply to a
    /// caller never queues behind a summary), s (0 to 60: the analyser
    /// holds a call for 120 s); then goes ahead.
    pub idle_wait_s: u64,
    /// Time allowed for the server to answer, ms.
    pub server_timeout_ms: u64,
}

impl Default for AnalysisConfig {
    fn default() -> AnalysisConfig {
        AnalysisConfig {
            model: "agent".into(),
            server: None,
            idle_wait_s: 60,
            server_timeout_ms: 10_000,
        }
    }
}

/// Which model post-call work uses.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisModel {
    /// The agents' own (`[llm]`).
    Agent,
    /// None.
    Off,
    /// A GGUF of its own.
    File(PathBuf),
    /// A server.
    Server(voxline_llm::RemoteConfig),
}

impl AnalysisConfig {
    /// Makes a relative model or token path relative to the config file.
    pub fn resolve_paths(&mut self, base: &Path) {
        if !matches!(self.model.as_str(), "agent" | "none") {
            self.model = resolve_path(base, Path::new(&self.model))
                .to_string_lossy()
                .into_owned();
        }
        if let Some(p) = self.server.as_mut().and_then(|s| s.api_key_file.as_mut()) {
            *p = resolve_path(base, p);
        }
    }

    /// The model chosen, checked: a file that is not there, a server
    /// without a URL or an unreadable token is an error naming the field.
    pub fn choice(&self) -> Result<AnalysisModel, FieldError> {
        if let Some(server) = &self.server {
            if self.model != "agent" {
                return Err(FieldError::new(
                    "analysis.model",
                    "give either a model or [analysis.server], not both",
                ));
            }
            if !(server.url.starts_with("http://") || server.url.starts_with("https://")) {
                return Err(FieldError::new(
                    "analysis.server.url",
                    "must start with http:// or https://",
                ));
            }
            if !(100..=600_000).contains(&self.server_timeout_ms) {
                return Err(FieldError::new("analysis.server_timeout_ms", "must be 100 to 600000"));
            }
            let timeout = Duration::from_millis(self.server_timeout_ms);
            return Ok(AnalysisModel::Server(server.remote("analysis.server", timeout)?));
        }
        // With the model's own deadlines, within the analyser's lease (120 s).
        if self.idle_wait_s > 60 {
            return Err(FieldError::new("analysis.idle_wait_s", "must be 0 to 60"));
        }
        match self.model.as_str() {
            "agent" => Ok(AnalysisModel::Agent),
            "none" => Ok(AnalysisModel::Off),
            "" => Err(FieldError::new("analysis.model", "must be agent, none or a GGUF file")),
            file => {
                let p = PathBuf::from(file);
                if !p.is_file() {
                    return Err(FieldError::new(
                        "analysis.model",
                        format!("{}: no such file (agent, none or a GGUF file)", p.display()),
                    ));
                }
                Ok(AnalysisModel::File(p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<AnalysisModel, FieldError> {
        let mut cfg: AnalysisConfig = toml::from_str(text).expect("toml");
        cfg.resolve_paths(Path::new("/nowhere"));
        cfg.choice()
    }

    #[test]
    fn the_model_of_post_call_work_is_chosen_and_checked() {
        assert_eq!(read("").expect("default"), AnalysisModel::Agent);
        assert_eq!(read("model = \"none\"").expect("off"), AnalysisModel::Off);
        assert_eq!(read("idle_wait_s = 61").unwrap_err().field, "analysis.idle_wait_s");
        let e = read("model = \"big.gguf\"").unwrap_err();
        assert_eq!(e.field, "analysis.model");
        assert!(e.reason.contains("/nowhere/big.gguf"), "{}", e.reason);
        let Ok(AnalysisModel::Server(s)) = read("[server]\nurl = \"http://10.0.0.5:8080/v1/\"\nmodel = \"qwen\"")
        else {
            panic!("a server");
        };
        assert_eq!(
            (s.base_url.as_str(), s.model.as_str()),
            ("http://10.0.0.5:8080/v1", "qwen")
        );
        let e = read("[server]\nurl = \"10.0.0.5\"").unwrap_err();
        assert_eq!(e.field, "analysis.server.url");
        let e = read("[server]\nurl = \"http://h/v1\"\napi_key_file = \"key\"").unwrap_err();
        assert_eq!(e.field, "analysis.server.api_key_file");
        let e = read("model = \"none\"\n[server]\nurl = \"http://h/v1\"").unwrap_err();
        assert!(e.reason.contains("not both"), "{}", e.reason);
    }
}
