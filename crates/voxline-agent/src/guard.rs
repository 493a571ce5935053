//! Checks on generated text before it is spoken: forbidden phrases are
//! replaced, never played; a number the facts do not hold (a made-up fee,
//! hour or rate), a phrase whose words mostly are not in the facts, or a
//! phrase said twice stops the reply. A phrase must come from one source:
//! its words from one passage (with the caller's words), its numbers from
//! one sentence of that passage that answers the question (decision 0040),
//! so a small model mixing two passages ("open from 9 a.m. to 10 p.m." from
//! the branches' hours and the airport branch's) or telling a figure of one
//! subject about another ("the daily ATM limit is 3,000 dollars", the card
//! spending limit) is stopped too. The facts of one answer come from one
//! passage. A checked phrase is the unit: the TTS speaks whole phrases, so
//! nothing unchecked reaches the caller.

use crate::forbidden::ForbiddenPhrases;
use crate::knowledge::{english_analyzer, fact_terms};
use crate::relevance::split_sentences;
use std::collections::HashSet;
use tantivy::tokenizer::TextAnalyzer;
use voxline_text::words::words;

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
    /// It says nothing of the facts: the caller's words back ("You forgot
    /// your online banking password.") or a bare "yes, it does" (a yes/no
    /// claim with nothing to ground it): drop it and go on.
    Echo,
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

/// The ranges `text` states of one quantity ("from 500 to 10,000 dollars",
/// "3 to 5 working days", "between 2 and 4 hours") as pairs of digit
/// strings. Times of day ("from 9 a.m. to 5 p.m.") are not ranges: saying
/// when a branch opens without when it closes is an answer, saying a credit
/// limit starts at 500 when asked the highest is not.
pub fn ranges(text: &str) -> Vec<(String, String)> {
    let toks: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    let bare_word = |w: &str| {
        w.trim_matches(|c: char| !c.is_alphanumeric() && c != '%' && c != '.')
            .to_string()
    };
    let num = |w: &str| -> Option<String> {
        let w = bare_word(w);
        w.chars().next().filter(char::is_ascii_digit)?;
        numbers(&w).into_iter().next().map(|n| bare(&n).to_string())
    };
    let unit = |w: &str| {
        matches!(
            bare_word(w).trim_end_matches('.'),
            "dollars" | "dollar" | "cents" | "percent" | "%"
        )
    };
    let time = |w: Option<&String>| {
        w.is_some_and(|w| {
            matches!(
                bare_word(w).trim_end_matches('.'),
                "a.m" | "p.m" | "am" | "pm" | "o'clock"
            )
        })
    };
    let mut out = Vec::new();
    for j in 1..toks.len().saturating_sub(1) {
        let word = bare_word(&toks[j]);
        if word != "to" && word != "and" {
            continue;
        }
        let a_at = if unit(&toks[j - 1]) && j >= 2 { j - 2 } else { j - 1 };
        let (Some(a), Some(b)) = (num(&toks[a_at]), num(&toks[j + 1])) else {
            continue;
        };
        if time(toks.get(a_at + 1)) || time(toks.get(j + 2)) {
            continue;
        }
        // "3 dollars and 5 percent" are two facts; "between 2 and 4" one range.
        if word == "and" && (a_at == 0 || bare_word(&toks[a_at - 1]) != "between") {
            continue;
        }
        out.push((a, b));
    }
    out
}

/// Words that make the number before them a quantity: an amount, a rate, a
/// time span ("3-day", "15 dollars", "5 working days").
const UNITS: &[&str] = &[
    "dollar", "dollars", "cent", "cents", "percent", "day", "days", "week", "weeks", "month", "months", "year",
    "years", "hour", "hours", "minute", "minutes", "working", "business", "am", "pm", "a.m", "p.m",
];

/// The numbers of `text` said as quantities, each followed by a unit word
/// ("a 3-day trial" → 3; "card ending 1234" → none).
pub fn quantities(text: &str) -> Vec<String> {
    let norm = normalize_english(text).replace('-', " ");
    let words: Vec<&str> = norm.split_whitespace().collect();
    words
        .iter()
        .enumerate()
        .filter(|(i, w)| {
            w.chars().any(|c| c.is_ascii_digit())
                && words.get(i + 1).is_some_and(|u| {
                    UNITS.contains(
                        &u.trim_matches(|c: char| !c.is_alphanumeric() && c != '.')
                            .trim_end_matches('.'),
                    )
                })
        })
        .map(|(_, w)| w.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Words that make the number after them (within two words) an identifier
/// the caller gave: "your card ending 1234", "account number 5521",
/// "reference 88".
const IDENTIFIERS: &[&str] = &[
    "ending",
    "number",
    "numbers",
    "no",
    "account",
    "card",
    "reference",
    "ref",
    "code",
    "extension",
    "id",
    "phone",
    "digits",
    "order",
    "invoice",
    "ticket",
    "case",
    "policy",
    "meter",
    "customer",
    "member",
    "contract",
    "booking",
    "reservation",
];

/// The numbers of `text` said as identifiers ([`IDENTIFIERS`]): only those
/// of the caller's numbers may be said back without a fact holding them.
pub fn identifiers(text: &str) -> Vec<String> {
    let norm = normalize_english(text);
    let words: Vec<&str> = norm.split_whitespace().collect();
    let bare_word = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string();
    words
        .iter()
        .enumerate()
        .filter(|(i, w)| {
            w.chars().any(|c| c.is_ascii_digit())
                && words[i.saturating_sub(2)..*i]
                    .iter()
                    .any(|p| IDENTIFIERS.contains(&bare_word(p).as_str()))
        })
        .map(|(_, w)| w.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// What one source of facts holds.
#[derive(Clone, Default)]
struct Source {
    /// Per sentence that may be stated: its numbers.
    facts: Vec<Vec<String>>,
    /// Per sentence that may be stated: the ranges it states ([`ranges`]),
    /// whose two ends go together.
    ranges: Vec<Vec<(String, String)>>,
    /// The caller's numbers (the shared source only: a passage's figures
    /// are in `facts`, sentence by sentence).
    numbers: Vec<String>,
    /// The words of the passage and its heading.
    terms: HashSet<String>,
    /// The words of its heading: what it is about.
    title: HashSet<String>,
    /// One of its answering sentences denies something ("There is no
    /// annual fee."): only then may a phrase deny.
    denies: bool,
}

/// Words that deny: a phrase holding one states a "no" as fact.
const DENIALS: &[&str] = &["no", "not", "never", "none", "nothing", "nobody", "cannot", "nor"];

/// Whether `text` denies something ("no,", "you do not save", "isn't").
pub fn denies(text: &str) -> bool {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .any(|w| DENIALS.contains(&w) || w.ends_with("n't") || w.ends_with("n’t"))
}

/// Words that say yes: a phrase of one and nothing of the facts claims
/// what it does not say.
const AFFIRMATIONS: &[&str] = &["yes", "yeah", "yep", "correct", "absolutely", "indeed"];

/// Whether `text` starts by saying yes ("Yes, it does.").
pub fn affirms(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .is_some_and(|w| AFFIRMATIONS.contains(&w.to_lowercase().as_str()))
}

/// What one passage lacks of a phrase.
#[derive(Default)]
struct Miss {
    passage: usize,
    /// Numbers no answering sentence holds (with the phrase's others).
    numbers: Vec<String>,
    /// Words neither the passage nor the caller's words hold.
    words: Vec<String>,
    /// The caller's named things the phrase ties a fact to, not in the passage.
    mistied: Vec<String>,
}

/// A passage an answer may draw on.
#[derive(Debug, Clone, Copy)]
pub struct Ground<'a> {
    /// Its heading.
    pub title: &'a str,
    /// Its text: the words a phrase may use.
    pub text: &'a str,
    /// Its sentences that answer the question: the facts a phrase may state.
    pub answering: &'a [&'a str],
}

/// The guard for one reply: its forbidden phrases and the facts it may use.
#[derive(Clone)]
pub struct Guard {
    /// The pack's forbidden phrases, matched in other words too.
    forbidden: ForbiddenPhrases,
    /// Each passage; a phrase draws on one of them.
    sources: Vec<Source>,
    /// What any phrase may use besides its passage (the caller's words,
    /// common words of replies).
    shared: Source,
    said: HashSet<String>,
    /// The passages that hold the sentence being said so far (its earlier
    /// phrases ended at a comma): its next phrase must come from one of them.
    sentence: Option<Vec<usize>>,
    /// The passages that hold the facts stated so far: the answer's next
    /// fact must come from one of them.
    stated: Option<Vec<usize>>,
    /// The caller's words that name something of the knowledge: a phrase
    /// stating a fact must not tie it to one its passage does not hold.
    topic: HashSet<String>,
    /// The caller's own words: a phrase of nothing else only says their
    /// question back.
    caller: HashSet<String>,
    /// The terms of [`GLUE`].
    glue: HashSet<String>,
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
    /// A guard for a reply grounded in `passages`, any of whose sentences
    /// may be stated; `shared` (the caller's words) may go with any of them.
    /// No passages: `shared` only.
    pub fn new(forbidden: &[String], passages: &[&str], shared: &[&str]) -> Guard {
        let sentences: Vec<Vec<String>> = passages.iter().map(|p| split_sentences(p)).collect();
        let answering: Vec<Vec<&str>> = sentences
            .iter()
            .map(|s| s.iter().map(String::as_str).collect())
            .collect();
        let grounds: Vec<Ground> = passages
            .iter()
            .zip(&answering)
            .map(|(text, answering)| Ground {
                title: "",
                text,
                answering,
            })
            .collect();
        Guard::grounded(forbidden, &grounds, shared, &[])
    }

    /// A guard for a reply grounded in `grounds`: each phrase's words from
    /// one of them, its numbers from one of that passage's answering
    /// sentences; `shared` (the caller's words) may go with any of them;
    /// `topic` (the caller's words the knowledge holds, analysed) may only
    /// go with a fact whose passage holds them.
    pub fn grounded(forbidden: &[String], grounds: &[Ground], shared: &[&str], topic: &[String]) -> Guard {
        let mut analyzer = english_analyzer();
        // "9 a.m." may come back as "9:00"; "1000" as "1,000": both normalise alike.
        let bare_numbers = |t: &str| numbers(t).iter().map(|n| bare(n).to_string()).collect::<Vec<_>>();
        let sources = grounds
            .iter()
            .map(|g| {
                let title: HashSet<String> = fact_terms(&mut analyzer, g.title).into_iter().collect();
                let mut terms: HashSet<String> = fact_terms(&mut analyzer, g.text).into_iter().collect();
                terms.extend(title.iter().cloned());
                Source {
                    facts: g.answering.iter().map(|s| bare_numbers(s)).collect(),
                    ranges: g.answering.iter().map(|s| ranges(s)).collect(),
                    numbers: Vec::new(),
                    terms,
                    title,
                    denies: g.answering.iter().any(|s| denies(s)),
                }
            })
            .collect();
        let mut shared_source = Source::default();
        let mut caller = HashSet::new();
        for t in shared {
            shared_source.numbers.extend(bare_numbers(t));
            caller.extend(fact_terms(&mut analyzer, t));
        }
        let glue: HashSet<String> = fact_terms(&mut analyzer, GLUE).into_iter().collect();
        shared_source.terms.extend(caller.iter().cloned());
        shared_source.terms.extend(glue.iter().cloned());
        Guard {
            forbidden: ForbiddenPhrases::new(forbidden),
            sources,
            shared: shared_source,
            said: HashSet::new(),
            sentence: None,
            stated: None,
            topic: topic.iter().cloned().collect(),
            caller,
            glue,
            analyzer,
        }
    }

    /// Checks one phrase (and remembers it, to catch repetition).
    pub fn check(&mut self, phrase: &str) -> Verdict {
        let w = words(phrase);
        if self.forbidden.matches(phrase) {
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
        let t = fact_terms(&mut self.analyzer, phrase);
        // The caller's numbers may be said back as what they gave ("your
        // card ending 1234"); any other number is a fact, the caller's
        // included: a claim ("the fee is 40, right?") is not a source, nor
        // a number told as a quantity ("a 3-day trial" after "take three"
        // was misheard).
        let quantities = quantities(phrase);
        let given = identifiers(phrase);
        let facts: Vec<String> = numbers(phrase)
            .into_iter()
            .filter(|n| {
                !(self.shared.numbers.iter().any(|k| k == bare(n)) && given.contains(n)) || quantities.contains(n)
            })
            .collect();
        // "You forgot your online banking password.": the question said back.
        let own: Vec<&String> = t.iter().filter(|x| !self.glue.contains(*x)).collect();
        if !self.sources.is_empty() && own.len() >= 2 && own.iter().all(|x| self.caller.contains(*x)) {
            return Verdict::Echo;
        }
        // "3." after "The answer is:": a figure without what it is.
        if !facts.is_empty() && t.iter().all(|x| x.chars().any(|c| c.is_ascii_digit())) {
            return Verdict::Ungrounded(format!("{} without what it is", facts[0]));
        }
        // "Yes, it does.": a yes with nothing of the facts is not an answer.
        if !self.sources.is_empty() && own.is_empty() && affirms(phrase) {
            return Verdict::Echo;
        }
        // "No, you do not save anything": a denial is a claim, grounded only
        // by an answering sentence that denies too, of the phrase's passage.
        let denial = denies(phrase);
        if !self.sources.is_empty() && denial && !self.sources.iter().any(|s| s.denies) {
            return Verdict::Ungrounded("a denial no answering sentence makes".into());
        }
        let names = self.names(phrase);
        // Figures and names are what a phrase states as fact.
        let states = !facts.is_empty() || !names.is_empty();
        let no_passage = Source::default();
        let sources: Vec<(usize, &Source)> = if self.sources.is_empty() {
            vec![(0, &no_passage)]
        } else {
            self.sources.iter().enumerate().collect()
        };
        let misses: Vec<Miss> = sources
            .into_iter()
            .filter(|(i, _)| self.sentence.as_ref().is_none_or(|held| held.contains(i)))
            .filter(|(i, src)| !states || self.may_state_from(*i, src, &t))
            .filter(|(_, src)| !denial || src.denies || self.sources.is_empty())
            .map(|(i, src)| self.miss(i, src, &t, &facts, &names))
            .collect();
        // One stray word is wording; more than a third is not from the facts.
        let too_many = |unknown: &[String]| unknown.len() > 1 && unknown.len() * 3 > t.len();
        let holding: Vec<usize> = misses
            .iter()
            .filter(|m| m.numbers.is_empty() && m.mistied.is_empty() && !too_many(&m.words))
            .map(|m| m.passage)
            .collect();
        if holding.is_empty() {
            if denial && misses.is_empty() {
                return Verdict::Ungrounded("a denial no answering sentence of its passage makes".into());
            }
            // Why, from the passage that came closest.
            let restricted = misses.len() < self.sources.len();
            let closest = misses
                .into_iter()
                .min_by_key(|m| (m.numbers.len(), m.mistied.len(), m.words.len()))
                .unwrap_or_default();
            let mixed = if restricted && (self.sentence.is_some() || self.stated.is_some()) {
                " (with the answer's passage)"
            } else {
                ""
            };
            return Verdict::Ungrounded(match (closest.numbers.first(), closest.mistied.is_empty()) {
                (Some(n), _) => format!("{n}{mixed}"),
                (None, false) => format!("a fact told of {}{mixed}", closest.mistied.join(", ")),
                (None, true) if closest.words.is_empty() => "a fact of another passage than the answer's".into(),
                (None, true) => format!("{} not in the facts{mixed}", closest.words.join(", ")),
            });
        }
        // A sentence going on after this phrase stays with its passages;
        // the answer's later facts come from the passages of its first.
        let ends_sentence = phrase.trim_end().ends_with(['.', '!', '?']);
        if states {
            self.stated = Some(holding.clone());
        }
        self.sentence = (!ends_sentence).then_some(holding);
        Verdict::Speak
    }

    /// Whether a phrase with terms `t` may state facts of passage `i`: the
    /// answer's earlier facts came from it (or none was stated yet), or the
    /// phrase names what it is about, a word of its heading the earlier
    /// facts' passages' headings lack ("the airport branch opens at 6"
    /// after the branches' hours; not "the rate is 15 percent" after the
    /// savings account's rate).
    fn may_state_from(&self, i: usize, src: &Source, t: &[String]) -> bool {
        let Some(held) = &self.stated else { return true };
        held.contains(&i)
            || t.iter().any(|x| {
                src.title.contains(x)
                    && held
                        .iter()
                        .all(|h| self.sources.get(*h).is_none_or(|o| !o.title.contains(x)))
            })
    }

    /// The names a phrase says (its capitalised words inside a sentence,
    /// analysed), but for the caller's words and the words any reply may use:
    /// facts like its figures ("the Riverside branch" has the coin machine).
    fn names(&mut self, phrase: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut starts = true;
        for w in phrase.split_whitespace() {
            let capital = w.chars().next().is_some_and(char::is_uppercase);
            if capital && !starts && w != "I" && !w.starts_with("I'") {
                for t in fact_terms(&mut self.analyzer, w) {
                    if !self.shared.terms.contains(&t) && !t.chars().any(|c| c.is_ascii_digit()) {
                        out.push(t);
                    }
                }
            }
            starts = w.ends_with(['.', '!', '?', ':']);
        }
        out
    }

    /// What passage `i` (`src`) lacks of a phrase with terms `t` stating
    /// `facts` and naming `names`.
    fn miss(&self, i: usize, src: &Source, t: &[String], facts: &[String], names: &[String]) -> Miss {
        let holds = |f: &Vec<String>, n: &String| f.iter().any(|k| k == bare(n));
        // One end of a range of sentence `k` the phrase states without the other.
        let half = |k: usize| -> Option<String> {
            let stated = |x: &String| facts.iter().any(|n| bare(n) == x);
            src.ranges
                .get(k)?
                .iter()
                .find_map(|(a, b)| match (stated(a), stated(b)) {
                    (true, false) => Some(format!("{a} (of {a} to {b})")),
                    (false, true) => Some(format!("{b} (of {a} to {b})")),
                    _ => None,
                })
        };
        // The facts must all be in one answering sentence, and a range's
        // ends together: name what the closest one lacks.
        let closest = (0..src.facts.len()).max_by_key(|&k| {
            (
                facts.iter().filter(|n| holds(&src.facts[k], n)).count(),
                half(k).is_none(),
            )
        });
        let mut numbers: Vec<String> = facts
            .iter()
            .filter(|n| closest.is_none_or(|k| !holds(&src.facts[k], n)))
            .cloned()
            .collect();
        numbers.extend(closest.and_then(half));
        let unknown = |x: &&String| !src.terms.contains(*x) && !self.shared.terms.contains(*x);
        let words = t
            .iter()
            .filter(|x| !x.chars().any(|c| c.is_ascii_digit()))
            .filter(unknown)
            .cloned()
            .collect();
        // A fact told of something the caller named that its passage does
        // not hold, or a name the passage does not hold.
        let mut mistied: Vec<String> = if facts.is_empty() && names.is_empty() {
            Vec::new()
        } else {
            t.iter()
                .filter(|x| self.topic.contains(*x) && !src.terms.contains(*x))
                .cloned()
                .collect()
        };
        mistied.extend(names.iter().filter(|x| !src.terms.contains(*x)).cloned());
        Miss {
            passage: i,
            numbers,
            words,
            mistied,
        }
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
    fn a_callers_number_told_as_a_quantity_is_a_fact_to_ground() {
        assert_eq!(quantities("The ETT3 is a 3-day trial, card ending 1234."), ["3"]);
        assert_eq!(quantities("It costs 15 dollars and 2 percent."), ["15", "2"]);
        let mut g = Guard::new(
            &[],
            &["A new PIN arrives in 3 to 5 working days."],
            &["how long will the eye and take three"],
        );
        assert!(matches!(
            g.check("The Eye and Take Three is a 3-day trial of the Harbor Bank card."),
            Verdict::Ungrounded(_)
        ));
        let mut g = Guard::new(
            &[],
            &["Blocking a card is free."],
            &["please block my card ending 1234"],
        );
        assert_eq!(g.check("Blocking the card ending 1234 is free."), Verdict::Speak);
    }

    #[test]
    fn a_callers_claimed_figure_is_not_a_source() {
        assert_eq!(
            identifiers("Your card ending 1234 and account number 77 cost 40."),
            ["1234", "77"]
        );
        assert_eq!(
            identifiers("Meter 5521 was read on order 88 for 12 dollars."),
            ["5521", "88"]
        );
        let mut g = Guard::new(
            &[],
            &["An international transfer costs 15 dollars."],
            &["is the international transfer fee 40"],
        );
        // Said back in the caller's words: not an answer; in others: a figure no fact holds.
        assert_eq!(g.check("Yes, the international transfer fee is 40."), Verdict::Echo);
        assert_eq!(
            g.check("Yes, an international transfer costs 40."),
            Verdict::Ungrounded("40".into())
        );
        let mut g = Guard::new(
            &[],
            &["An international transfer costs 15 dollars."],
            &["send 40 dollars abroad from account number 5521"],
        );
        assert_eq!(
            g.check("An international transfer from account number 5521 costs 15 dollars."),
            Verdict::Speak
        );
    }

    #[test]
    fn ranges_of_one_quantity_are_found_but_not_hours_of_the_day() {
        assert_eq!(
            ranges("The credit limit is from 500 to 10,000 dollars and the rate 19.9 percent."),
            [("500".to_string(), "10000".to_string())]
        );
        assert_eq!(
            ranges("It arrives in 3 to 5 working days."),
            [("3".to_string(), "5".to_string())]
        );
        assert_eq!(
            ranges("Fixed within between 2 and 4 hours."),
            [("2".to_string(), "4".to_string())]
        );
        assert!(ranges("Open Monday to Friday from 9 a.m. to 5 p.m.").is_empty());
        assert!(ranges("It costs 3 dollars and 5 percent more.").is_empty());
    }

    #[test]
    fn one_end_of_a_range_is_not_said_without_the_other() {
        let mut g = Guard::new(
            &[],
            &["The credit card has a credit limit from 500 to 10,000 dollars. There is no annual fee."],
            &["what is the highest credit limit"],
        );
        assert!(
            matches!(g.check("The maximum credit limit is 500 dollars."), Verdict::Ungrounded(w) if w.contains("of 500 to 10000")),
        );
        assert_eq!(
            g.check("The credit limit is from 500 to 10,000 dollars."),
            Verdict::Speak
        );
        // A lone figure another answering sentence states is grounded there.
        let mut g = Guard::new(
            &[],
            &["A new PIN arrives in 3 to 5 working days. A replacement card arrives in 5 working days."],
            &["how long does a new card take"],
        );
        assert_eq!(g.check("A replacement card arrives in 5 working days."), Verdict::Speak);
    }

    #[test]
    fn a_denial_is_a_claim_the_answering_sentences_must_make() {
        let mut g = Guard::new(
            &[],
            &["Direct debit customers get a 5 percent discount."],
            &["do I save anything"],
        );
        assert!(matches!(g.check("no,"), Verdict::Ungrounded(w) if w.contains("denial")));
        assert!(matches!(
            g.check("you don't save anything by paying with direct debit."),
            Verdict::Ungrounded(_)
        ));
        assert_eq!(g.check("You get a 5 percent discount."), Verdict::Speak);
        let mut g = Guard::new(&[], &["There is no annual fee."], &["is there a yearly fee"]);
        assert_eq!(g.check("No, there is no annual fee."), Verdict::Speak);
        assert!(denies("It isn't free") && denies("never") && !denies("Note the notice, it is free."));
        // The denial of one passage does not ground one about another's subject.
        let passages = [
            ("Account fees", "The Student account has no monthly fee."),
            (
                "Savings account",
                "The Harbor Saver account pays 3.5 percent interest a year.",
            ),
        ];
        let sentences = [
            vec!["The Student account has no monthly fee."],
            vec!["The Harbor Saver account pays 3.5 percent interest a year."],
        ];
        let mut g = Guard::grounded(
            &[],
            &titled(&passages, &sentences),
            &["does the student account have a monthly charge"],
            &[],
        );
        assert_eq!(g.check("The Student account has no monthly fee."), Verdict::Speak);
        assert!(matches!(
            g.check("The Harbor Saver account does not have a monthly charge."),
            Verdict::Ungrounded(_)
        ));
    }

    #[test]
    fn a_bare_yes_is_dropped_and_the_answer_goes_on() {
        let mut g = Guard::new(
            &[],
            &["Transfers within the country are free."],
            &["does it cost anything"],
        );
        assert_eq!(g.check("yes, it does."), Verdict::Echo);
        assert_eq!(g.check("Yes, transfers within the country are free."), Verdict::Speak);
        assert!(affirms("Yes.") && !affirms("Yesterday it was free.") && !affirms("The fee is yes"));
    }

    /// Grounds with headings, every sentence answering.
    fn titled<'a>(passages: &'a [(&'a str, &'a str)], sentences: &'a [Vec<&'a str>]) -> Vec<Ground<'a>> {
        passages
            .iter()
            .zip(sentences)
            .map(|((title, text), answering)| Ground { title, text, answering })
            .collect()
    }

    fn as_strs(sentences: &[Vec<String>]) -> Vec<Vec<&str>> {
        sentences
            .iter()
            .map(|s| s.iter().map(String::as_str).collect())
            .collect()
    }

    fn sentences_of(passages: &[(&str, &str)]) -> Vec<Vec<String>> {
        passages.iter().map(|(_, text)| split_sentences(text)).collect()
    }

    #[test]
    fn a_phrase_mixing_two_passages_is_caught() {
        let passages = [
            (
                "Opening hours",
                "Harbor Bank branches are open Monday to Friday from 9 a.m. to 5 p.m.",
            ),
            (
                "Airport branch",
                "The Airport branch is in Terminal 2. It is open every day from 6 a.m. to 10 p.m.",
            ),
            (
                "Downtown branch",
                "The Downtown branch is at 12 Harbor Street, next to the central station.",
            ),
            (
                "Riverside branch",
                "The Riverside branch is at 48 Mill Road, opposite the Riverside library.",
            ),
        ];
        let sentences = sentences_of(&passages);
        let sentences = as_strs(&sentences);
        let grounds = titled(&passages, &sentences);
        let mut g = Guard::grounded(&[], &grounds, &["When is the branch open? My card ends 4321."], &[]);
        assert_eq!(g.check("Branches are open from 9 a.m. to 5 p.m."), Verdict::Speak);
        assert_eq!(
            g.check("The airport branch is open from 6 a.m. to 10 p.m."),
            Verdict::Speak
        );
        assert!(
            matches!(
                g.check("Branches are open Monday to Friday from 9 a.m. to 10 p.m."),
                Verdict::Ungrounded(n) if n.starts_with("10")
            ),
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
        // A new answer: its facts stay with the passage of its first.
        let mut g = Guard::grounded(&[], &grounds, &[], &[]);
        assert_eq!(g.check("Branches are open from 9 a.m. to 5 p.m."), Verdict::Speak);
        assert!(
            matches!(
                g.check("It is open every day from 6 a.m. to 10 p.m."),
                Verdict::Ungrounded(_)
            ),
            "another passage's hours, not named"
        );
        assert_eq!(
            g.check("The airport branch is open from 6 a.m. to 10 p.m."),
            Verdict::Speak,
            "another passage's facts, named by its heading"
        );
        // A sentence cut into phrases at its commas stays with one passage.
        assert_eq!(g.check("The Downtown branch is at 12 Harbor Street,"), Verdict::Speak);
        assert!(
            matches!(g.check("opposite the Riverside library."), Verdict::Ungrounded(_)),
            "the sentence's second half from another passage"
        );
        let mut g2 = Guard::grounded(&[], &grounds[2..], &[], &[]);
        assert_eq!(g2.check("The Downtown branch is at 12 Harbor Street,"), Verdict::Speak);
        assert_eq!(g2.check("next to the central station."), Verdict::Speak);
        assert_eq!(
            g2.check("The Riverside branch is at 48 Mill Road."),
            Verdict::Speak,
            "a new sentence may use another passage, named"
        );
        let mut g3 = Guard::new(
            &[],
            &[
                "The Downtown branch is at 12 Harbor Street, next to the central station.",
                "The Riverside branch is at 48 Mill Road, opposite the Riverside library.",
            ],
            &[],
        );
        assert_eq!(g3.check("The Downtown branch is at 12 Harbor Street."), Verdict::Speak);
        assert!(
            matches!(g3.check("The other one is at 48 Mill Road."), Verdict::Ungrounded(_)),
            "another passage's facts, not named by its heading"
        );
    }

    #[test]
    fn a_name_the_passage_does_not_hold_is_a_wrong_fact() {
        let passages = [
            (
                "Downtown branch",
                "The Downtown branch is at 12 Harbor Street. It has a coin deposit machine.",
            ),
            ("Riverside branch", "The Riverside branch is at 48 Mill Road."),
        ];
        let sentences = sentences_of(&passages);
        let sentences = as_strs(&sentences);
        let grounds = titled(&passages, &sentences);
        let topic: Vec<String> = ["branch", "coin", "deposit", "machin"].map(String::from).to_vec();
        let mut g = Guard::grounded(&[], &grounds, &["Which branch has a coin deposit machine?"], &topic);
        assert!(matches!(
            g.check("The branch with the coin deposit machine is the Riverside branch."),
            Verdict::Ungrounded(_)
        ));
        assert_eq!(
            g.check("The Downtown branch has a coin deposit machine."),
            Verdict::Speak
        );
        assert!(matches!(g.check("3."), Verdict::Ungrounded(why) if why.contains("without")));
        // Words any reply may use still say what a figure is.
        let mut g = Guard::new(&[], &["The PIN arrives in 3 to 5 working days."], &[]);
        assert_eq!(g.check("3 to 5 working days."), Verdict::Speak);
    }

    #[test]
    fn the_question_said_back_is_not_an_answer() {
        let mut g = Guard::new(
            &[],
            &["You can reset your online banking password in the app under Settings."],
            &["I forgot my online banking password."],
        );
        assert_eq!(g.check("You forgot your online banking password."), Verdict::Echo);
        assert_eq!(g.check("You can reset your password in the app."), Verdict::Speak);
    }

    #[test]
    fn a_figure_must_come_from_a_sentence_that_answers_and_of_what_was_asked() {
        let passages = [
            (
                "Card declined",
                "A card can be declined when the daily limit is reached. The daily card spending limit is 3,000 dollars.",
            ),
            (
                "ATMs",
                "Harbor Bank ATMs are free to use. You can withdraw up to 1,000 dollars a day.",
            ),
        ];
        let sentences = sentences_of(&passages);
        let sentences = as_strs(&sentences);
        let grounds = titled(&passages, &sentences);
        let topic = ["daili".to_string(), "atm".to_string(), "limit".to_string()];
        let mut g = Guard::grounded(&[], &grounds, &["What is the daily ATM limit?"], &topic);
        assert_eq!(
            g.check("The daily ATM limit is 3,000 dollars."),
            Verdict::Ungrounded("a fact told of atm".into()),
            "the spending limit told of ATMs"
        );
        assert_eq!(
            g.check("You can withdraw up to 1,000 dollars a day at ATMs."),
            Verdict::Speak
        );
        // Only the answering sentences' figures may be stated.
        let only_first = [vec![sentences[0][0]], vec![sentences[1][1]]];
        let mut g = Guard::grounded(&[], &titled(&passages, &only_first), &[], &[]);
        assert!(matches!(
            g.check("The daily card spending limit is 3,000 dollars."),
            Verdict::Ungrounded(n) if n == "3000"
        ));
        assert_eq!(g.check("You can withdraw up to 1,000 dollars a day."), Verdict::Speak);
    }
}
