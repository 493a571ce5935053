//! Loading prompts (greetings) from WAV files.

use crate::recording_file::read_recording;
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

/// Reads any WAV voxline can read (PCM of any depth, float, μ-law or
/// A-law; any rate, any number of channels; see [`read_recording`]) as
/// mono 16-bit samples at its own rate (channels are mixed down).
pub fn read_wav_mono(path: &Path) -> Result<Prompt, MediaError> {
    let rec = read_recording(path)?;
    let frames = rec.channels.first().map_or(0, Vec::len);
    let n = rec.channels.len() as i32;
    let samples: Vec<i16> = (0..frames)
        .map(|i| (rec.channels.iter().map(|c| i32::from(c[i])).sum::<i32>() / n) as i16)
        .collect();
    Ok(Prompt {
        samples: samples.into(),
        rate: rec.rate,
    })
}
