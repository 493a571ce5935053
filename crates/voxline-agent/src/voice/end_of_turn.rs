//! End of turn: how much silence ends the caller's turn. Two judges hear
//! it when the caller falls silent: the words ([`assess`]: whether the
//! sentence, as the recogniser has it then (the early final), is clearly
//! complete, clearly not — a trailing "and", a half-read account number —
//! or neither) and, when the recogniser has one, the audio end-of-turn
//! model (smart-turn: how the caller's voice finished). [`EndOfTurn`] owns
//! the decision and sets the recogniser's hang-over by it: a short silence
//! when both agree the caller is done, a long one when either says they
//! are not, the configured hang-over while a judge is still out or
//! neither is sure. English word lists; other languages get `Unclear`.

use super::Recognizer;
use tracing::debug;

/// The audio model's probability from which a turn sounds complete.
pub const AUDIO_COMPLETE: f32 = 0.5;

/// The silences that end the caller's turn, by what the judges say (an
/// agent route's `turn_*_ms` parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnSilences {
    /// Both judges say the caller is done (or the words are unsure and
    /// the voice finished), ms.
    pub complete_ms: u32,
    /// The words stop mid-sentence: a trailing "and", "the", "um", a
    /// half-read number. The strongest sign the caller goes on, ms.
    pub incomplete_ms: u32,
    /// The words look finished or unsure but the voice sounds unfinished
    /// (the audio model), ms.
    pub voice_incomplete_ms: u32,
    /// The voice sounds finished but the early final's words are still
    /// being decoded: the turn stays open this long for them (they come
    /// ~400–600 ms into the silence; a trailing "is" must not be lost to
    /// the configured hang-over running out first), ms.
    pub words_wait_ms: u32,
}

impl Default for TurnSilences {
    fn default() -> TurnSilences {
        TurnSilences {
            complete_ms: 250,
            incomplete_ms: 2000,
            voice_incomplete_ms: 1200,
            words_wait_ms: 800,
        }
    }
}

/// The end-of-turn policy of one call: the silence that ends the caller's
/// turn, set on the recogniser as each utterance goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndOfTurn {
    /// The recogniser's configured hang-over, ms.
    configured_ms: u32,
    /// The silences chosen from.
    silences: TurnSilences,
    /// Whether the audio model hears each turn's end (its verdict is
    /// waited for before a short hang-over).
    audio_model: bool,
    /// This utterance's judges so far.
    words: Option<TurnEnd>,
    audio: Option<f32>,
}

impl EndOfTurn {
    /// The policy for a recogniser whose hang-over is `configured_ms` now;
    /// `audio_model`: it reports the audio model's verdicts.
    pub fn new(configured_ms: u32, silences: TurnSilences, audio_model: bool) -> EndOfTurn {
        EndOfTurn {
            configured_ms,
            silences,
            audio_model,
            words: None,
            audio: None,
        }
    }

    /// The silence that ends a turn whose words were judged `words` and
    /// whose audio `audio` (probability complete), ms; `None`: that judge
    /// has not spoken yet (or is not there). Words that stop mid-sentence
    /// wait longest whatever the voice did: synthetic and tired voices fall
    /// in pitch at every pause, and a trailing "and" is never an ending.
    pub fn hangover_ms(&self, words: Option<TurnEnd>, audio: Option<f32>) -> u32 {
        let audio_done = audio.map(|p| p >= AUDIO_COMPLETE);
        let s = &self.silences;
        match (words, audio_done) {
            (Some(TurnEnd::Incomplete), _) => s.incomplete_ms,
            (_, Some(false)) => s.voice_incomplete_ms,
            (Some(TurnEnd::Complete | TurnEnd::Unclear), Some(true)) => s.complete_ms,
            (Some(TurnEnd::Complete), None) if !self.audio_model => s.complete_ms,
            (None, Some(true)) => self.configured_ms.max(s.words_wait_ms),
            _ => self.configured_ms,
        }
    }

    /// An utterance starts or ends: the configured hang-over again.
    pub fn reset(&mut self, recognizer: &mut dyn Recognizer) {
        self.words = None;
        self.audio = None;
        recognizer.set_hangover_ms(self.configured_ms);
    }

    /// The early final's words came while the caller is silent: judges
    /// them and sets the silence that ends this utterance.
    /// `digit_lengths`: lengths of numbers the caller may be reading.
    pub fn early_final(&mut self, recognizer: &mut dyn Recognizer, text: &str, digit_lengths: &[usize]) -> TurnEnd {
        let end = assess(text, digit_lengths);
        self.words = Some(end);
        let ms = self.hangover_ms(self.words, self.audio);
        recognizer.set_hangover_ms(ms);
        debug!(?end, audio = ?self.audio, hangover_ms = ms, %text, "end of turn from the early final");
        end
    }

    /// The audio model heard the caller fall silent: `complete` is its
    /// probability that they finished; sets the silence that ends this
    /// utterance.
    pub fn heard(&mut self, recognizer: &mut dyn Recognizer, complete: f32) {
        self.audio = Some(complete);
        let ms = self.hangover_ms(self.words, self.audio);
        recognizer.set_hangover_ms(ms);
        debug!(complete, words = ?self.words, hangover_ms = ms, "end of turn from the audio");
    }
}

/// What the words say about the end of the caller's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEnd {
    /// A finished sentence or question: end the turn after a short silence.
    Complete,
    /// The caller is mid-sentence or mid-number: wait longer.
    Incomplete,
    /// No clear sign either way: the configured hang-over.
    Unclear,
}

/// Words a sentence does not end on: conjunctions, articles, possessives,
/// prepositions and fillers.
const TRAILING: &[&str] = &[
    "and", "or", "but", "so", "because", "cause", "if", "then", "than", "that", "which", "who", "where", "when", "the",
    "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "these", "those", "to", "of", "for", "with",
    "at", "in", "on", "from", "by", "about", "into", "is", "are", "was", "am", "be", "um", "uh", "er", "erm", "hmm",
    "like", "also", "plus", "number", "it's", "i'm", "i",
];

/// Of [`TRAILING`], the words a question does not end on either: a
/// question may end on a preposition or a verb ("What is this charge
/// for?", "Do you know where it is?"), not on a conjunction, an article,
/// a possessive or a filler.
const TRAILING_IN_QUESTIONS: &[&str] = &[
    "and", "or", "but", "because", "cause", "if", "than", "the", "a", "an", "my", "your", "our", "their", "um", "uh",
    "er", "erm", "hmm",
];

/// Whether the caller's turn looks finished. `digit_lengths`: lengths of
/// numbers the caller may be reading (an account number being asked for);
/// a number at the end shorter than all of them is half-read.
pub fn assess(text: &str, digit_lengths: &[usize]) -> TurnEnd {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return TurnEnd::Unclear;
    }
    if trimmed.ends_with(',') || trimmed.ends_with("...") || trimmed.ends_with('-') {
        return TurnEnd::Incomplete;
    }
    let normal = voxline_text::heard::normalize_english(trimmed);
    let words: Vec<&str> = normal.split_whitespace().collect();
    let Some(last) = words.last() else {
        return TurnEnd::Unclear;
    };
    // A number being read: the digits at the end so far.
    let trailing_digits: usize = words
        .iter()
        .rev()
        .take_while(|w| w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| w.len())
        .sum();
    if trailing_digits > 0 && !digit_lengths.is_empty() && digit_lengths.iter().all(|&n| trailing_digits < n) {
        return TurnEnd::Incomplete;
    }
    let last_word = last.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
    let trailing = if trimmed.ends_with('?') {
        TRAILING_IN_QUESTIONS
    } else {
        TRAILING
    };
    if trailing.contains(&last_word) {
        return TurnEnd::Incomplete;
    }
    if trimmed.ends_with('?') || ((trimmed.ends_with('.') || trimmed.ends_with('!')) && words.len() >= 2) {
        return TurnEnd::Complete;
    }
    TurnEnd::Unclear
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_sentences_and_questions_are_complete() {
        assert_eq!(assess("Where is the Downtown branch?", &[]), TurnEnd::Complete);
        assert_eq!(assess("I lost my card.", &[]), TurnEnd::Complete);
        assert_eq!(assess("What time do you open on Saturday?", &[8]), TurnEnd::Complete);
        assert_eq!(assess("Goodbye!", &[]), TurnEnd::Unclear, "one word: no clear sign");
        // Questions end on prepositions and verbs.
        assert_eq!(
            assess("What is this charge on my statement for?", &[]),
            TurnEnd::Complete
        );
        assert_eq!(assess("Do you know where the branch is?", &[]), TurnEnd::Complete);
        assert_eq!(assess("Who is the letter from?", &[]), TurnEnd::Complete);
        // Not on a conjunction or an article, question mark or not.
        assert_eq!(assess("Can I pay by card and?", &[]), TurnEnd::Incomplete);
        assert_eq!(assess("Is it about the?", &[]), TurnEnd::Incomplete);
    }

    #[test]
    fn trailing_words_and_half_read_numbers_are_incomplete() {
        assert_eq!(assess("I want to check my balance and", &[]), TurnEnd::Incomplete);
        assert_eq!(assess("I want to check my balance and.", &[]), TurnEnd::Incomplete);
        assert_eq!(assess("My account number is", &[8]), TurnEnd::Incomplete);
        assert_eq!(assess("Um, so the", &[]), TurnEnd::Incomplete);
        assert_eq!(assess("I was wondering,", &[]), TurnEnd::Incomplete);
        // Four of eight digits read (spoken or written), then a pause.
        assert_eq!(assess("It's one two three four.", &[8]), TurnEnd::Incomplete);
        assert_eq!(assess("1234", &[8]), TurnEnd::Incomplete);
        // All eight: done.
        assert_eq!(assess("It's 1 2 3 4 5 6 7 8.", &[8]), TurnEnd::Complete);
        // No number asked for: a number at the end is not half-read.
        assert_eq!(assess("Is branch 12 open?", &[]), TurnEnd::Complete);
    }

    #[test]
    fn without_the_audio_model_the_words_pick_the_silence() {
        let p = EndOfTurn::new(500, TurnSilences::default(), false);
        let words = |t: &str, d: &[usize]| Some(assess(t, d));
        assert_eq!(p.hangover_ms(words("Where is the branch?", &[]), None), 250);
        assert_eq!(p.hangover_ms(words("My number is", &[8]), None), 2000);
        assert_eq!(p.hangover_ms(words("yes", &[]), None), 500);
        assert_eq!(p.hangover_ms(None, None), 500);
    }

    #[test]
    fn with_the_audio_model_both_must_agree_for_a_short_silence() {
        use TurnEnd::*;
        let p = EndOfTurn::new(500, TurnSilences::default(), true);
        // Both say done: short.
        assert_eq!(p.hangover_ms(Some(Complete), Some(0.9)), 250);
        // Words unsure, the voice finished: short.
        assert_eq!(p.hangover_ms(Some(Unclear), Some(0.7)), 250);
        // The voice says not done: long.
        assert_eq!(p.hangover_ms(Some(Complete), Some(0.2)), 1200);
        assert_eq!(p.hangover_ms(None, Some(0.1)), 1200);
        // The words stop mid-sentence: longest, whatever the voice did.
        assert_eq!(p.hangover_ms(Some(Incomplete), Some(0.95)), 2000);
        assert_eq!(p.hangover_ms(Some(Incomplete), Some(0.1)), 2000);
        // A judge still out: the configured silence, never the short one.
        assert_eq!(p.hangover_ms(Some(Complete), None), 500);
        // The voice finished, the words are still out: wait for them.
        assert_eq!(p.hangover_ms(None, Some(0.9)), 800);
        assert_eq!(p.hangover_ms(Some(Unclear), None), 500);
    }

    #[test]
    fn no_sign_is_unclear() {
        assert_eq!(assess("", &[]), TurnEnd::Unclear);
        assert_eq!(assess("yes", &[]), TurnEnd::Unclear);
        assert_eq!(assess("I need help with my card", &[]), TurnEnd::Unclear);
    }
}
