//! Streaming sample-rate conversion between the call's codec rate and the
//! rates around it (8, 16, 22.05, 24, 48 kHz), with rubato's FFT resampler.
//! One resampler per direction per call keeps its filter state between
//! chunks, so chunk edges do not click.

use crate::MediaError;
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use std::collections::VecDeque;

/// Converts a mono stream from one rate to another, 20 ms at a time.
pub struct StreamResampler {
    from: u32,
    to: u32,
    fft: Option<Fft<f32>>,
    input: Vec<f32>,
    pending: VecDeque<f32>,
    output: Vec<f32>,
    ready: VecDeque<i16>,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz (both multiples of 50 Hz, so 20 ms is whole).
    pub fn new(from: u32, to: u32) -> Result<StreamResampler, MediaError> {
        if from == 0 || to == 0 || !from.is_multiple_of(50) || !to.is_multiple_of(50) {
            return Err(MediaError::Resample(format!("unsupported rates {from} Hz -> {to} Hz")));
        }
        let chunk = (from / 50) as usize;
        let fft = if from == to {
            None
        } else {
            Some(
                Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
                    .map_err(|e| MediaError::Resample(e.to_string()))?,
            )
        };
        let out_max = fft.as_ref().map(|f| f.output_frames_max()).unwrap_or(0);
        Ok(StreamResampler {
            from,
            to,
            fft,
            input: vec![0.0; chunk],
            pending: VecDeque::new(),
            output: vec![0.0; out_max],
            ready: VecDeque::new(),
        })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Feeds samples at the input rate.
    pub fn push(&mut self, samples: &[i16]) {
        let Some(fft) = self.fft.as_mut() else {
            self.ready.extend(samples.iter().copied());
            return;
        };
        self.pending.extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
        loop {
            let need = fft.input_frames_next();
            if self.pending.len() < need {
                break;
            }
            self.input.clear();
            self.input.extend(self.pending.drain(..need));
            let out_len = self.output.len();
            let (Ok(inp), Ok(mut out)) = (
                InterleavedSlice::new(&self.input[..], 1, need),
                InterleavedSlice::new_mut(&mut self.output[..], 1, out_len),
            ) else {
                break;
            };
            match fft.process_into_buffer(&inp, &mut out, None) {
                Ok((_, written)) => {
                    self.ready.extend(
                        self.output[..written]
                            .iter()
                            .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "resampling failed; chunk dropped");
                    break;
                }
            }
        }
    }

    /// Samples at the output rate ready to take.
    pub fn available(&self) -> usize {
        self.ready.len()
    }

    /// Moves up to `out.len()` samples into `out`; returns how many.
    pub fn pop(&mut self, out: &mut [i16]) -> usize {
        let n = self.ready.len().min(out.len());
        for (dst, src) in out.iter_mut().zip(self.ready.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// Takes everything ready.
    pub fn drain_all(&mut self) -> Vec<i16> {
        self.ready.drain(..).collect()
    }

    /// Forgets buffered audio (keeps the filter state continuous).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, seconds: f32) -> Vec<i16> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| ((2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 12000.0) as i16)
            .collect()
    }

    fn zero_crossings(x: &[i16]) -> usize {
        x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    #[test]
    fn every_supported_rate_pair_keeps_length_and_pitch() {
        let rates = [8000u32, 16000, 22050, 24000, 48000];
        for &from in &rates {
            for &to in &rates {
                let mut r = StreamResampler::new(from, to).unwrap();
                let input = sine(from, 440.0, 1.0);
                for chunk in input.chunks(from as usize / 50) {
                    r.push(chunk);
                }
                let out = r.drain_all();
                let expected = to as usize;
                assert!(
                    out.len() + to as usize / 25 >= expected && out.len() <= expected,
                    "{from}->{to}: {} samples",
                    out.len()
                );
                // 440 Hz: ~880 zero crossings a second whatever the rate.
                let zc =
                    zero_crossings(&out[to as usize / 10..]) as f32 / (out.len() - to as usize / 10) as f32 * to as f32;
                assert!((zc - 880.0).abs() < 20.0, "{from}->{to}: {zc} crossings/s");
            }
        }
    }

    #[test]
    fn odd_sized_pushes_give_the_same_stream_without_clicks() {
        let input = sine(22050, 300.0, 1.0);
        let mut a = StreamResampler::new(22050, 8000).unwrap();
        let mut b = StreamResampler::new(22050, 8000).unwrap();
        a.push(&input);
        for chunk in input.chunks(97) {
            b.push(chunk);
        }
        let (x, y) = (a.drain_all(), b.drain_all());
        assert_eq!(x, y, "chunking must not change the output");
        // No click: a 300 Hz tone at 8 kHz never jumps more than 2π·300/8000 of its amplitude.
        let max_step = y[400..]
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(max_step < 3500, "step {max_step}");
    }

    #[test]
    fn unsupported_rates_are_refused() {
        assert!(StreamResampler::new(44100, 8000).is_ok());
        assert!(
            StreamResampler::new(11025, 8000).is_err(),
            "20 ms is not a whole number of samples"
        );
        assert!(StreamResampler::new(0, 8000).is_err());
    }
}
