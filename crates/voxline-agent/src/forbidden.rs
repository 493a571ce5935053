//! Forbidden phrases matched in other words. A pack's phrase ("guarantee
//! you", "risk-free", "tell me your PIN") matches a reply that says it with
//! another form of its words (stems: "guaranteed", "promises"), a word of
//! the same kind of act (an assurance: guarantee, promise, assure, warrant;
//! a hand-over: tell, give, read, share, send), other words in between (at
//! most two per gap), another determiner in its middle ("tell me the PIN"),
//! and, for a phrase of content words only ("guaranteed return", "legal
//! advice"), in any order ("your returns are guaranteed"). "W-free" also
//! matches "no W", "zero W", "without (any) W". The words at a phrase's ends
//! are kept as written (with their kind): "your PIN is" does not match "the
//! PIN is sent by post", nor "never ask for your PIN".

use std::collections::HashSet;
use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

/// Words of one kind: a forbidden phrase's word matches any of its kind
/// (stems; the first of each group stands for it).
const KINDS: &[&[&str]] = &[
    // An assurance.
    &["guarante", "promis", "assur", "warrant", "pledg", "vouch"],
    // Handing something over to the speaker.
    &[
        "tell", "told", "give", "gave", "read", "share", "send", "sent", "spell", "provid", "say", "said",
    ],
    // The speaker's side.
    &["me", "us"],
    // Being, now.
    &["is", "are", "s"],
    // None of it.
    &["no", "zero", "without", "nil"],
];

/// Determiners: any one may stand for another in a phrase's middle, or be
/// left out there.
const DETERMINERS: &[&str] = &["your", "the", "my", "our", "a", "an", "this", "that", "any"];

/// Words that are not content: a phrase holding one keeps its word order.
const FUNCTION: &[&str] = &[
    "i", "you", "we", "me", "us", "it", "is", "are", "s", "be", "to", "of", "for", "and", "or",
];

/// Most other words between two words of a phrase.
const MAX_GAP: usize = 2;

/// One word of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A word of this kind (canonical stem).
    Word(String),
    /// A determiner, or none (a phrase's middle).
    Det,
}

/// One way a phrase may be said.
#[derive(Debug, Clone)]
struct Pattern {
    steps: Vec<Step>,
    /// Its words may come in any order (content words only).
    any_order: bool,
}

/// A pack's forbidden phrases, ready to match replies.
#[derive(Clone)]
pub struct ForbiddenPhrases {
    patterns: Vec<Pattern>,
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for ForbiddenPhrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForbiddenPhrases")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The kind of a stem: its group's first stem, else itself.
fn kind(stem: &str) -> String {
    KINDS
        .iter()
        .find(|g| g.contains(&stem))
        .map_or(stem, |g| g[0])
        .to_string()
}

impl ForbiddenPhrases {
    /// The patterns of `phrases`.
    pub fn new(phrases: &[String]) -> ForbiddenPhrases {
        let mut analyzer = analyzer();
        let mut patterns = Vec::new();
        for p in phrases {
            let stems = stems(&mut analyzer, p);
            if stems.is_empty() {
                continue;
            }
            let last = stems.len() - 1;
            let steps: Vec<Step> = stems
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if i > 0 && i < last && DETERMINERS.contains(&s.as_str()) {
                        Step::Det
                    } else {
                        Step::Word(kind(s))
                    }
                })
                .collect();
            let content = stems
                .iter()
                .all(|s| !FUNCTION.contains(&s.as_str()) && !DETERMINERS.contains(&s.as_str()));
            patterns.push(Pattern {
                steps: steps.clone(),
                any_order: content && stems.len() > 1,
            });
            // "W-free" is also "no W", "zero W", "without (any) W".
            if let Some(at) = stems.iter().position(|s| s == "free").filter(|&i| i > 0) {
                let mut none = steps[..at - 1].to_vec();
                none.push(Step::Word(kind("no")));
                none.push(steps[at - 1].clone());
                none.extend_from_slice(&steps[at + 1..]);
                patterns.push(Pattern {
                    steps: none,
                    any_order: false,
                });
            }
        }
        ForbiddenPhrases { patterns, analyzer }
    }

    /// Whether `text` says one of the phrases (in its words or others).
    pub fn matches(&mut self, text: &str) -> bool {
        let said: Vec<String> = stems(&mut self.analyzer, text).iter().map(|s| kind(s)).collect();
        self.patterns.iter().any(|p| {
            if p.any_order {
                any_order(&said, &p.steps)
            } else {
                (0..said.len()).any(|i| in_order(&said, i, &p.steps))
            }
        })
    }
}

/// The stems of `text`'s words, lower case ("risk-free" is two words).
fn stems(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let text = text.replace(['\u{2019}', '\u{2018}'], "'");
    crate::knowledge::terms(analyzer, &text)
}

/// Whether `steps` match `said` from position `i`, in order, with gaps.
fn in_order(said: &[String], i: usize, steps: &[Step]) -> bool {
    let Some((first, rest)) = steps.split_first() else {
        return true;
    };
    match first {
        Step::Det => {
            // Left out, or one determiner.
            in_order(said, i, rest)
                || said
                    .get(i)
                    .is_some_and(|w| DETERMINERS.contains(&w.as_str()) && in_order(said, i + 1, rest))
        }
        Step::Word(w) => {
            if said.get(i) != Some(w) {
                return false;
            }
            if rest.is_empty() {
                return true;
            }
            (i + 1..=i + 1 + MAX_GAP).any(|j| j <= said.len() && in_order(said, j, rest))
        }
    }
}

/// Whether every word of `steps` is in `said` within a window a little
/// longer than the phrase, in any order.
fn any_order(said: &[String], steps: &[Step]) -> bool {
    let want: HashSet<&String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Word(w) => Some(w),
            Step::Det => None,
        })
        .collect();
    let window = steps.len() + 1 + MAX_GAP;
    (0..said.len()).any(|i| {
        let seen: HashSet<&String> = said[i..(i + window).min(said.len())].iter().collect();
        want.iter().all(|w| seen.contains(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> ForbiddenPhrases {
        let phrases: Vec<String> = [
            "guaranteed return",
            "guarantee you",
            "risk-free",
            "your PIN is",
            "tell me your PIN",
            "password is",
            "I promise",
            "legal advice",
            "investment advice",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        ForbiddenPhrases::new(&phrases)
    }

    #[test]
    fn a_forbidden_phrase_is_found_in_other_words() {
        let mut f = demo();
        for said in [
            "It has a Guaranteed Return!",
            "Your returns on it are guaranteed.",
            "I can assure you the card arrives tomorrow.",
            "I guarantee that the card arrives tomorrow.",
            "It is completely risk free.",
            "There is no risk at all.",
            "It carries zero risk.",
            "It is totally without any risk.",
            "Your new PIN is 4821.",
            "Please tell me the PIN you used before.",
            "Can you give me your PIN?",
            "Could you read me your PIN so I can check?",
            "Your password is harbor123.",
            "I can promise the card arrives in 5 days.",
            "My advice, though not legal, is to wait.",
        ] {
            assert!(f.matches(said), "not caught: {said}");
        }
    }

    #[test]
    fn true_answers_near_a_forbidden_phrase_are_let_through() {
        let mut f = demo();
        for said in [
            "Harbor Bank will never ask for your PIN on the phone.",
            "The PIN is sent by post and arrives in 3 to 5 working days.",
            "A card can be declined when your PIN was entered wrongly three times.",
            "Please key in the last four digits of the card.",
            "There is no annual fee.",
            "Transfers within the country are free and arrive the same day.",
            "Blocking is free.",
            "The Harbor Saver account pays 3.5 percent interest a year.",
            "If you forgot your online banking password, choose Forgot password on the sign-in page.",
        ] {
            assert!(!f.matches(said), "caught: {said}");
        }
    }
}
