//! Speech start and end from per-window VAD probabilities: a start once the
//! probability has stayed above `start_threshold` for `min_speech_ms` (so a
//! click or a cough of line noise is not speech), an end once it has stayed
//! below `end_threshold` for `hangover_ms` (so a pause between words is not
//! the end). Times are stream time in milliseconds.

/// Settings of the segmenter (all configurable per deployment).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmenterConfig {
    /// Probability at or above which a window counts as speech.
    pub start_threshold: f32,
    /// Probability below which a window counts as silence (hysteresis).
    pub end_threshold: f32,
    /// Speech must last this long before it is reported.
    pub min_speech_ms: u32,
    /// Silence must last this long before speech is over.
    pub hangover_ms: u32,
}

impl Default for SegmenterConfig {
    fn default() -> SegmenterConfig {
        SegmenterConfig {
            start_threshold: 0.5,
            end_threshold: 0.35,
            min_speech_ms: 200,
            hangover_ms: 500,
        }
    }
}

/// What the segmenter noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began at this time (the start of its first window).
    SpeechStart {
        /// Stream time, ms.
        at_ms: u64,
    },
    /// Speech ended at this time (the end of its last speech window).
    SpeechEnd {
        /// Stream time, ms.
        at_ms: u64,
        /// How long the speech lasted, ms.
        duration_ms: u64,
    },
}

/// Turns window probabilities into speech start/end events.
#[derive(Debug, Clone)]
pub struct Segmenter {
    cfg: SegmenterConfig,
    now_ms: u64,
    /// Start of the current run of speech-like windows (not yet reported).
    candidate: Option<u64>,
    /// Start of reported speech, and the end of its last speech window.
    speaking: Option<(u64, u64)>,
}

impl Segmenter {
    /// A segmenter at stream time 0.
    pub fn new(cfg: SegmenterConfig) -> Segmenter {
        Segmenter {
            cfg,
            now_ms: 0,
            candidate: None,
            speaking: None,
        }
    }

    /// Whether speech is in progress.
    pub fn speaking(&self) -> bool {
        self.speaking.is_some()
    }

    /// Stream time now (the end of the last window pushed), ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// While speech is in progress: how long the caller has been silent
    /// (0 while they are talking).
    pub fn silence_ms(&self) -> Option<u64> {
        self.speaking.map(|(_, last)| self.now_ms - last)
    }

    /// Since when the caller's voice has been going (speech in progress, or
    /// a run of speech windows not yet long enough to be reported), ms.
    /// Barge-in acts on it before speech is reported.
    pub fn voice_since(&self) -> Option<u64> {
        self.speaking.map(|(began, _)| began).or(self.candidate)
    }

    /// The end of the last speech window of the speech in progress.
    pub fn last_speech_ms(&self) -> Option<u64> {
        self.speaking.map(|(_, last)| last)
    }

    /// Changes the silence hang-over from now on (the dialogue shortens it
    /// when a sentence is clearly complete, lengthens it when it is not).
    pub fn set_hangover_ms(&mut self, ms: u32) {
        self.cfg.hangover_ms = ms;
    }

    /// The settings in force.
    pub fn config(&self) -> SegmenterConfig {
        self.cfg
    }

    /// Takes the probability of the next window of `window_ms`.
    pub fn push(&mut self, prob: f32, window_ms: u32) -> Option<VadEvent> {
        let start = self.now_ms;
        self.now_ms += u64::from(window_ms);
        let end = self.now_ms;
        match self.speaking {
            Some((began, last)) => {
                if prob >= self.cfg.end_threshold {
                    self.speaking = Some((began, end));
                    None
                } else if end - last >= u64::from(self.cfg.hangover_ms) {
                    self.speaking = None;
                    self.candidate = None;
                    Some(VadEvent::SpeechEnd {
                        at_ms: last,
                        duration_ms: last - began,
                    })
                } else {
                    None
                }
            }
            None => {
                if prob < self.cfg.start_threshold {
                    self.candidate = None;
                    return None;
                }
                let began = *self.candidate.get_or_insert(start);
                if end - began >= u64::from(self.cfg.min_speech_ms) {
                    self.speaking = Some((began, end));
                    return Some(VadEvent::SpeechStart { at_ms: began });
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(probs: &[f32]) -> Vec<VadEvent> {
        let mut s = Segmenter::new(SegmenterConfig::default());
        probs.iter().filter_map(|&p| s.push(p, 32)).collect()
    }

    #[test]
    fn speech_is_reported_from_its_first_window_once_long_enough() {
        let mut p = vec![0.0; 5];
        p.extend([0.9; 10]);
        p.extend([0.0; 20]);
        assert_eq!(
            run(&p),
            vec![
                VadEvent::SpeechStart { at_ms: 160 },
                VadEvent::SpeechEnd {
                    at_ms: 480,
                    duration_ms: 320
                }
            ]
        );
    }

    #[test]
    fn the_voice_is_known_from_its_first_window_before_it_is_speech() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.push(0.0, 32);
        assert_eq!(s.voice_since(), None);
        // Voice from 32 ms: known at once, reported as speech only at 200 ms.
        assert_eq!(s.push(0.9, 32), None);
        assert_eq!(s.voice_since(), Some(32));
        for _ in 0..6 {
            s.push(0.9, 32);
        }
        assert_eq!(s.voice_since(), Some(32));
        assert!(s.speaking());
        // A click: a voice run that ends before it is speech is forgotten.
        let mut c = Segmenter::new(SegmenterConfig::default());
        c.push(0.9, 32);
        assert_eq!(c.voice_since(), Some(0));
        c.push(0.0, 32);
        assert_eq!(c.voice_since(), None);
    }

    #[test]
    fn a_click_shorter_than_the_minimum_is_not_speech() {
        let mut p = vec![0.9; 3]; // 96 ms
        p.extend([0.0; 30]);
        assert!(run(&p).is_empty());
    }

    #[test]
    fn a_pause_shorter_than_the_hangover_does_not_end_speech() {
        let mut p = vec![0.9; 10];
        p.extend([0.1; 10]); // 320 ms pause
        p.extend([0.9; 10]);
        p.extend([0.0; 20]);
        let ev = run(&p);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(
            ev[1],
            VadEvent::SpeechEnd {
                at_ms: 960,
                duration_ms: 960
            }
        );
    }

    #[test]
    fn hysteresis_keeps_speech_through_middling_probabilities() {
        let mut p = vec![0.9; 10];
        p.extend([0.4; 30]); // below start, above end threshold
        p.extend([0.0; 20]);
        let ev = run(&p);
        assert_eq!(
            ev.last(),
            Some(&VadEvent::SpeechEnd {
                at_ms: 1280,
                duration_ms: 1280
            })
        );
    }
}
