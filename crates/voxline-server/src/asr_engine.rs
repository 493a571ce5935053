//! The server's speech recogniser: one Whisper model and worker pool shared
//! by every call, and a streaming recogniser (with its own VAD state) per
//! call that listens.

use crate::config::asr::AsrConfig;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use voxline_asr::{AsrError, AsrPool, Doubt, SileroVad, StreamConfig, StreamingRecognizer, TurnModel, WhisperModel};

/// The loaded recogniser.
pub struct AsrEngine {
    pool: AsrPool,
    stream: StreamConfig,
    onnxruntime: PathBuf,
    vad_model: PathBuf,
    doubt: Doubt,
    /// The audio end-of-turn model (`asr.turn_audio`).
    turn_model: Option<Arc<TurnModel>>,
}

impl std::fmt::Debug for AsrEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsrEngine").field("pool", &self.pool).finish()
    }
}

impl AsrEngine {
    /// Loads the model, starts the workers and checks the VAD loads.
    pub fn start(cfg: &AsrConfig) -> anyhow::Result<AsrEngine> {
        let model = WhisperModel::load(&cfg.model_path())?;
        let pool = AsrPool::start(Arc::new(model), cfg.pool()).context("starting the recognition workers")?;
        let turn_model = match cfg.turn_model_path() {
            Some(path) => Some(TurnModel::load(&cfg.onnxruntime_path(), &path, cfg.turn_sessions)?),
            None => None,
        };
        let engine = AsrEngine {
            pool,
            stream: cfg.stream(),
            onnxruntime: cfg.onnxruntime_path(),
            vad_model: cfg.vad_path(),
            doubt: cfg.doubt(),
            turn_model,
        };
        // Fail at start-up, not on the first call, when the VAD cannot load.
        SileroVad::load(&engine.onnxruntime, &engine.vad_model)?;
        let p = engine.pool.config();
        tracing::info!(
            model = %cfg.model_path().display(),
            workers = p.workers,
            threads_per_worker = p.threads_per_worker,
            turn_model = engine.turn_model.as_ref().map(|m| m.path().display().to_string()),
            "speech recognition ready"
        );
        Ok(engine)
    }

    /// A recogniser for one call's caller audio (16 kHz frames), without
    /// the audio end-of-turn model. `domain`: words of the call's domain (a
    /// pack's vocabulary) that steer it, after the server's own
    /// `asr.initial_prompt`.
    pub fn recognizer(&self, domain: Option<&str>) -> Result<StreamingRecognizer, AsrError> {
        self.recognizer_hearing(domain, false)
    }

    /// Like [`recognizer`](Self::recognizer); `turn_audio`: with the audio
    /// end-of-turn model (when one is loaded), for a conversation's turns.
    pub fn recognizer_hearing(&self, domain: Option<&str>, turn_audio: bool) -> Result<StreamingRecognizer, AsrError> {
        let vad = SileroVad::load(&self.onnxruntime, &self.vad_model)?;
        let mut stream = self.stream.clone();
        stream.decode.initial_prompt = joined_prompt(stream.decode.initial_prompt.as_deref(), domain);
        let mut rec = StreamingRecognizer::new(self.pool.clone(), vad, stream);
        if let Some(model) = self.turn_model.as_ref().filter(|_| turn_audio) {
            rec.set_turn_model(model.clone());
        }
        Ok(rec)
    }

    /// Whether the audio end-of-turn model is loaded.
    pub fn has_turn_model(&self) -> bool {
        self.turn_model.is_some()
    }

    /// When a decode is too unsure to act on (`asr.doubt_*`).
    pub fn doubt(&self) -> Doubt {
        self.doubt
    }

    /// The shared worker pool (for its counters).
    pub fn pool(&self) -> &AsrPool {
        &self.pool
    }
}

/// The server's prompt and a domain's, in that order; `None` when both are
/// empty.
fn joined_prompt(server: Option<&str>, domain: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [server, domain]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::joined_prompt;

    #[test]
    fn the_domain_words_follow_the_servers() {
        assert_eq!(joined_prompt(None, None), None);
        assert_eq!(joined_prompt(Some(" "), Some("")), None);
        assert_eq!(
            joined_prompt(None, Some("Harbor Bank. PIN.")).as_deref(),
            Some("Harbor Bank. PIN.")
        );
        assert_eq!(
            joined_prompt(Some("Acme."), Some("Harbor Bank.")).as_deref(),
            Some("Acme. Harbor Bank.")
        );
    }
}
