//! Checks on generated text before it is spoken: forbidden phrases are
//! replaced, never played; a number the facts do not hold (a made-up fee,
//! hour or rate), a phrase whose words mostly are not in the facts, or a
//! phrase said twice stops the reply. A phrase must come from one source:
//! its numbers and words from one passage (with the caller's words), so a
//! small model mixing two passages ("open from 9 a.m. to 10 p.m." from the
//! branches' hours and the airport branch's) is stopped too. A checked
//! phrase is the unit: the TTS speaks whole phrases, so nothing unchecked
//! reaches the caller.

use crate::knowledge::{english_analyzer, terms};
use std::collections::HashSet;
use tantivy::tokenizer::TextAnalyzer;
use voxline_text::words::{has_phrase, words};

/// Words any reply may use without the facts holding them.
const GLUE: &str = "sorry help thanks thank welcome glad happy sure course yes no okay call calling \
bank branch customer customers today now anything else information day days working";
use voxline_text::heard::normalize_english;

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

/// What one source of facts holds.
#[derive(Clone, Default)]
struct Source {
    numbers: Vec<String>,
    terms: HashSet<String>,
}

/// The guard for one reply: its forbidden phrases and the facts it may use.
#[derive(Clone)]
pub struct Guard {
    forbidden: Vec<String>,
    /// Each passage; a phrase draws on one of them.
    sources: Vec<Source>,
    /// What any phrase may use besides its passage (the caller's words,
    /// common words of replies).
    shared: Source,
    said: HashSet<String>,
    /// The passages that hold the sentence being said so far (its earlier
    /// phrases ended at a comma): its next phrase must come from one of them.
    sentence: Option<Vec<usize>>,
    analyzer: TextAnalyzer,
}

/// "9:00" for "9", "1000.00" for "1000": zeros after the point add nothing.
fn bare(x: &str) -> &str {
    match x.split_once(['.', ':']) {
        Some((whole, frac)) if frac.chars().all(|c| c == '0') => whole,
        _ => x,
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("sources", &self.sources.len()).finish()
    }
}

impl Guard {
    /// A guard for a reply grounded in `passages`; `shared` (the caller's
    /// words) may go with any of them. No passages: `shared` only.
    pub fn new(forbidden: &[String], passages: &[&str], shared: &[&str]) -> Guard {
        let mut analyzer = english_analyzer();
        let mut source = |texts: &mut dyn Iterator<Item = &str>| {
            let mut s = Source::default();
            for t in texts {
                // "9 a.m." may come back as "9:00"; "1000" as "1,000": both normalise alike.
                s.numbers.extend(numbers(t).iter().map(|n| bare(n).to_string()));
                s.terms.extend(terms(&mut analyzer, &normalize_english(t)));
            }
            s
        };
        let sources = passages.iter().map(|p| source(&mut std::iter::once(*p))).collect();
        let shared = source(&mut shared.iter().copied().chain(std::iter::once(GLUE)));
        Guard {
            forbidden: forbidden.to_vec(),
            sources,
            shared,
            said: HashSet::new(),
            sentence: None,
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
        let said_numbers = numbers(phrase);
        let no_passage = Source::default();
        let sources: Vec<(usize, &Source)> = if self.sources.is_empty() {
            vec![(0, &no_passage)]
        } else {
            self.sources.iter().enumerate().collect()
        };
        // Per passage (of those holding the sentence so far): the numbers
        // and words of the phrase it does not hold.
        let misses: Vec<(usize, Vec<&String>, Vec<&String>)> = sources
            .into_iter()
            .filter(|(i, _)| self.sentence.as_ref().is_none_or(|held| held.contains(i)))
            .map(|(i, src)| {
                let knows = |n: &str| {
                    let n = bare(n);
                    src.numbers.iter().chain(&self.shared.numbers).any(|k| k == n)
                };
                let numbers: Vec<&String> = said_numbers.iter().filter(|n| !knows(n)).collect();
                let words: Vec<&String> = t
                    .iter()
                    .filter(|x| {
                        !x.chars().any(|c| c.is_ascii_digit())
                            && !src.terms.contains(*x)
                            && !self.shared.terms.contains(*x)
                    })
                    .collect();
                (i, numbers, words)
            })
            .collect();
        // One stray word is wording; more than a third is not from the facts.
        let too_many = |unknown: &[&String]| unknown.len() > 1 && unknown.len() * 3 > t.len();
        let holding: Vec<usize> = misses
            .iter()
            .filter(|(_, n, w)| n.is_empty() && !too_many(w))
            .map(|(i, _, _)| *i)
            .collect();
        if holding.is_empty() {
            // Why, from the passage that came closest.
            let (_, numbers, words) = misses
                .into_iter()
                .min_by_key(|(_, n, w)| (n.len(), w.len()))
                .unwrap_or_default();
            let mixed = if self.sentence.is_some() {
                " (with the sentence's passage)"
            } else {
                ""
            };
            return Verdict::Ungrounded(match numbers.first() {
                Some(n) => format!("{n}{mixed}"),
                None => format!(
                    "{} not in the facts{mixed}",
                    words.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        // A sentence going on after this phrase stays with its passages.
        let ends_sentence = phrase.trim_end().ends_with(['.', '!', '?']);
        self.sentence = (!ends_sentence).then_some(holding);
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
            &["Branches open Monday to Friday from 9 a.m. to 5 p.m."],
            &["what time do you open"],
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

    #[test]
    fn a_phrase_mixing_two_passages_is_caught() {
        let mut g = Guard::new(
            &[],
            &[
                "Harbor Bank branches are open Monday to Friday from 9 a.m. to 5 p.m.",
                "The Airport branch is in Terminal 2. It is open every day from 6 a.m. to 10 p.m.",
                "The Downtown branch is at 12 Harbor Street, next to the central station.",
                "The Riverside branch is at 48 Mill Road, opposite the Riverside library.",
            ],
            &["When is the branch open? My card ends 4321."],
        );
        assert_eq!(g.check("Branches are open from 9 a.m. to 5 p.m."), Verdict::Speak);
        assert_eq!(
            g.check("The airport branch is open from 6 a.m. to 10 p.m."),
            Verdict::Speak
        );
        assert_eq!(
            g.check("Branches are open Monday to Friday from 9 a.m. to 10 p.m."),
            Verdict::Ungrounded("10".into()),
            "hours from two passages"
        );
        assert!(
            matches!(
                g.check("The Downtown branch is at 12 Harbor Street, opposite the Riverside library."),
                Verdict::Ungrounded(_)
            ),
            "an address from two passages"
        );
        assert_eq!(
            g.check("Your card ending 4321 can be used at the airport branch until 10 p.m."),
            Verdict::Speak,
            "the caller's words go with any passage"
        );
        // A sentence cut into phrases at its commas stays with one passage.
        assert_eq!(g.check("The Downtown branch is at 12 Harbor Street,"), Verdict::Speak);
        assert!(
            matches!(g.check("opposite the Riverside library."), Verdict::Ungrounded(_)),
            "the sentence's second half from another passage"
        );
        let mut g2 = Guard::new(
            &[],
            &[
                "The Downtown branch is at 12 Harbor Street, next to the central station.",
                "The Riverside branch is at 48 Mill Road, opposite the Riverside library.",
            ],
            &[],
        );
        assert_eq!(g2.check("The Downtown branch is at 12 Harbor Street,"), Verdict::Speak);
        assert_eq!(g2.check("next to the central station."), Verdict::Speak);
        assert_eq!(
            g2.check("The Riverside branch is at 48 Mill Road."),
            Verdict::Speak,
            "a new sentence may use another passage"
        );
    }
}
