//! Loading prompts (greetings) from WAV files.

use crate::MediaError;
use std::path::Path;
use std::sync::Arc;

/// Prompt sample rates voxline can play (resampled to the call's rate).
pub const PROMPT_RATES: [u32; 5] = [8000, 16_000, 22_050, 24_000, 48_000];

/// A prompt: mono 16-bit samples at `rate`, shared by every call that plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The samples.
    pub samples: Arc<[i16]>,
    /// Their rate in Hz.
    pub rate: u32,
}

impl Prompt {
    /// The same prompt at `rate` (shared when it is already at that rate).
    pub fn at_rate(&self, rate: u32) -> Result<Prompt, MediaError> {
        if rate == self.rate || self.samples.is_empty() {
            return Ok(Prompt {
                samples: self.samples.clone(),
                rate: if self.samples.is_empty() { rate } else { self.rate },
            });
        }
        Ok(Prompt {
            samples: crate::rtp_session::resample_clip(&self.samples, self.rate, rate)?,
            rate,
        })
    }
}

impl Default for Prompt {
    fn default() -> Prompt {
        Prompt {
            samples: Arc::from(Vec::new()),
            rate: 8000,
        }
    }
}

/// Reads a 16-bit WAV at 8, 16, 22.05, 24 or 48 kHz as mono (stereo is
/// mixed down); other formats are refused with a message saying how to
/// convert.
pub fn load_wav_mono(path: &Path) -> Result<Prompt, MediaError> {
    let prompt = read_wav_mono(path)?;
    if !PROMPT_RATES.contains(&prompt.rate) {
        return Err(MediaError::Wav {
            path: path.display().to_string(),
            reason: format!(
                "sample rate is {} Hz; prompts must be 8, 16, 22.05, 24 or 48 kHz (sox IN.wav -r 16000 -c 1 -b 16 OUT.wav)",
                prompt.rate
            ),
        });
    }
    Ok(prompt)
}

/// Reads any PCM WAV (8/16/24/32-bit integer or 32-bit float, any rate,
/// any number of channels) as mono 16-bit samples at its own rate.
pub fn read_wav_mono(path: &Path) -> Result<Prompt, MediaError> {
    let err = |reason: String| MediaError::Wav {
        path: path.display().to_string(),
        reason,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate == 0 {
        return Err(err("sample rate 0".into()));
    }
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
        }
        (f, b) => return Err(err(format!("{b}-bit {f:?} samples are not supported"))),
    }
    .map_err(|e| err(e.to_string()))?;
    let channels = usize::from(spec.channels.max(1));
    Ok(Prompt {
        samples: samples
            .chunks(channels)
            .map(|c| {
                let mean = c.iter().sum::<f32>() / channels as f32;
                (mean * 32768.0).round().clamp(-32768.0, 32767.0) as i16
            })
            .collect::<Vec<i16>>()
            .into(),
        rate: spec.sample_rate,
    })
}
