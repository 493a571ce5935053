//! Cutting the quiet start of a synthesised clip.

/// A sample at or below this magnitude (−50 dBFS) is silence.
const QUIET: i16 = 100;
/// Audio kept before the first sound, ms (the onset's own ramp).
const KEEP_MS: u32 = 5;
/// At most this much is cut, ms: a clip that starts softly is not eaten into.
const MAX_CUT_MS: u32 = 100;

/// `samples` (at `rate` Hz) from just before their first sound. Piper
/// starts every clip with 25–50 ms of near silence; a reply's first phrase
/// need not make the caller wait for it.
pub fn without_leading_silence(samples: &[i16], rate: u32) -> &[i16] {
    let per_ms = (rate / 1000).max(1) as usize;
    let first = samples
        .iter()
        .position(|s| s.unsigned_abs() > QUIET.unsigned_abs())
        .unwrap_or(samples.len());
    let cut = first
        .saturating_sub(KEEP_MS as usize * per_ms)
        .min(MAX_CUT_MS as usize * per_ms);
    &samples[cut..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quiet_start_goes_but_the_onset_and_a_soft_start_stay() {
        let rate = 22_050;
        let mut clip = vec![20i16; 882]; // 40 ms of near silence
        clip.extend([3_000i16; 100]);
        let out = without_leading_silence(&clip, rate);
        // 5 ms (110 samples) before the first sound are kept.
        assert_eq!(out.len(), 100 + 110);
        assert_eq!(out[110], 3_000);
        // Never more than 100 ms is cut.
        let long = [vec![0i16; 22_050], vec![500i16; 10]].concat();
        assert_eq!(without_leading_silence(&long, rate).len(), 22_050 + 10 - 2_200);
        // A clip that starts with sound, or is all silence up to the cap, keeps its start.
        assert_eq!(without_leading_silence(&[900, 0, 0], rate).len(), 3);
        assert_eq!(without_leading_silence(&[], rate).len(), 0);
    }
}
