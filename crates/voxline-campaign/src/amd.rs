//! Answering-machine detection on the first seconds of an answered call.
//! Asterisk's AMD is the reference design: the audio's shape (silence
//! before the first word, how long the greeting runs, the silence after
//! it), read here with the recogniser's words ("leave a message", "not
//! available") and a tone detector for the beep after which a message is
//! left. A person answers briefly and waits; a machine talks on, names
//! itself, or beeps. People must hear the agent soon after their greeting,
//! so a short greeting followed by silence is a person as soon as its words
//! are known (or a moment later); a machine may take longer.
//!
//! [`Detector`] is the decision on 20 ms frames of 16 kHz audio and the
//! words heard; [`AnswerDetection`] runs it on a call leg.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;
use std::time::Duration;
use voxline_media::leg::{CallLeg, LegInput};
use voxline_media::LegEnd;
use voxline_text::words::has_phrase;

/// Samples in one 20 ms frame at 16 kHz.
const FRAME: usize = 320;
const FRAME_MS: u64 = 20;

/// What a campaign does when a machine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineAction {
    /// No detection: the agent talks to whoever answers.
    #[default]
    Off,
    /// Hang up on a machine (disposition `machine`).
    Hangup,
    /// Leave the campaign's message after the beep (`voicemail_left`).
    Message,
}

/// The detector's thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct AmdSettings {
    /// A frame louder than this (dBFS) is voice or tone.
    pub voice_dbfs: f32,
    /// A voiced run shorter than this is noise, not a word (ms).
    pub min_word_ms: u64,
    /// Silence that ends a greeting (ms).
    pub greeting_pause_ms: u64,
    /// A greeting that talks on longer than this is a machine's (ms, from
    /// its first word to its last voiced frame without a pause).
    pub max_human_greeting_ms: u64,
    /// No voice this long after the answer: a person waiting (ms).
    pub initial_silence_ms: u64,
    /// After a short greeting and its pause, how long its words may still
    /// take to come before the person is assumed (ms).
    pub words_wait_ms: u64,
    /// Undecided this long: a machine if it still talks, else a person (ms).
    pub max_ms: u64,
    /// A steady tone this long is a beep (ms).
    pub beep_ms: u64,
}

impl Default for AmdSettings {
    fn default() -> AmdSettings {
        AmdSettings {
            voice_dbfs: -38.0,
            min_word_ms: 100,
            greeting_pause_ms: 800,
            max_human_greeting_ms: 3000,
            initial_silence_ms: 3500,
            words_wait_ms: 1000,
            max_ms: 6000,
            beep_ms: 160,
        }
    }
}

/// Words of machines' greetings (whole words, any of them).
pub const MACHINE_WORDS: &[&str] = &[
    "leave a message",
    "leave your message",
    "leave me a message",
    "leave us a message",
    "leave a voicemail",
    "leave your name",
    "after the tone",
    "after the beep",
    "at the tone",
    "at the beep",
    "the beep",
    "voicemail",
    "voice mail",
    "mailbox",
    "not available",
    "unavailable",
    "can't take your call",
    "cannot take your call",
    "can't come to the phone",
    "can't get to the phone",
    "unable to answer",
    "away from my desk",
    "you've reached",
    "you have reached",
    "record your message",
    "not home",
    "office is closed",
    "press one",
    "extension",
    "all of our agents",
    "try later",
    "try again later",
    "you know what to do",
    "get back to you",
    "return your call",
    "answering service",
    "voice message",
];

/// Who answered, and why it was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person.
    Human(&'static str),
    /// An answering machine or a recorded system.
    Machine(&'static str),
}

impl Verdict {
    /// A machine.
    pub fn is_machine(self) -> bool {
        matches!(self, Verdict::Machine(_))
    }

    /// Why (`short greeting`, `beep`, `words`…).
    pub fn why(self) -> &'static str {
        match self {
            Verdict::Human(w) | Verdict::Machine(w) => w,
        }
    }
}

/// A verdict and when, in ms after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Who answered.
    pub verdict: Verdict,
    /// Audio time of the decision, ms after the answer.
    pub at_ms: u64,
}

/// Steady-tone tracking (the beep).
struct Tone {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    /// The tone's bin and how long it has held (ms).
    run: Option<(usize, u64)>,
}

impl Tone {
    fn new() -> Tone {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FRAME);
        let window = (0..FRAME)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / FRAME as f32).cos())
            .collect();
        Tone {
            input: vec![0.0; FRAME],
            spectrum: fft.make_output_vec(),
            fft,
            window,
            run: None,
        }
    }

    /// The frame's tone bin, when one frequency (300–3400 Hz, 50 Hz bins)
    /// holds most of its energy.
    fn tone_bin(&mut self, frame: &[i16]) -> Option<usize> {
        for (i, (x, w)) in self.input.iter_mut().zip(&self.window).enumerate() {
            *x = f32::from(frame.get(i).copied().unwrap_or(0)) * w;
        }
        self.fft.process(&mut self.input, &mut self.spectrum).ok()?;
        let power: Vec<f32> = self.spectrum.iter().map(|c| c.norm_sqr()).collect();
        // 50 Hz per bin at 16 kHz over 320 samples.
        let (lo, hi) = (6, 68.min(power.len() - 1));
        let total: f32 = power[lo - 2..=hi].iter().sum();
        if total <= 0.0 {
            return None;
        }
        let (peak, _) = power[lo..=hi]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, p)| (i + lo, *p))?;
        let around: f32 = power[peak - 1..=(peak + 1).min(power.len() - 1)].iter().sum();
        (around / total > 0.8).then_some(peak)
    }

    /// Takes a loud frame; true once a tone has held `beep_ms`.
    fn push(&mut self, frame: &[i16], loud: bool, beep_ms: u64) -> bool {
        let bin = if loud { self.tone_bin(frame) } else { None };
        self.run = match (bin, self.run) {
            (Some(b), Some((prev, ms))) if b.abs_diff(prev) <= 1 => Some((prev, ms + FRAME_MS)),
            (Some(b), _) => Some((b, FRAME_MS)),
            (None, _) => None,
        };
        self.run.is_some_and(|(_, ms)| ms >= beep_ms)
    }
}

/// The decision on one call's first seconds.
pub struct Detector {
    s: AmdSettings,
    tone: Tone,
    /// Audio time so far, ms.
    now: u64,
    /// The current run of voiced frames, ms.
    voiced_run: u64,
    /// The current run of quiet frames, ms.
    quiet_run: u64,
    /// Start of the first word, ms.
    first_word: Option<u64>,
    /// End of the last voiced frame of a word, ms.
    last_voice: Option<u64>,
    /// Start of the current stretch of talk (after the last greeting pause).
    talk_from: Option<u64>,
    /// The words heard so far, lowercase.
    words: String,
    /// When the last words came, ms.
    words_at: Option<u64>,
    /// When the last beep was heard (its end so far), ms.
    beep_at: Option<u64>,
    decision: Option<Decision>,
}

impl Detector {
    /// A detector with `settings`.
    pub fn new(settings: AmdSettings) -> Detector {
        Detector {
            s: settings,
            tone: Tone::new(),
            now: 0,
            voiced_run: 0,
            quiet_run: 0,
            first_word: None,
            last_voice: None,
            talk_from: None,
            words: String::new(),
            words_at: None,
            beep_at: None,
            decision: None,
        }
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    /// Audio time so far, ms after the answer.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// When a beep was last heard (ms), if one was.
    pub fn beep_at(&self) -> Option<u64> {
        self.beep_at
    }

    /// Silence since the last voiced frame, ms (all the call when none).
    pub fn quiet_ms(&self) -> u64 {
        self.quiet_run
    }

    /// Takes the next 20 ms frame; the decision when this frame makes it.
    pub fn push(&mut self, frame: &[i16]) -> Option<Decision> {
        self.now += FRAME_MS;
        let loud = dbfs(frame) > self.s.voice_dbfs;
        if self.tone.push(frame, loud, self.s.beep_ms) {
            self.beep_at = Some(self.now);
        }
        if loud {
            self.voiced_run += FRAME_MS;
            if self.voiced_run >= self.s.min_word_ms {
                let start = self.now - self.voiced_run;
                self.first_word.get_or_insert(start);
                if self.quiet_run > 0 || self.talk_from.is_none() {
                    self.talk_from.get_or_insert(start);
                }
                self.last_voice = Some(self.now);
                self.quiet_run = 0;
            }
        } else {
            self.voiced_run = 0;
            self.quiet_run += FRAME_MS;
            if self.quiet_run >= self.s.greeting_pause_ms {
                // A pause: the next talk is a new stretch.
                self.talk_from = None;
            }
        }
        if self.decision.is_none() {
            self.decision = self.decide().map(|verdict| Decision {
                verdict,
                at_ms: self.now,
            });
            return self.decision;
        }
        None
    }

    /// Takes words the recogniser heard (a partial or a final); the
    /// decision when they make it.
    pub fn heard(&mut self, text: &str) -> Option<Decision> {
        self.words.push(' ');
        self.words.push_str(&text.to_lowercase());
        self.words_at = Some(self.now);
        if self.decision.is_none() && machine_words(&self.words) {
            self.decision = Some(Decision {
                verdict: Verdict::Machine("words"),
                at_ms: self.now,
            });
            return self.decision;
        }
        None
    }

    fn decide(&self) -> Option<Verdict> {
        let s = &self.s;
        if self.beep_at.is_some() {
            return Some(Verdict::Machine("beep"));
        }
        let Some(_) = self.first_word else {
            return (self.now >= s.initial_silence_ms).then_some(Verdict::Human("silence"));
        };
        if let (Some(from), Some(last)) = (self.talk_from, self.last_voice) {
            if last.saturating_sub(from) > s.max_human_greeting_ms {
                return Some(Verdict::Machine("long greeting"));
            }
        }
        if self.quiet_run >= s.greeting_pause_ms {
            let greeting_end = self.last_voice.unwrap_or(0);
            let words_known = self.words_at.is_some_and(|at| at >= greeting_end);
            if words_known || self.quiet_run >= s.greeting_pause_ms + s.words_wait_ms {
                return Some(Verdict::Human("short greeting"));
            }
        }
        if self.now >= s.max_ms {
            return Some(if self.quiet_run < s.greeting_pause_ms {
                Verdict::Machine("still talking")
            } else {
                Verdict::Human("undecided")
            });
        }
        None
    }
}

/// Whether `words` hold a machine's words.
pub fn machine_words(words: &str) -> bool {
    has_phrase(&voxline_text::words::words(words), MACHINE_WORDS)
}

/// A frame's level, dBFS.
fn dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / frame.len() as f64).sqrt();
    if rms < 1.0 {
        -120.0
    } else {
        (20.0 * (rms / 32768.0).log10()) as f32
    }
}

/// The words side of detection: the call's recogniser.
#[async_trait::async_trait]
pub trait Listener: Send {
    /// Takes the next 16 kHz frame.
    fn push(&mut self, frame: &[i16]);
    /// The next words heard (a partial or a final). Cancel-safe; pends
    /// while there are none.
    async fn words(&mut self) -> Option<String>;
}

/// How detection on a leg ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// Decided.
    Decided(Decision),
    /// The call ended first.
    Ended(LegEnd),
}

/// How waiting for a machine's tone ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToneWait {
    /// The beep, then a moment of quiet: speak now.
    Beep,
    /// No beep, but the greeting is over (quiet): speak now.
    Quiet,
    /// Neither within the limit.
    TimedOut,
    /// The call ended.
    Ended(LegEnd),
}

/// Detection on one call leg.
pub struct AnswerDetection {
    detector: Detector,
}

impl AnswerDetection {
    /// Detection with `settings`.
    pub fn new(settings: AmdSettings) -> AnswerDetection {
        AnswerDetection {
            detector: Detector::new(settings),
        }
    }

    /// The detector (its figures).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Reads the leg (and the recogniser's words) until a decision or the
    /// call's end. DTMF and hold events are ignored meanwhile.
    pub async fn detect(&mut self, leg: &mut dyn CallLeg, listener: &mut dyn Listener) -> Detected {
        loop {
            tokio::select! {
                input = leg.recv() => match input {
                    LegInput::Frame(f) => {
                        listener.push(&f);
                        if let Some(d) = self.detector.push(&f) {
                            return Detected::Decided(d);
                        }
                    }
                    LegInput::Ended(end) => return Detected::Ended(end),
                    _ => {}
                },
                Some(words) = listener.words() => {
                    if let Some(d) = self.detector.heard(&words) {
                        return Detected::Decided(d);
                    }
                }
            }
        }
    }

    /// After a machine was detected: waits for its beep and `settle` of
    /// quiet after it, or (no beep) for `quiet` of silence after its
    /// greeting, at most `limit` from the answer.
    pub async fn wait_for_tone(
        &mut self,
        leg: &mut dyn CallLeg,
        settle: Duration,
        quiet: Duration,
        limit: Duration,
    ) -> ToneWait {
        let (settle, quiet, limit) = (millis(settle), millis(quiet), millis(limit));
        loop {
            let d = &self.detector;
            if let Some(beep) = d.beep_at() {
                if d.now_ms() >= beep + settle && d.quiet_ms() >= settle {
                    return ToneWait::Beep;
                }
            } else if d.quiet_ms() >= quiet && d.first_word.is_some() {
                return ToneWait::Quiet;
            }
            if d.now_ms() >= limit {
                return ToneWait::TimedOut;
            }
            match leg.recv().await {
                LegInput::Frame(f) => {
                    self.detector.push(&f);
                }
                LegInput::Ended(end) => return ToneWait::Ended(end),
                _ => {}
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of a sine at `hz`, amplitude `amp`, in 20 ms frames.
    fn tone(hz: f32, ms: u64, amp: f32) -> Vec<Vec<i16>> {
        let n = (ms / FRAME_MS) as usize;
        (0..n)
            .map(|f| {
                (0..FRAME)
                    .map(|i| {
                        let t = (f * FRAME + i) as f32 / 16_000.0;
                        (amp * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
                    })
                    .collect()
            })
            .collect()
    }

    /// Speech-like: a buzz of many harmonics of 120 Hz, its pitch drifting.
    fn talk(ms: u64) -> Vec<Vec<i16>> {
        let n = (ms / FRAME_MS) as usize;
        (0..n)
            .map(|f| {
                let f0 = 110.0 + 30.0 * ((f as f32) / 7.0).sin();
                (0..FRAME)
                    .map(|i| {
                        let t = (f * FRAME + i) as f32 / 16_000.0;
                        let s: f32 = (1..25)
                            .map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32)
                            .sum();
                        (2500.0 * s) as i16
                    })
                    .collect()
            })
            .collect()
    }

    fn quiet(ms: u64) -> Vec<Vec<i16>> {
        vec![vec![0i16; FRAME]; (ms / FRAME_MS) as usize]
    }

    fn run(d: &mut Detector, frames: Vec<Vec<i16>>) -> Option<Decision> {
        let mut out = None;
        for f in frames {
            out = out.or(d.push(&f));
        }
        out
    }

    #[test]
    fn a_short_greeting_then_silence_is_a_person() {
        let mut d = Detector::new(AmdSettings::default());
        run(&mut d, quiet(300));
        run(&mut d, talk(600));
        // Its words come 700 ms after it ended: decided then.
        run(&mut d, quiet(700));
        assert_eq!(d.decision(), None);
        assert_eq!(d.heard("Hello?"), None);
        let got = run(&mut d, quiet(200)).expect("decided");
        assert_eq!(got.verdict, Verdict::Human("short greeting"));
        assert_eq!(got.at_ms, 300 + 600 + 800);
    }

    #[test]
    fn without_its_words_a_short_greeting_is_a_person_a_moment_later() {
        let mut d = Detector::new(AmdSettings::default());
        run(&mut d, talk(500));
        let got = run(&mut d, quiet(2000)).expect("decided");
        assert_eq!(got.verdict, Verdict::Human("short greeting"));
        assert_eq!(got.at_ms, 500 + 800 + 1000);
    }

    #[test]
    fn a_long_greeting_words_or_a_beep_are_a_machine() {
        let mut d = Detector::new(AmdSettings::default());
        let got = run(&mut d, talk(5000)).expect("decided");
        assert_eq!(got.verdict, Verdict::Machine("long greeting"));
        assert!(got.at_ms <= 3200, "{got:?}");

        let mut d = Detector::new(AmdSettings::default());
        run(&mut d, talk(1200));
        let got = d.heard("Hi, this is Ben. Leave a message.").expect("decided");
        assert_eq!(got.verdict, Verdict::Machine("words"));

        let mut d = Detector::new(AmdSettings::default());
        run(&mut d, talk(1000));
        run(&mut d, quiet(300));
        let got = run(&mut d, tone(1000.0, 500, 8000.0)).expect("decided");
        assert_eq!(got.verdict, Verdict::Machine("beep"));
        assert_eq!(got.at_ms, 1000 + 300 + 160);
    }

    #[test]
    fn talk_is_not_a_beep_and_silence_is_a_waiting_person() {
        let mut d = Detector::new(AmdSettings::default());
        run(&mut d, talk(2500));
        assert_eq!(d.beep_at(), None, "speech heard as a tone");
        let mut d = Detector::new(AmdSettings::default());
        let got = run(&mut d, quiet(4000)).expect("decided");
        assert_eq!(got.verdict, Verdict::Human("silence"));
        assert_eq!(got.at_ms, 3500);
    }

    #[test]
    fn machine_words_match_whole_words() {
        assert!(machine_words("please leave a message after the tone"));
        assert!(machine_words("You’ve reached Ana"));
        assert!(!machine_words("hello, who is this?"));
        assert!(!machine_words("hello, my extensions")); // not the word "extension"
    }
}
