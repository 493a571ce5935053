//! `[asr]`: the speech recogniser's models, pool and timing. Every field has
//! a default; model paths default to the files `voxline models fetch` puts
//! under `$VOXLINE_MODELS`.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use voxline_asr::{DecodeOptions, Doubt, PoolConfig, SegmenterConfig, StreamConfig};
use voxline_sip::config::FieldError;

/// `[asr]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsrConfig {
    /// ggml Whisper model (default: the converted tiny.en).
    pub model: Option<PathBuf>,
    /// Silero VAD ONNX model.
    pub vad_model: Option<PathBuf>,
    /// ONNX Runtime shared library (loaded at run time by `ort`).
    pub onnxruntime: Option<PathBuf>,
    /// Language code, or "auto" for a multilingual model to detect it.
    pub language: String,
    /// Domain words that steer recognition (Whisper's initial prompt).
    pub initial_prompt: Option<String>,
    /// Whisper worker threads shared by all calls.
    pub workers: usize,
    /// CPU threads per worker (default: all cores).
    pub threads_per_worker: Option<usize>,
    /// Decodes that may wait for a worker before callers are held back.
    pub queue: usize,
    /// Re-decode the growing utterance this often for a partial, ms (0: none).
    pub partial_interval_ms: u32,
    /// VAD probability that starts speech.
    pub start_threshold: f32,
    /// VAD probability under which speech may end.
    pub end_threshold: f32,
    /// Shortest speech reported, ms (shorter is noise).
    pub min_speech_ms: u32,
    /// Silence that ends speech, ms.
    pub hangover_ms: u32,
    /// Audio kept before the detected start, ms.
    pub preroll_ms: u32,
    /// Silence after speech kept in the utterance; the final decode starts
    /// after this much silence, ms.
    pub tail_ms: u32,
    /// Longest utterance before it is cut and finalised, ms.
    pub max_utterance_ms: u32,
    /// Shortest encoder window of a final decode, ms (the audio plus 2.5 s
    /// when longer); shorter is faster, too short makes Whisper loop.
    pub min_window_ms: u32,
    /// Whisper's temperature fallback on doubtful decodes (slower finals).
    pub temperature_fallback: bool,
    /// A turn decoded with a mean token log-probability below this is
    /// doubtful: the caller is asked to say it again (-100 turns it off).
    pub doubt_mean_logprob: f32,
    /// A turn Whisper thinks is more likely than this to hold no speech is
    /// doubtful (1 turns it off).
    pub doubt_no_speech: f32,
    /// Hear the end of each turn with the audio end-of-turn model too
    /// (smart-turn v3), when the caller falls silent.
    pub turn_audio: bool,
    /// The audio end-of-turn model (ONNX; default: the fetched smart-turn v3.2).
    pub turn_model: Option<PathBuf>,
    /// Inferences of the audio end-of-turn model at once (one thread each).
    pub turn_sessions: usize,
}

impl Default for AsrConfig {
    fn default() -> AsrConfig {
        let seg = SegmenterConfig::default();
        let stream = StreamConfig::default();
        let pool = PoolConfig::default();
        AsrConfig {
            model: None,
            vad_model: None,
            onnxruntime: None,
            language: "en".into(),
            initial_prompt: None,
            workers: pool.workers,
            threads_per_worker: None,
            queue: pool.queue,
            partial_interval_ms: stream.partial_interval_ms,
            start_threshold: seg.start_threshold,
            end_threshold: seg.end_threshold,
            min_speech_ms: seg.min_speech_ms,
            hangover_ms: seg.hangover_ms,
            preroll_ms: stream.preroll_ms,
            tail_ms: stream.tail_ms,
            max_utterance_ms: stream.max_utterance_ms,
            min_window_ms: stream.min_window_ms,
            temperature_fallback: stream.decode.temperature_fallback,
            doubt_mean_logprob: Doubt::default().min_mean_logprob,
            doubt_no_speech: Doubt::default().max_no_speech,
            turn_audio: true,
            turn_model: None,
            turn_sessions: 2,
        }
    }
}

impl AsrConfig {
    /// Resolves `~/` and relative model paths against the config's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.model,
            &mut self.vad_model,
            &mut self.onnxruntime,
            &mut self.turn_model,
        ] {
            if let Some(path) = p.as_mut() {
                *path = crate::config::resolve_path(base, path);
            }
        }
    }

    /// The Whisper model file.
    pub fn model_path(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::WHISPER))
    }

    /// The VAD model file.
    pub fn vad_path(&self) -> PathBuf {
        self.vad_model
            .clone()
            .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::SILERO_VAD))
    }

    /// The audio end-of-turn model, when `turn_audio` is on.
    pub fn turn_model_path(&self) -> Option<PathBuf> {
        self.turn_audio.then(|| {
            self.turn_model
                .clone()
                .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::SMART_TURN))
        })
    }

    /// The ONNX Runtime library.
    pub fn onnxruntime_path(&self) -> PathBuf {
        self.onnxruntime
            .clone()
            .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::ONNX_RUNTIME))
    }

    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let bad = |field: &str, why: &str| Err(FieldError::new(format!("asr.{field}"), why));
        if !(self.language == "auto"
            || (2..=3).contains(&self.language.len()) && self.language.chars().all(|c| c.is_ascii_lowercase()))
        {
            return bad("language", "must be a language code such as \"en\", or \"auto\"");
        }
        if !(1..=64).contains(&self.workers) {
            return bad("workers", "must be from 1 to 64");
        }
        if self.threads_per_worker.is_some_and(|t| !(1..=256).contains(&t)) {
            return bad("threads_per_worker", "must be from 1 to 256");
        }
        if !(1..=10_000).contains(&self.queue) {
            return bad("queue", "must be from 1 to 10000");
        }
        if !(0.0..1.0).contains(&self.start_threshold) || self.start_threshold == 0.0 {
            return bad("start_threshold", "must be between 0 and 1");
        }
        if !(0.0..=self.start_threshold).contains(&self.end_threshold) {
            return bad("end_threshold", "must be from 0 to start_threshold");
        }
        if self.hangover_ms < 100 || self.hangover_ms > 10_000 {
            return bad("hangover_ms", "must be from 100 to 10000");
        }
        if self.min_speech_ms > 5_000 {
            return bad("min_speech_ms", "must be at most 5000");
        }
        if self.preroll_ms > 1_000 || self.tail_ms > 2_000 {
            return bad(
                if self.preroll_ms > 1_000 {
                    "preroll_ms"
                } else {
                    "tail_ms"
                },
                "preroll_ms must be at most 1000 and tail_ms at most 2000",
            );
        }
        if !(1_000..=28_000).contains(&self.max_utterance_ms) {
            return bad(
                "max_utterance_ms",
                "must be from 1000 to 28000 (Whisper hears at most 30 s at once)",
            );
        }
        if !(2_000..=30_000).contains(&self.min_window_ms) {
            return bad("min_window_ms", "must be from 2000 to 30000");
        }
        if !(-100.0..=0.0).contains(&self.doubt_mean_logprob) {
            return bad("doubt_mean_logprob", "must be from -100 to 0 (a log-probability)");
        }
        if !(0.0..=1.0).contains(&self.doubt_no_speech) {
            return bad("doubt_no_speech", "must be from 0 to 1 (a probability)");
        }
        if !(1..=16).contains(&self.turn_sessions) {
            return bad("turn_sessions", "must be from 1 to 16");
        }
        Ok(())
    }

    /// Checks that the model files are there (when a route listens).
    pub fn check_files(&self) -> Result<(), FieldError> {
        let turn = self.turn_model_path().map(|p| ("turn_model", p));
        for (field, path) in [
            ("model", self.model_path()),
            ("vad_model", self.vad_path()),
            ("onnxruntime", self.onnxruntime_path()),
        ]
        .into_iter()
        .chain(turn)
        {
            if !path.is_file() {
                return Err(FieldError::new(
                    format!("asr.{field}"),
                    format!(
                        "{} not found (voxline models fetch puts the defaults there)",
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// When a decode is too unsure to act on.
    pub fn doubt(&self) -> Doubt {
        Doubt {
            min_mean_logprob: self.doubt_mean_logprob,
            max_no_speech: self.doubt_no_speech,
        }
    }

    /// The worker pool's size.
    pub fn pool(&self) -> PoolConfig {
        PoolConfig {
            workers: self.workers,
            threads_per_worker: self
                .threads_per_worker
                .unwrap_or(PoolConfig::default().threads_per_worker),
            queue: self.queue,
        }
    }

    /// The per-call recogniser's settings.
    pub fn stream(&self) -> StreamConfig {
        StreamConfig {
            segmenter: SegmenterConfig {
                start_threshold: self.start_threshold,
                end_threshold: self.end_threshold,
                min_speech_ms: self.min_speech_ms,
                hangover_ms: self.hangover_ms,
            },
            partial_interval_ms: self.partial_interval_ms,
            preroll_ms: self.preroll_ms,
            tail_ms: self.tail_ms,
            max_utterance_ms: self.max_utterance_ms,
            decode: DecodeOptions {
                language: (self.language != "auto").then(|| self.language.clone()),
                initial_prompt: self.initial_prompt.clone(),
                temperature_fallback: self.temperature_fallback,
                ..DecodeOptions::default()
            },
            fit_audio_ctx: true,
            min_window_ms: self.min_window_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_engine() {
        let c = AsrConfig::default();
        c.validate().unwrap();
        assert_eq!(c.stream().segmenter, SegmenterConfig::default());
        assert_eq!(c.stream().decode.language.as_deref(), Some("en"));
    }

    #[test]
    fn the_turn_model_is_checked_only_when_on() {
        // Any existing file stands in for the other models.
        let present = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        let missing = AsrConfig {
            turn_model: Some("/nonexistent/smart-turn.onnx".into()),
            model: Some(present.clone()),
            vad_model: Some(present.clone()),
            onnxruntime: Some(present),
            ..AsrConfig::default()
        };
        assert_eq!(missing.check_files().unwrap_err().field, "asr.turn_model");
        let off = AsrConfig {
            turn_audio: false,
            ..missing
        };
        assert!(off.check_files().is_ok());
        assert_eq!(off.turn_model_path(), None);
        let bad = AsrConfig {
            turn_sessions: 0,
            ..AsrConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "asr.turn_sessions");
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |c: AsrConfig| c.validate().unwrap_err().field;
        assert_eq!(
            field(AsrConfig {
                end_threshold: 0.7,
                ..AsrConfig::default()
            }),
            "asr.end_threshold"
        );
        assert_eq!(
            field(AsrConfig {
                language: "English".into(),
                ..AsrConfig::default()
            }),
            "asr.language"
        );
        assert_eq!(
            field(AsrConfig {
                max_utterance_ms: 40_000,
                ..AsrConfig::default()
            }),
            "asr.max_utterance_ms"
        );
        assert_eq!(
            field(AsrConfig {
                workers: 0,
                ..AsrConfig::default()
            }),
            "asr.workers"
        );
        let missing = AsrConfig {
            model: Some("/nonexistent/ggml.bin".into()),
            ..AsrConfig::default()
        };
        let e = missing.check_files().unwrap_err();
        assert_eq!(e.field, "asr.model");
        assert!(e.reason.contains("/nonexistent/ggml.bin"), "{}", e.reason);
    }
}
