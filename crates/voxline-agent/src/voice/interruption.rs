//! Interruption: the caller talking over the agent. [`BargeIn`] follows
//! the caller's voice while the agent talks, from its first voiced
//! windows (before the recogniser declares speech), and says when it has
//! lasted long enough to stop the agent. The agent's speech is then
//! [`Paused`]: held until the caller's words show whether it was an
//! interruption (the replies are cancelled, the history keeps what was
//! heard) or a backchannel or noise ([`is_backchannel`]; the agent goes on
//! from the phrase that was cut).

use super::speech::{Heard, SpeechHandle};
use crate::Action;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Silence after a voice too short to be speech (no utterance reported)
/// before the agent, stopped by it, goes on (ms).
pub const NOISE_GONE_MS: u64 = 150;

/// The barge-in detector of one call.
#[derive(Debug, Clone)]
pub struct BargeIn {
    /// The caller's voice this long while the agent talks stops it, ms.
    threshold_ms: u64,
    /// The caller's onset while the agent talks (stream ms), until it is
    /// long enough to stop it.
    onset: Option<u64>,
    /// The end of the caller's last voiced window (stream ms).
    last_voice_ms: u64,
}

/// What a frame of the caller's audio means for a paused agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Nothing to do.
    Nothing,
    /// The voice that stopped the agent was too short to be speech and is
    /// gone: noise, the agent goes on (when it was not speech).
    NoiseGone,
}

impl BargeIn {
    /// A detector stopping the agent after `threshold_ms` of the caller's voice.
    pub fn new(threshold_ms: u64) -> BargeIn {
        BargeIn {
            threshold_ms,
            onset: None,
            last_voice_ms: 0,
        }
    }

    /// A frame was heard. `voice_since`: where the current voice began
    /// (stream ms), if there is voice now; `now_ms`: the stream's time;
    /// `agent_talking`: the agent's audio is queued or coming; `paused`:
    /// the agent is already stopped; `caller_speaking`: speech was declared.
    pub fn frame(
        &mut self,
        voice_since: Option<u64>,
        now_ms: u64,
        agent_talking: bool,
        paused: bool,
        caller_speaking: bool,
    ) -> FrameVerdict {
        match voice_since {
            Some(at) => {
                self.last_voice_ms = now_ms;
                if self.onset.is_none() && !paused && agent_talking {
                    self.onset = Some(at);
                }
                FrameVerdict::Nothing
            }
            None if !caller_speaking => {
                self.onset = None;
                if now_ms.saturating_sub(self.last_voice_ms) >= NOISE_GONE_MS {
                    FrameVerdict::NoiseGone
                } else {
                    FrameVerdict::Nothing
                }
            }
            None => FrameVerdict::Nothing,
        }
    }

    /// The recogniser declared speech from `at_ms`.
    pub fn speech_started(&mut self, at_ms: u64, agent_talking: bool) {
        if agent_talking {
            self.onset = Some(at_ms);
        }
    }

    /// The recogniser declared the end of speech.
    pub fn speech_ended(&mut self) {
        self.onset = None;
    }

    /// How long until the caller's voice stops the agent (zero: now);
    /// `None` while nothing is to be stopped.
    pub fn due_in(&self, now_ms: u64) -> Option<Duration> {
        self.onset
            .map(|at| Duration::from_millis((at + self.threshold_ms).saturating_sub(now_ms)))
    }

    /// The agent stops: the caller's onset (stream ms); the detector rearms.
    pub fn fire(&mut self) -> u64 {
        self.onset.take().unwrap_or(0)
    }
}

/// The agent's speech, stopped by the caller's speech, held until the
/// caller's words show whether it was an interruption (cancel it) or a
/// backchannel or noise (play on from the phrase that was cut).
#[derive(Debug)]
pub struct Paused {
    /// The replies stopped, oldest first; the last may still be generating.
    pub replies: Vec<SpeechHandle>,
    /// How far each was heard.
    pub heard: Vec<Heard>,
    /// The last reply was still being generated.
    pub was_speaking: bool,
    /// Actions that were waiting behind the replies.
    pub pending: VecDeque<Action>,
    /// The caller's onset.
    pub onset_at: Instant,
    /// When the playout was cleared.
    pub stopped_at: Instant,
    /// The caller's voice went on long enough to be speech (an utterance
    /// whose words will decide); else, once the voice is gone, it was noise.
    pub speech_started: bool,
}

/// Short acknowledgements that do not take the turn (English): "uh-huh",
/// "okay", "yeah", "right", "I see", and hums however the recogniser spells
/// them ("mm", "mmmm", "hmm", "mhm").
pub fn is_backchannel(text: &str) -> bool {
    const BACKCHANNELS: &[&str] = &[
        "uh huh",
        "uh-huh",
        "mm hmm",
        "mm-hmm",
        "yeah",
        "yep",
        "yes",
        "right",
        "okay",
        "ok",
        "sure",
        "i see",
        "ah",
        "oh",
        "uh",
        "um",
        "aha",
        "alright",
        "all right",
        "got it",
        "okay okay",
        "yeah yeah",
    ];
    let t: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '-')
        .collect();
    let t = t.trim();
    let hum = |w: &str| !w.is_empty() && w.chars().all(|c| matches!(c, 'm' | 'h' | '-'));
    BACKCHANNELS.contains(&t) || (!t.is_empty() && t.split_whitespace().all(hum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannels_and_hums_however_spelled() {
        for t in [
            "Uh-huh.", "Okay.", "Yeah!", "MMMM.", "Mm-hmm.", "Hmm...", "mhm", "Ah.", "I see.", "Got it.",
        ] {
            assert!(is_backchannel(t), "{t}");
        }
        for t in [
            "",
            "Okay, what about fees?",
            "Yeah, block my card.",
            "Hello",
            "My name is Mia.",
        ] {
            assert!(!is_backchannel(t), "{t}");
        }
    }

    #[test]
    fn the_agent_is_stopped_after_the_threshold_of_voice_from_its_onset() {
        let mut b = BargeIn::new(100);
        assert_eq!(b.due_in(0), None);
        // Voice from 1000 ms while the agent talks.
        b.frame(Some(1000), 1020, true, false, false);
        assert_eq!(b.due_in(1020), Some(Duration::from_millis(80)));
        b.frame(Some(1000), 1100, true, false, false);
        assert_eq!(b.due_in(1120), Some(Duration::ZERO), "due, however late we look");
        assert_eq!(b.fire(), 1000);
        assert_eq!(b.due_in(1120), None, "rearmed");
    }

    #[test]
    fn voice_while_the_agent_is_quiet_or_paused_stops_nothing() {
        let mut b = BargeIn::new(100);
        b.frame(Some(500), 520, false, false, false);
        assert_eq!(b.due_in(520), None, "the agent is quiet");
        b.frame(Some(500), 540, true, true, false);
        assert_eq!(b.due_in(540), None, "already paused");
        b.speech_started(500, false);
        assert_eq!(b.due_in(560), None);
        b.speech_started(500, true);
        assert!(b.due_in(560).is_some(), "declared speech over the agent");
        b.speech_ended();
        assert_eq!(b.due_in(560), None);
    }

    #[test]
    fn a_short_voice_gone_for_150_ms_is_noise() {
        let mut b = BargeIn::new(100);
        b.frame(Some(1000), 1060, true, false, false);
        // The voice stops before the threshold: the onset is dropped.
        assert_eq!(b.frame(None, 1100, true, false, false), FrameVerdict::Nothing);
        assert_eq!(b.due_in(1100), None);
        assert_eq!(b.frame(None, 1200, true, false, false), FrameVerdict::Nothing);
        assert_eq!(b.frame(None, 1210, true, false, false), FrameVerdict::NoiseGone);
        // While the recogniser says the caller speaks, silence is not noise gone.
        b.frame(Some(2000), 2020, true, false, true);
        assert_eq!(b.frame(None, 2400, true, false, true), FrameVerdict::Nothing);
    }
}
