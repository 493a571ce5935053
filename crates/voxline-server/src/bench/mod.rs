//! `voxline bench …`: component benchmarks, each printing its figures as a
//! table (media capacity, speech recognition, synthesis, the language model,
//! voice-to-voice turns over SIP, answering-machine detection, the end of
//! the caller's turn, quality inspection).

pub mod amd;
pub mod asr;
pub mod llm;
pub mod media;
pub mod qa;
pub mod tts;
pub mod turn;
pub mod turn_end;
pub mod voices;

/// A telephone line: down to 8 kHz, G.711 mu-law and back, up to 16 kHz.
pub fn ulaw_line(samples: &[i16], rate: u32) -> anyhow::Result<Vec<i16>> {
    use voxline_media::g711::{linear_to_ulaw, ulaw_to_linear};
    use voxline_media::rtp_session::resample_clip;
    let narrow = resample_clip(samples, rate, 8_000)?;
    let line: Vec<i16> = narrow.iter().map(|&s| ulaw_to_linear(linear_to_ulaw(s))).collect();
    Ok(resample_clip(&line, 8_000, 16_000)?.to_vec())
}

/// The value at fraction `p` of `sorted` (nearest rank), or `empty` when
/// there is none.
pub fn percentile<T: Copy>(sorted: &[T], p: f64, empty: T) -> T {
    if sorted.is_empty() {
        return empty;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
