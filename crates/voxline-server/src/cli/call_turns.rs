//! `voxline call --after-quiet-ms MS`: a caller that takes turns like a
//! person instead of following a clock. Each `--play` line (a WAV, or
//! `dtmf:DIGITS` to key them) starts once the far end has spoken and then
//! been quiet for MS (and the previous line has been sent), or, written
//! `over:MS2:LINE`, MS2 after the far end starts speaking again (to talk
//! over it, as a caller interrupting an answer does); with `--hangup-after-reply`, the call ends once the far end
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

/// When a line starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Once the far end has spoken and then been quiet (the caller's turn).
    AfterQuiet,
    /// This long after the far end starts speaking (talking over it).
    IntoSpeech(Duration),
}

/// One line of the caller and when it starts.
#[derive(Debug, Clone)]
pub struct Turn {
    /// When it starts.
    pub when: When,
    /// What it is.
    pub what: TurnLine,
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
    lines: VecDeque<Turn>,
    /// Lines said so far.
    said: usize,
    quiet: Duration,
    /// Hang up once the far end answered the last line and was quiet this long.
    hang_up_after: Option<Duration>,
    /// The far end spoke since our last line started.
    heard: bool,
    /// When it started to, since our last line started.
    first_loud: Option<Instant>,
    /// When the far end last sounded like speech.
    last_loud: Instant,
    /// Our own line was still being sent at the last step: the far end's
    /// sound while it was counts as cut-off speech, not as its answer.
    sending: bool,
}

impl Turns {
    /// Lines to say in order; `quiet` is the far end's silence that gives the
    /// caller the turn; `hang_up_after`, when given, the silence after the
    /// answer to the last line that ends the call.
    pub fn new(lines: Vec<Turn>, quiet: Duration, hang_up_after: Option<Duration>) -> Turns {
        Turns {
            lines: lines.into(),
            said: 0,
            quiet,
            hang_up_after,
            heard: false,
            first_loud: None,
            last_loud: Instant::now(),
            sending: false,
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
            self.first_loud.get_or_insert(now);
            self.last_loud = now;
        }
    }

    /// What to do now, given how much of our own audio is still queued.
    pub fn next(&mut self, queued: usize, now: Instant) -> Option<TurnStep> {
        if queued > 0 {
            self.sending = true;
            return None;
        }
        if std::mem::take(&mut self.sending) {
            // Our line is out: what the far end says from now on answers it
            // (what it said over our line was cut off, as a person hears it).
            self.heard = false;
            self.first_loud = None;
        }
        let quiet_for = |d: Duration| self.heard && now.duration_since(self.last_loud) >= d;
        let their_turn_over = quiet_for(self.quiet);
        let due = match self.lines.front().map(|t| t.when) {
            None => {
                let done = self.said > 0 && self.hang_up_after.is_some_and(quiet_for);
                return done.then_some(TurnStep::HangUp);
            }
            Some(When::AfterQuiet) => their_turn_over,
            Some(When::IntoSpeech(d)) => self.first_loud.is_some_and(|t| now.duration_since(t) >= d),
        };
        if !due {
            return None;
        }
        let turn = self.lines.pop_front()?;
        self.heard = false;
        self.first_loud = None;
        self.said += 1;
        Some(TurnStep::Say {
            n: self.said,
            line: turn.what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(when: When) -> Turn {
        Turn {
            when,
            what: TurnLine::Audio(Prompt {
                samples: std::sync::Arc::from(vec![0i16; 160]),
                rate: 8000,
            }),
        }
    }

    #[test]
    fn lines_wait_for_the_far_end_to_speak_and_stop() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let keys = Turn {
            when: When::AfterQuiet,
            what: TurnLine::Keys("12#".into()),
        };
        let mut turns = Turns::new(
            vec![line(When::AfterQuiet), keys],
            Duration::from_millis(1000),
            Some(Duration::from_millis(1000)),
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

    #[test]
    fn a_line_over_the_far_end_starts_into_its_speech() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let over = line(When::IntoSpeech(Duration::from_millis(1500)));
        let mut turns = Turns::new(vec![line(When::AfterQuiet), over], Duration::from_millis(1000), None);
        let loud = vec![3000i16; 320];
        turns.hear(&loud, ms(0));
        assert!(matches!(turns.next(0, ms(1000)), Some(TurnStep::Say { n: 1, .. })));
        // The far end answers from 3 s and goes on talking: 1.5 s into it, the caller talks over it.
        turns.hear(&loud, ms(3000));
        turns.hear(&loud, ms(4000));
        assert!(turns.next(0, ms(4400)).is_none());
        turns.hear(&loud, ms(4500));
        assert!(matches!(turns.next(0, ms(4500)), Some(TurnStep::Say { n: 2, .. })));
        // No hang-up asked for: the call goes on.
        assert!(turns.next(0, ms(9000)).is_none());
    }

    #[test]
    fn speech_cut_off_by_our_line_is_not_its_answer() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let over = line(When::IntoSpeech(Duration::from_millis(1500)));
        let mut turns = Turns::new(
            vec![over],
            Duration::from_millis(1000),
            Some(Duration::from_millis(2500)),
        );
        let loud = vec![3000i16; 320];
        turns.hear(&loud, ms(0));
        assert!(matches!(turns.next(0, ms(1500)), Some(TurnStep::Say { n: 1, .. })));
        // The far end goes on for 100 ms over our line, which takes 2 s to send.
        turns.hear(&loud, ms(1600));
        assert!(turns.next(160, ms(2000)).is_none());
        assert!(turns.next(160, ms(3400)).is_none());
        // Our line is out: no answer yet, however long it takes.
        assert!(turns.next(0, ms(3500)).is_none());
        assert!(turns.next(0, ms(6000)).is_none());
        // The answer comes, then 2.5 s of quiet: hang up.
        turns.hear(&loud, ms(6500));
        assert!(turns.next(0, ms(8000)).is_none());
        assert!(matches!(turns.next(0, ms(9000)), Some(TurnStep::HangUp)));
    }
}
