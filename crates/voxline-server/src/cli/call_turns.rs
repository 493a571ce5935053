//! `voxline call --after-quiet-ms MS`: a caller that takes turns like a
//! person instead of following a clock. Each `--play` line (a WAV, or
//! `dtmf:DIGITS` to key them) starts once the far end has spoken and then
//! been quiet for MS (and the previous line has been sent); with `--hangup-after-reply`, the call ends once the far end
//! has answered the last line and gone quiet. What the far end says is
//! judged by its loudness, frame by frame, from the call's media port.
//! (A test caller's tool: it tells speech from silence, not words.)

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use voxline_media::Prompt;

/// RMS (16-bit) above which a 20 ms frame of the far end counts as speech.
const SPEECH_RMS: f64 = 300.0;

/// One of the caller's turns.
#[derive(Debug, Clone)]
pub enum TurnLine {
    /// Words: this audio.
    Audio(Prompt),
    /// Keys: these DTMF digits (RFC 4733).
    Keys(String),
}

/// What the turn-taking caller does next.
#[derive(Debug)]
pub enum TurnStep {
    /// Send line `n` (from 1) now.
    Say {
        /// Its number.
        n: usize,
        /// What to send.
        line: TurnLine,
    },
    /// Every line was said and answered: hang up.
    HangUp,
}

/// The caller's turn-taking state.
pub struct Turns {
    lines: VecDeque<TurnLine>,
    /// Lines said so far.
    said: usize,
    quiet: Duration,
    hang_up_after_reply: bool,
    /// The far end spoke since our last line started.
    heard: bool,
    /// When the far end last sounded like speech.
    last_loud: Instant,
}

impl Turns {
    /// Lines to say in order, each after `quiet` of the far end's silence.
    pub fn new(lines: Vec<TurnLine>, quiet: Duration, hang_up_after_reply: bool) -> Turns {
        Turns {
            lines: lines.into(),
            said: 0,
            quiet,
            hang_up_after_reply,
            heard: false,
            last_loud: Instant::now(),
        }
    }

    /// Notes one 20 ms frame of the far end.
    pub fn hear(&mut self, frame: &[i16], now: Instant) {
        if frame.is_empty() {
            return;
        }
        let energy: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
        if energy.sqrt() > SPEECH_RMS {
            self.heard = true;
            self.last_loud = now;
        }
    }

    /// What to do now, given how much of our own audio is still queued.
    pub fn next(&mut self, queued: usize, now: Instant) -> Option<TurnStep> {
        let their_turn_over = self.heard && now.duration_since(self.last_loud) >= self.quiet;
        if queued > 0 || !their_turn_over {
            return None;
        }
        let Some(line) = self.lines.pop_front() else {
            return (self.hang_up_after_reply && self.said > 0).then_some(TurnStep::HangUp);
        };
        self.heard = false;
        self.said += 1;
        Some(TurnStep::Say { n: self.said, line })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> TurnLine {
        TurnLine::Audio(Prompt {
            samples: std::sync::Arc::from(vec![0i16; 160]),
            rate: 8000,
        })
    }

    #[test]
    fn lines_wait_for_the_far_end_to_speak_and_stop() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut turns = Turns::new(
            vec![line(), TurnLine::Keys("12#".into())],
            Duration::from_millis(1000),
            true,
        );
        let loud = vec![3000i16; 320];
        let quiet = vec![0i16; 320];
        // Nothing heard yet: nothing to say, however long the silence.
        turns.hear(&quiet, ms(0));
        assert!(turns.next(0, ms(5000)).is_none());
        // The far end speaks, then is quiet: not before a second has passed.
        turns.hear(&loud, ms(5000));
        turns.hear(&quiet, ms(5500));
        assert!(turns.next(0, ms(5900)).is_none());
        assert!(matches!(turns.next(0, ms(6000)), Some(TurnStep::Say { n: 1, .. })));
        // Our own line still queued: wait; the far end must answer first.
        assert!(turns.next(160, ms(9000)).is_none());
        assert!(turns.next(0, ms(9000)).is_none());
        turns.hear(&loud, ms(9500));
        assert!(matches!(
            turns.next(0, ms(10_600)),
            Some(TurnStep::Say { n: 2, line: TurnLine::Keys(k) }) if k == "12#"
        ));
        // After the last line's answer: hang up.
        turns.hear(&loud, ms(12_000));
        assert!(turns.next(0, ms(12_500)).is_none());
        assert!(matches!(turns.next(0, ms(13_000)), Some(TurnStep::HangUp)));
    }
}
