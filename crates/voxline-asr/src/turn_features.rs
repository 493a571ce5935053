//! The input of the audio end-of-turn model (smart-turn v3): Whisper-style
//! log-mel features of the last 8 s of a turn. The waveform (16 kHz,
//! zero-padded on the left to 8 s) is normalised to zero mean and unit
//! variance, cut into 25 ms Hann windows every 10 ms (centred, reflected at
//! the edges), turned into power spectra, projected on 80 Slaney-scale mel
//! filters (0–8 kHz, area-normalised), and compressed as Whisper does:
//! log10, floored 8 below the maximum, then `(x + 4) / 4`.

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Mel bands.
pub const N_MELS: usize = 80;
/// Frames of 10 ms in the model's window.
pub const N_FRAMES: usize = 800;
/// Samples the model sees: 8 s at 16 kHz.
pub const WINDOW_SAMPLES: usize = 128_000;
/// FFT length (25 ms).
const N_FFT: usize = 400;
/// Hop between frames (10 ms).
const HOP: usize = 160;
/// Power spectrum bins.
const N_BINS: usize = N_FFT / 2 + 1;
/// Smallest mel energy before the logarithm.
const MEL_FLOOR: f64 = 1e-10;

/// One mel filter: its first FFT bin and weights from there.
#[derive(Debug, Clone)]
struct Filter {
    first: usize,
    weights: Vec<f64>,
}

/// Computes the features; built once, shared by every call.
pub struct MelFeatures {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    filters: Vec<Filter>,
}

impl std::fmt::Debug for MelFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MelFeatures")
    }
}

impl Default for MelFeatures {
    fn default() -> Self {
        MelFeatures::new()
    }
}

/// Hz to mel on the Slaney scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    if hz < 1000.0 {
        3.0 * hz / 200.0
    } else {
        15.0 + (hz / 1000.0).ln() * 27.0 / 6.4f64.ln()
    }
}

/// Mel to Hz on the Slaney scale.
fn mel_to_hz(mel: f64) -> f64 {
    if mel < 15.0 {
        200.0 * mel / 3.0
    } else {
        1000.0 * ((mel - 15.0) * 6.4f64.ln() / 27.0).exp()
    }
}

/// The triangular filters between 0 Hz and 8 kHz, each scaled to unit area.
fn mel_filters() -> Vec<Filter> {
    let top = hz_to_mel(8_000.0);
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bin_hz = |j: usize| 8_000.0 * j as f64 / (N_BINS - 1) as f64;
    (0..N_MELS)
        .map(|m| {
            let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (hi - lo);
            let w: Vec<(usize, f64)> = (0..N_BINS)
                .filter_map(|j| {
                    let f = bin_hz(j);
                    let rise = (f - lo) / (mid - lo);
                    let fall = (hi - f) / (hi - mid);
                    let v = rise.min(fall);
                    (v > 0.0).then_some((j, v * norm))
                })
                .collect();
            Filter {
                first: w.first().map_or(0, |&(j, _)| j),
                weights: w.iter().map(|&(_, v)| v).collect(),
            }
        })
        .collect()
}

impl MelFeatures {
    /// The FFT plan, window and filters.
    pub fn new() -> MelFeatures {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        // A periodic Hann window.
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .collect();
        MelFeatures {
            fft,
            window,
            filters: mel_filters(),
        }
    }

    /// The features of `audio` (16 kHz, -1..1; the turn so far, of which
    /// the last 8 s are used): `N_MELS` rows of `N_FRAMES`, row-major.
    pub fn compute(&self, audio: &[f32]) -> Vec<f32> {
        let tail = &audio[audio.len().saturating_sub(WINDOW_SAMPLES)..];
        let mut x = vec![0f64; WINDOW_SAMPLES - tail.len()];
        x.extend(tail.iter().map(|&s| f64::from(s)));
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let scale = 1.0 / (var + 1e-7).sqrt();
        for v in &mut x {
            *v = (*v - mean) * scale;
        }
        // Centred frames: the signal reflected by half a window at each end.
        let pad = N_FFT / 2;
        let len = x.len();
        let sample = |i: isize| -> f64 {
            let i = i - pad as isize;
            let j = if i < 0 {
                (-i) as usize
            } else if i as usize >= len {
                2 * (len - 1) - i as usize
            } else {
                i as usize
            };
            x[j]
        };
        let mut frame = self.fft.make_input_vec();
        let mut spectrum: Vec<Complex<f64>> = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0f64; N_BINS];
        let mut mel = vec![0f64; N_MELS * N_FRAMES];
        for t in 0..N_FRAMES {
            let start = (t * HOP) as isize;
            for (k, v) in frame.iter_mut().enumerate() {
                *v = sample(start + k as isize) * self.window[k];
            }
            // Lengths match by construction (the plan's own buffers).
            if self
                .fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .is_err()
            {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, f) in self.filters.iter().enumerate() {
                let e: f64 = f.weights.iter().zip(&power[f.first..]).map(|(w, p)| w * p).sum();
                mel[m * N_FRAMES + t] = e.max(MEL_FLOOR).log10();
            }
        }
        let top = mel.iter().copied().fold(f64::MIN, f64::max);
        mel.iter().map(|&v| ((v.max(top - 8.0) + 4.0) / 4.0) as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, secs: f32) -> Vec<f32> {
        (0..(secs * 16_000.0) as usize)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * hz * i as f32 / 16_000.0).sin())
            .collect()
    }

    /// The band whose filter peaks nearest `hz`.
    fn band_of(hz: f64) -> usize {
        let top = hz_to_mel(8_000.0);
        (0..N_MELS)
            .min_by(|&a, &b| {
                let d = |m: usize| (mel_to_hz(top * (m + 1) as f64 / (N_MELS + 1) as f64) - hz).abs();
                d(a).total_cmp(&d(b))
            })
            .unwrap_or(0)
    }

    #[test]
    fn the_scale_is_linear_below_1_khz_and_inverts() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-9);
        for hz in [0.0, 300.0, 999.0, 1000.0, 2500.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6, "{hz}");
        }
    }

    #[test]
    fn filters_cover_the_band_with_unit_area() {
        let f = mel_filters();
        assert_eq!(f.len(), N_MELS);
        // Area-normalised: each filter's weights times the bin width sum to ~1.
        let bin = 8_000.0 / (N_BINS - 1) as f64;
        for (m, filter) in f.iter().enumerate().skip(10) {
            let area: f64 = filter.weights.iter().sum::<f64>() * bin;
            assert!((area - 1.0).abs() < 0.1, "filter {m}: area {area}");
        }
    }

    #[test]
    fn a_tone_lights_its_own_band_in_the_last_frames_and_the_padding_is_quiet() {
        let mel = MelFeatures::new().compute(&tone(1_000.0, 2.0));
        assert_eq!(mel.len(), N_MELS * N_FRAMES);
        let at = |m: usize, t: usize| mel[m * N_FRAMES + t];
        let loud = band_of(1_000.0);
        // The 2 s of tone are the last 200 frames; the first 600 are the padding.
        let t = N_FRAMES - 100;
        let brightest = (0..N_MELS).max_by(|&a, &b| at(a, t).total_cmp(&at(b, t))).unwrap_or(0);
        assert!(brightest.abs_diff(loud) <= 1, "band {brightest}, want ~{loud}");
        assert!(at(loud, t) > 0.9, "{}", at(loud, t));
        // The padding sits at the floor: 8 below the maximum, (x+4)/4 → max - 2.
        let top = mel.iter().copied().fold(f32::MIN, f32::max);
        assert!(
            (at(loud, 100) - (top - 2.0)).abs() < 1e-4,
            "{} vs {}",
            at(loud, 100),
            top
        );
    }

    #[test]
    fn only_the_last_8_s_count() {
        let f = MelFeatures::new();
        let mut long = tone(300.0, 4.0);
        long.extend(tone(2_000.0, 8.0));
        let last = tone(2_000.0, 8.0);
        assert_eq!(f.compute(&long), f.compute(&last));
    }
}
