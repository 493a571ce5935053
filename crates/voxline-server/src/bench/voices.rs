//! The voices the labelled sets speak with (`voice = "piper"` or
//! `"espeak:VOICE"`, at a `speed`): each phrase trimmed of its silences and
//! sent through a telephone line (G.711 mu-law at 8 kHz), at 16 kHz.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Speaks phrases with the Piper voice or espeak-ng voices.
pub struct Speaker {
    piper: voxline_tts::PiperVoice,
    scratch: PathBuf,
}

impl Speaker {
    /// Loads the default Piper voice; espeak-ng writes into a scratch folder.
    pub fn load() -> anyhow::Result<Speaker> {
        let models = voxline_models::models_dir();
        let piper = voxline_tts::PiperVoice::load(
            &models.join(voxline_models::defaults::ONNX_RUNTIME),
            &models.join(voxline_models::defaults::PIPER_VOICE),
            2,
        )?;
        let scratch = std::env::temp_dir().join(format!("voxline-bench-voices-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).with_context(|| scratch.display().to_string())?;
        Ok(Speaker { piper, scratch })
    }

    /// `text` said by `voice` at `speed`, as the line carries it (16 kHz).
    pub fn say(&mut self, voice: &str, speed: f32, text: &str) -> anyhow::Result<Vec<i16>> {
        let (samples, rate) = match voice.strip_prefix("espeak:") {
            Some(v) => espeak(v, speed, text, &self.scratch)?,
            None if voice == "piper" => {
                self.piper.set_length_scale(1.0 / speed.max(0.1));
                let s = self.piper.synthesize(&voxline_text::spoken::normalize(text, "en"))?;
                (s, self.piper.sample_rate())
            }
            None => anyhow::bail!("voice {voice:?} is not \"piper\" or \"espeak:VOICE\""),
        };
        let trimmed = voxline_tts::without_trailing_silence(voxline_tts::without_leading_silence(&samples, rate), rate);
        super::ulaw_line(trimmed, rate)
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.scratch).ok();
    }
}

/// Speaks `text` with espeak-ng voice `voice` at `speed`: samples and rate.
fn espeak(voice: &str, speed: f32, text: &str, scratch: &Path) -> anyhow::Result<(Vec<i16>, u32)> {
    let wav = scratch.join("espeak.wav");
    let wpm = (175.0 * speed).round().to_string();
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm, "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .context("running espeak-ng (Debian package espeak-ng)")?;
    anyhow::ensure!(status.success(), "espeak-ng -v {voice} failed on {text:?}");
    let p = voxline_media::read_wav_mono(&wav).with_context(|| wav.display().to_string())?;
    Ok((p.samples.to_vec(), p.rate))
}

/// `ms` of silence at 16 kHz.
pub fn silence(ms: u64) -> Vec<i16> {
    vec![0; (ms * 16) as usize]
}
