//! Loading prompts (greetings) from WAV files.

use crate::MediaError;
use std::path::Path;

/// Reads a WAV file as 8 kHz mono 16-bit samples. Stereo is mixed down;
/// other sample rates are refused with a message saying how to convert
/// (resampling arrives with the media engine).
pub fn load_wav_8k_mono(path: &Path) -> Result<Vec<i16>, MediaError> {
    let err = |reason: String| MediaError::Wav {
        path: path.display().to_string(),
        reason,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate != 8000 {
        return Err(err(format!(
            "sample rate is {} Hz; prompts must be 8000 Hz (sox IN.wav -r 8000 -c 1 -b 16 OUT.wav)",
            spec.sample_rate
        )));
    }
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(err("prompts must be 16-bit integer PCM".into()));
    }
    let samples: Result<Vec<i16>, _> = reader.samples::<i16>().collect();
    let samples = samples.map_err(|e| err(e.to_string()))?;
    let channels = usize::from(spec.channels.max(1));
    Ok(samples
        .chunks(channels)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
        .collect())
}
