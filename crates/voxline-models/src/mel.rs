//! The mel filterbank Whisper uses: librosa's defaults (Slaney mel scale,
//! Slaney area normalisation), 16 kHz, a 400-point FFT, 80 or 128 bands.

/// Hz per mel in the linear part of the Slaney scale.
const F_SP: f64 = 200.0 / 3.0;
/// Where the scale turns logarithmic.
const MIN_LOG_HZ: f64 = 1000.0;
/// The mel value at `MIN_LOG_HZ`.
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

/// Mels per e-fold above 1 kHz (ln 6.4 / 27).
fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mel on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

/// Mel to Hz on the Slaney scale.
fn mel_to_hz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

/// The filterbank as `n_mels` rows of `n_fft / 2 + 1` weights (row-major),
/// as `librosa.filters.mel(sr, n_fft, n_mels)` computes it.
pub fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let sr = f64::from(sample_rate);
    let fft_freqs: Vec<f64> = (0..bins).map(|k| k as f64 * sr / n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * bins];
    for i in 0..n_mels {
        let (left, center, right) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let enorm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (center - left);
            let upper = (right - f) / (right - center);
            weights[i * bins + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_bends_at_1khz() {
        for f in [0.0, 440.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-6);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
    }

    /// Reference values read from `whisper/assets/mel_filters.npz`
    /// (`mel_80`) of the PyPI package `openai-whisper==20250625`, which
    /// OpenAI generated with librosa.
    #[test]
    fn whisper_filterbank_matches_openai_whisper_assets() {
        let w = mel_filters(16_000, 400, 80);
        assert_eq!(w.len(), 80 * 201);
        for (i, want) in [
            (1, 0.024_862_595),
            (203, 0.022_871_772),
            (16_069, 0.002_232_055),
            (0, 0.0),
            (2, 0.0),
        ] {
            assert!((w[i] - want).abs() < 1e-6, "weight {i}: {} vs {want}", w[i]);
        }
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - 1.999_024_09).abs() < 1e-4, "sum {sum}");
        // Every band has some weight, none is negative.
        for band in w.chunks(201) {
            assert!(band.iter().all(|&x| x >= 0.0));
            assert!(band.iter().any(|&x| x > 0.0));
        }
    }
}
