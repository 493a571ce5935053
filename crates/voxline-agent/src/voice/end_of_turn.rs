//! End of turn: how much silence ends the caller's turn. From the words
//! ([`assess`]): whether the caller's sentence, as the recogniser has it
//! once they fell silent (the early final), is clearly complete (the agent
//! may answer after a short silence), clearly not (a trailing "and", a
//! half-read account number: wait longer) or neither (the configured
//! hang-over). [`EndOfTurn`] owns that decision and sets the recogniser's
//! hang-over by it. English word lists; other languages get `Unclear`.

use super::Recognizer;
use tracing::debug;

/// The end-of-turn policy of one call: the silence that ends the caller's
/// turn, set on the recogniser as each utterance goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndOfTurn {
    /// The recogniser's configured hang-over, ms.
    configured_ms: u32,
    /// After a clearly finished sentence, ms.
    complete_ms: u32,
    /// After words that clearly go on, ms.
    incomplete_ms: u32,
}

impl EndOfTurn {
    /// The policy for a recogniser whose hang-over is `configured_ms` now.
    pub fn new(configured_ms: u32, complete_ms: u32, incomplete_ms: u32) -> EndOfTurn {
        EndOfTurn {
            configured_ms,
            complete_ms,
            incomplete_ms,
        }
    }

    /// The silence that ends a turn whose words were judged `end`, ms.
    pub fn hangover_ms(&self, end: TurnEnd) -> u32 {
        match end {
            TurnEnd::Complete => self.complete_ms,
            TurnEnd::Incomplete => self.incomplete_ms,
            TurnEnd::Unclear => self.configured_ms,
        }
    }

    /// An utterance starts or ends: the configured hang-over again.
    pub fn reset(&self, recognizer: &mut dyn Recognizer) {
        recognizer.set_hangover_ms(self.configured_ms);
    }

    /// The early final's words came while the caller is silent: judges
    /// them and sets the silence that ends this utterance by them.
    /// `digit_lengths`: lengths of numbers the caller may be reading.
    pub fn early_final(&self, recognizer: &mut dyn Recognizer, text: &str, digit_lengths: &[usize]) -> TurnEnd {
        let end = assess(text, digit_lengths);
        recognizer.set_hangover_ms(self.hangover_ms(end));
        debug!(?end, %text, "end of turn from the early final");
        end
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
    if TRAILING.contains(&last_word) {
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
    fn the_policy_picks_the_silence_by_the_words() {
        let p = EndOfTurn::new(500, 250, 1200);
        assert_eq!(p.hangover_ms(assess("Where is the branch?", &[])), 250);
        assert_eq!(p.hangover_ms(assess("My number is", &[8])), 1200);
        assert_eq!(p.hangover_ms(assess("yes", &[])), 500);
    }

    #[test]
    fn no_sign_is_unclear() {
        assert_eq!(assess("", &[]), TurnEnd::Unclear);
        assert_eq!(assess("yes", &[]), TurnEnd::Unclear);
        assert_eq!(assess("I need help with my card", &[]), TurnEnd::Unclear);
    }
}
