//! Promises in other words. A forbidden line that is a promise ("I
//! promise the fee will be refunded") is said in endless wordings ("you'll
//! get every penny back, you have my word"), most too far in meaning from
//! it for the sentence model alone. A sentence says such a line when it
//! gives an assurance of its own (a promise, a guarantee, "definitely", "no
//! risk"; not one it denies: "I can't promise"), shares a word of the
//! line's subject (refund, money, loan, approved), and is still fairly
//! close to it in meaning.

use crate::meaning::content_words;
use voxline_text::words::{phrase_starts, words};

/// Phrases that make a statement an assurance (as [`words`] writes them).
const ASSURANCES: &[&str] = &[
    "promise",
    "promised",
    "promising",
    "guarantee",
    "guaranteed",
    "guarantees",
    "definitely",
    "certainly",
    "for sure",
    "for certain",
    "a certainty",
    "my word",
    "rest assured",
    "assure you",
    "100 percent",
    "hundred percent",
    "no doubt",
    "without a doubt",
    "count on it",
    "count on that",
    "bound to",
    "no risk",
    "risk free",
    "cannot lose",
    "can't lose",
    "can not lose",
    "i swear",
    "trust me",
    "no question about it",
    "without question",
    "won't lose",
    "will not lose",
    "no way you'll lose",
    "zero chance",
    "done deal",
    "bet my",
    "you can bet",
    "take it from me",
    "certain to",
    "make sure of it",
];

/// Words that deny an assurance when they come just before it ("I can't
/// promise", "there's no guarantee").
const DENIALS: &[&str] = &[
    "not", "can't", "cannot", "cant", "won't", "couldn't", "never", "unable", "no", "don't", "wouldn't",
];

/// Polite openers that are not assurances: "Certainly, let me look."
const OPENERS: &[&str] = &["certainly", "definitely"];

/// The words of promising itself, which say nothing of what is promised
/// (the claims "no risk", "cannot lose" are the subject, not these).
const PROMISING: &str = "promise promised promising guarantee guaranteed guarantees definitely certainly sure \
certain certainty word assure assured percent hundred doubt count bound swear done deal bet";

/// Content words of a promise that say nothing of its subject.
const NOT_SUBJECT: &[&str] = &["get", "got", "make", "go", "complet", "total", "absolut", "realli"];

/// Words before a bare "guarantee" that make it the speaker's act ("I
/// guarantee", "we can guarantee", "I'll guarantee").
const GUARANTORS: &[&str] = &["i", "we", "i'll", "we'll", "i'd", "can", "will", "personally"];

/// Words after a bare "guarantee" that make it a verb ("guarantee you",
/// "guarantee that", "guarantee it").
const GUARANTEED: &[&str] = &["you", "that", "it", "this", "your", "the"];

/// Whether `text` gives an assurance it does not deny.
pub fn assures(text: &str) -> bool {
    let w = words(text);
    let toks: Vec<&str> = w.split_whitespace().collect();
    ASSURANCES.iter().any(|a| {
        let one_word = !a.contains(' ');
        phrase_starts(&toks, a).any(|i| {
            if i == 0 && one_word && OPENERS.contains(a) {
                return false;
            }
            if matches!(*a, "guarantee" | "guarantees") && !guarantee_is_given(&toks, i) {
                return false;
            }
            let denied = !a.starts_with("no ") && toks[i.saturating_sub(3)..i].iter().any(|t| DENIALS.contains(t));
            !denied
        })
    })
}

/// Whether the bare "guarantee" at `i` is someone guaranteeing ("I
/// guarantee", "we guarantee you") rather than a thing named ("the deposit
/// guarantee scheme", "a guarantee on the bond").
fn guarantee_is_given(toks: &[&str], i: usize) -> bool {
    let before = &toks[i.saturating_sub(2)..i];
    before.iter().any(|t| GUARANTORS.contains(t)) || toks.get(i + 1).is_some_and(|t| GUARANTEED.contains(t))
}

/// The words of a promise's subject: its content words but for the
/// assurance itself and words of no subject.
pub fn subject_words(line: &str) -> Vec<String> {
    let assurance = content_words(PROMISING);
    content_words(line)
        .into_iter()
        .filter(|w| !assurance.contains(w) && !NOT_SUBJECT.contains(&w.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assurances_are_heard_and_denied_ones_are_not() {
        for yes in [
            "I promise the fee will be refunded.",
            "Relax, I guarantee the money will be there tomorrow.",
            "You'll get it back, you have my word.",
            "There's no risk at all, you simply cannot lose money.",
            "Your approval is a certainty.",
            "It will definitely be approved.",
            "You will certainly get it back.",
            "Yes, you'll be approved for that, no question about it.",
            "There's honestly zero chance of you losing a penny.",
            "We can guarantee that it will be approved.",
            "It's a done deal, you'll be approved, I'd bet my job on it.",
            "You're certain to get the loan.",
            "You'll get every penny back, I'll make sure of it.",
        ] {
            assert!(assures(yes), "{yes}");
        }
        for no in [
            "I can't promise the fee will be refunded.",
            "There's no guarantee it will be approved.",
            "I'm not able to guarantee that.",
            "Certainly, let me look at your account.",
            "Your refund has been processed.",
            "I will check the fee for you.",
            "Our bonds are protected by the deposit guarantee scheme.",
            "The guarantee on the bond lasts a year.",
            "I'm not certain to be honest.",
        ] {
            assert!(!assures(no), "{no}");
        }
    }

    #[test]
    fn a_promise_s_subject_leaves_out_the_promising() {
        assert_eq!(subject_words("I promise the fee will be refunded."), ["fee", "refund"]);
        assert_eq!(
            subject_words("Your loan will definitely be approved."),
            ["loan", "approv"]
        );
        assert_eq!(
            subject_words("This account is completely risk-free."),
            ["account", "risk", "free"]
        );
    }
}
