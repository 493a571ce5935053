//! Cutting the quiet start and end of a synthesised clip.

/// A sample at or below this magnitude (−50 dBFS) is silence.
const QUIET: i16 = 100;
/// Audio kept before the first sound, ms (the onset's own ramp).
const KEEP_MS: u32 = 5;
/// At most this much is cut, ms: a clip that starts softly is not eaten into.
const MAX_CUT_MS: u32 = 100;
/// Silence kept after the last sound, ms: the pause before what follows.
const KEEP_TAIL_MS: u32 = 80;
/// At most this much is cut from the end, ms.
const MAX_TAIL_CUT_MS: u32 = 400;

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

/// `samples` (at `rate` Hz) up to a short pause after their last sound.
/// Piper ends every clip with ~200 ms of silence; a line that something
/// else follows at once (the hold line, then the answer) need not keep it.
pub fn without_trailing_silence(samples: &[i16], rate: u32) -> &[i16] {
    let per_ms = (rate / 1000).max(1) as usize;
    let end = samples
        .iter()
        .rposition(|s| s.unsigned_abs() > QUIET.unsigned_abs())
        .map_or(0, |i| i + 1);
    let cut = (samples.len() - end)
        .saturating_sub(KEEP_TAIL_MS as usize * per_ms)
        .min(MAX_TAIL_CUT_MS as usize * per_ms);
    &samples[..samples.len() - cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quiet_end_goes_but_a_short_pause_stays() {
        let rate = 22_050;
        let mut clip = vec![3_000i16; 100];
        clip.extend(vec![20i16; 4_410]); // 200 ms of near silence
        let out = without_trailing_silence(&clip, rate);
        // 80 ms (80 x 22 samples) after the last sound are kept.
        assert_eq!(out.len(), 100 + 1_760);
        // Never more than 400 ms is cut.
        let long = [vec![500i16; 10], vec![0i16; 22_050]].concat();
        assert_eq!(without_trailing_silence(&long, rate).len(), 10 + 22_050 - 8_800);
        // A clip that ends with sound keeps its end; silence alone loses at most the cap.
        assert_eq!(without_trailing_silence(&[0, 0, 900], rate).len(), 3);
        assert_eq!(without_trailing_silence(&[], rate).len(), 0);
    }

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
