//! A Piper (VITS) voice: its `.onnx.json` config, and synthesis of one
//! phrase through ONNX Runtime. Inputs: `input [1, N]` i64 phoneme ids,
//! `input_lengths [1]`, `scales [3]` (noise, length, noise_w), `sid` for
//! multi-speaker voices; output `[1, 1, 1, T]` f32 at the voice's rate.

use crate::espeak::phonemize;
use crate::TtsError;
use ort::session::Session;
use ort::value::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use unicode_normalization::UnicodeNormalization;

/// The parts of a Piper voice config voxline uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct VoiceConfig {
    /// Output audio.
    pub audio: AudioConfig,
    /// espeak-ng voice for phonemes.
    pub espeak: EspeakConfig,
    /// Default synthesis scales.
    pub inference: InferenceConfig,
    /// Phoneme (one character after NFD) → ids.
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// Speakers of a multi-speaker voice.
    #[serde(default)]
    pub num_speakers: u32,
}

/// `audio` of a voice config.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AudioConfig {
    /// Hz.
    pub sample_rate: u32,
}

/// `espeak` of a voice config.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EspeakConfig {
    /// e.g. "en-us".
    pub voice: String,
}

/// `inference` of a voice config.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct InferenceConfig {
    /// Noise of the generator.
    pub noise_scale: f32,
    /// Speaking rate: above 1 is slower.
    pub length_scale: f32,
    /// Noise of the duration predictor.
    pub noise_w: f32,
}

impl VoiceConfig {
    /// Reads `path` (`<voice>.onnx.json`); errors name the file.
    pub fn load(path: &Path) -> Result<VoiceConfig, TtsError> {
        let fail = |why: String| TtsError::Load {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let cfg: VoiceConfig =
            serde_json::from_str(&text).map_err(|e| fail(format!("not a Piper voice config: {e}")))?;
        for key in ["^", "$", "_"] {
            if !cfg.phoneme_id_map.contains_key(key) {
                return Err(fail(format!("phoneme_id_map has no {key:?}")));
            }
        }
        if cfg.audio.sample_rate == 0 || cfg.audio.sample_rate % 50 != 0 {
            return Err(fail(format!("unusable sample rate {}", cfg.audio.sample_rate)));
        }
        Ok(cfg)
    }

    /// Phoneme ids of an IPA string: BOS, PAD, then each phoneme followed by
    /// PAD, then EOS (Piper's layout); unknown phonemes are skipped.
    pub fn phoneme_ids(&self, ipa: &str) -> Vec<i64> {
        let id = |k: &str| self.phoneme_id_map.get(k).cloned().unwrap_or_default();
        let pad = id("_");
        let mut ids = id("^");
        ids.extend_from_slice(&pad);
        let mut buf = [0u8; 4];
        for c in ipa.nfd() {
            if let Some(p) = self.phoneme_id_map.get(c.encode_utf8(&mut buf) as &str) {
                ids.extend_from_slice(p);
                ids.extend_from_slice(&pad);
            }
        }
        ids.extend(id("$"));
        ids
    }
}

/// A loaded voice: one ONNX session (a synthesis worker owns one).
pub struct PiperVoice {
    session: Session,
    config: VoiceConfig,
    model: PathBuf,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice").field("model", &self.model).finish()
    }
}

impl PiperVoice {
    /// Loads `model` (`.onnx`, its config next to it as `.onnx.json`) with
    /// ONNX Runtime from `runtime_lib`, on `threads` intra-op threads.
    pub fn load(runtime_lib: &Path, model: &Path, threads: usize) -> Result<PiperVoice, TtsError> {
        let mut json = model.as_os_str().to_owned();
        json.push(".json");
        let config = VoiceConfig::load(Path::new(&json))?;
        if !model.is_file() {
            return Err(TtsError::Load {
                path: model.display().to_string(),
                why: "no such file (voxline models fetch puts the default voice there)".into(),
            });
        }
        let session = voxline_onnx::session(runtime_lib, model, threads).map_err(|e| TtsError::Load {
            path: e.path,
            why: e.why,
        })?;
        Ok(PiperVoice {
            session,
            config,
            model: model.to_path_buf(),
        })
    }

    /// The voice's config.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// Sets the speaking rate (`length_scale`: above 1 is slower).
    pub fn set_length_scale(&mut self, scale: f32) {
        self.config.inference.length_scale = scale;
    }

    /// Output sample rate, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    /// Speaks `text` (already normalised): 16-bit samples at the voice's rate.
    pub fn synthesize(&mut self, text: &str) -> Result<Vec<i16>, TtsError> {
        let ipa = phonemize(text, &self.config.espeak.voice)?;
        self.synthesize_ipa(&ipa)
    }

    /// Speaks an IPA phoneme string.
    pub fn synthesize_ipa(&mut self, ipa: &str) -> Result<Vec<i16>, TtsError> {
        let ids = self.config.phoneme_ids(ipa);
        if ids.len() <= 3 {
            return Ok(Vec::new());
        }
        let err = |e: ort::Error| TtsError::Synthesis(e.to_string());
        let n = ids.len();
        let inf = self.config.inference;
        let input = Tensor::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales =
            Tensor::from_array(([3usize], vec![inf.noise_scale, inf.length_scale, inf.noise_w])).map_err(err)?;
        let outputs = if self.config.num_speakers > 1 {
            let sid = Tensor::from_array(([1usize], vec![0i64])).map_err(err)?;
            self.session
                .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid])
                .map_err(err)?
        } else {
            self.session
                .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
                .map_err(err)?
        };
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        Ok(audio
            .iter()
            .map(|&s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect())
    }
}
