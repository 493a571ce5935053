//! Checks on generated text before it is spoken: forbidden phrases are
//! replaced, never played; a number the facts do not hold (a made-up fee,
//! hour or rate), a phrase whose words mostly are not in the facts, or a
//! phrase said twice stops the reply. A checked phrase is the unit: the TTS
//! speaks whole phrases, so nothing unchecked reaches the caller.

use crate::knowledge::{english_analyzer, terms};
use crate::router::{has_phrase, words};
use std::collections::HashSet;
use tantivy::tokenizer::TextAnalyzer;

/// Words any reply may use without the facts holding them.
const GLUE: &str = "sorry help thanks thank welcome glad happy sure course yes no okay call calling \
bank branch customer customers today now anything else information day days working";
use voxline_asr::text_norm::normalize_english;

/// What the guard says about a phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Speak it.
    Speak,
    /// It holds a forbidden phrase: say the replacement instead and stop.
    Forbidden,
    /// It states a number, or mostly words, the facts do not hold: drop it and stop.
    Ungrounded(String),
    /// It repeats an earlier phrase (the model is looping): drop it and stop.
    Repeated,
    /// It carries on the prompt ("Question: ...", "Facts: ..."): the model
    /// has stopped answering; drop it and stop.
    PromptEcho,
}

/// Labels of the prompt's parts ([`crate::prompt`]): a phrase holding one
/// is the model writing the next prompt, not an answer.
const PROMPT_LABELS: &[&str] = &["question:", "facts:", "your next task", "say it to the caller"];

/// The numbers in `text`, as digit strings ("nine a.m." → "9", "1,000" → "1000", "3.5" → "3.5").
pub fn numbers(text: &str) -> Vec<String> {
    normalize_english(text)
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The guard for one reply: its forbidden phrases and the facts it may use.
#[derive(Clone)]
pub struct Guard {
    forbidden: Vec<String>,
    known_numbers: Vec<String>,
    known_terms: HashSet<String>,
    said: HashSet<String>,
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("known_terms", &self.known_terms.len())
            .finish()
    }
}

impl Guard {
    /// A guard for a reply grounded in `facts` (passages and the caller's words).
    pub fn new(forbidden: &[String], facts: &[&str]) -> Guard {
        let mut known_numbers: Vec<String> = facts.iter().flat_map(|f| numbers(f)).collect();
        // "9 a.m." may come back as "9:00"; "1000" as "1,000": both normalise alike.
        known_numbers.sort();
        known_numbers.dedup();
        let mut analyzer = english_analyzer();
        let known_terms = facts
            .iter()
            .copied()
            .chain(std::iter::once(GLUE))
            .flat_map(|f| terms(&mut analyzer, &normalize_english(f)))
            .collect();
        Guard {
            forbidden: forbidden.to_vec(),
            known_numbers,
            known_terms,
            said: HashSet::new(),
            analyzer,
        }
    }

    /// Checks one phrase (and remembers it, to catch repetition).
    pub fn check(&mut self, phrase: &str) -> Verdict {
        let w = words(phrase);
        if has_phrase(&w, &self.forbidden) {
            return Verdict::Forbidden;
        }
        let lower = phrase.to_lowercase();
        if PROMPT_LABELS.iter().any(|l| lower.contains(l)) {
            return Verdict::PromptEcho;
        }
        if !self.said.insert(w.clone()) {
            return Verdict::Repeated;
        }
        // Spelled numbers become digits first: they are checked as numbers below.
        let t = terms(&mut self.analyzer, &normalize_english(phrase));
        let unknown: Vec<&String> = t
            .iter()
            .filter(|x| !x.chars().any(|c| c.is_ascii_digit()) && !self.known_terms.contains(*x))
            .collect();
        // One stray word is wording; more than a third is not from the facts.
        if unknown.len() > 1 && unknown.len() * 3 > t.len() {
            return Verdict::Ungrounded(format!(
                "{} not in the facts",
                unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        for n in numbers(phrase) {
            // "9:00" for "9", "1000.00" for "1000": zeros after the point add nothing.
            let bare = |x: &str| -> String {
                match x.split_once(['.', ':']) {
                    Some((whole, frac)) if frac.chars().all(|c| c == '0') => whole.to_string(),
                    _ => x.to_string(),
                }
            };
            if !self.known_numbers.iter().any(|k| bare(k) == bare(&n)) {
                return Verdict::Ungrounded(n);
            }
        }
        Verdict::Speak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_spoken_or_written_are_found() {
        assert_eq!(
            numbers("We open at nine a.m. and charge 1,000 dollars at 3.5%"),
            ["9", "1000", "3.5"]
        );
    }

    #[test]
    fn made_up_numbers_and_forbidden_phrases_are_caught() {
        let mut g = Guard::new(
            &["guaranteed return".to_string()],
            &[
                "Branches open Monday to Friday from 9 a.m. to 5 p.m.",
                "what time do you open",
            ],
        );
        assert_eq!(g.check("We open at 9 a.m. on weekdays."), Verdict::Speak);
        assert_eq!(g.check("We close at five."), Verdict::Speak);
        assert_eq!(g.check("We close at 6 p.m."), Verdict::Ungrounded("6".into()));
        assert_eq!(g.check("It has a Guaranteed Return!"), Verdict::Forbidden);
        assert_eq!(g.check("Our branches open Monday."), Verdict::Speak);
        assert_eq!(g.check("Our branches open Monday."), Verdict::Repeated);
        assert_eq!(g.check("Question: What time do you open?"), Verdict::PromptEcho);
        assert!(matches!(
            g.check("I'm sorry for your loss, the funeral costs nothing."),
            Verdict::Ungrounded(_)
        ));
    }
}
