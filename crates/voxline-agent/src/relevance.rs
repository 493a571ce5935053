//! How well one knowledge sentence answers a question: the share of the
//! question's meaning words (weighted by how rare they are in the
//! knowledge) that the sentence holds, with the sentence before it when it
//! starts with "It", "They", "Above that" …; its section's heading counts
//! at half. Used to pick what the agent may state (a fact's sentence must
//! answer the question), what it reads as written, and when it is not sure
//! what was asked.

use std::collections::{HashMap, HashSet};

/// One sentence of the knowledge, analysed.
#[derive(Debug, Clone)]
pub struct Sentence {
    /// Index of its passage.
    pub passage: usize,
    /// The sentence as written.
    pub text: String,
    /// Its analysed terms (stemmed, stop words out; numbers as digits),
    /// with the sentence before's when it goes on about that one.
    pub terms: HashSet<String>,
    /// Its section heading's terms.
    pub title_terms: HashSet<String>,
    /// Whether it goes on about the sentence before ("It is open …").
    pub continues: bool,
}

/// First words of a sentence that goes on about the one before.
const ANAPHORA: &[&str] = &[
    "it", "its", "they", "their", "this", "these", "those", "that", "there", "above", "below",
];

/// The sentences of the knowledge and how rare each term is among them.
#[derive(Debug, Clone, Default)]
pub struct Sentences {
    /// Every sentence, passage by passage.
    pub all: Vec<Sentence>,
    idf: HashMap<String, f32>,
    /// The terms that name one section's subject: in exactly one heading
    /// ("airport", "riverside", "green"; not "branch" or "open", which
    /// several headings hold).
    headings: HashSet<String>,
}

/// Cosine similarities at or below this say nothing of meaning (unrelated
/// sentences of one domain score up to about 0.4 with all-MiniLM-L6-v2).
const SIMILARITY_FLOOR: f32 = 0.4;
/// Similarities at or above this count as the same meaning.
const SIMILARITY_FULL: f32 = 0.8;

/// The meaning side of a question's relevance: each sentence's cosine
/// similarity to the question and the weight it gets against the words'
/// coverage (decision 0041).
#[derive(Debug, Clone, Copy)]
pub struct ByMeaning<'a> {
    /// Per knowledge sentence, in order.
    pub similarities: &'a [f32],
    /// 0–1: the share of a sentence's relevance that comes from meaning.
    pub weight: f32,
}

impl ByMeaning<'_> {
    /// Sentence `i`'s similarity mapped onto 0–1 (floor → 0, full → 1).
    pub fn closeness(&self, i: usize) -> f32 {
        let s = self.similarities.get(i).copied().unwrap_or(0.0);
        ((s - SIMILARITY_FLOOR) / (SIMILARITY_FULL - SIMILARITY_FLOOR)).clamp(0.0, 1.0)
    }

    /// The relevance of sentence `i` whose word coverage is `coverage`.
    pub fn relevance(&self, coverage: f32, i: usize) -> f32 {
        self.weight * self.closeness(i) + (1.0 - self.weight) * coverage
    }
}

/// One sentence of the found passages, ranked for a question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    /// Its index into [`Sentences::all`].
    pub index: usize,
    /// How well it answers: [`ByMeaning::relevance`], or the coverage alone.
    pub relevance: f32,
    /// The share of the question's words it holds ([`Sentences::coverage`]).
    pub coverage: f32,
    /// How close its meaning is (0–1, [`ByMeaning::closeness`]), when known.
    pub closeness: Option<f32>,
}

/// Splits a passage's text into sentences ("9 a.m." does not end one).
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        // A stop ends a sentence when the next word starts one ("9 a.m. to
        // 5 p.m." goes on).
        let next_starts = words
            .get(i + 1)
            .is_none_or(|n| n.chars().next().is_some_and(|c| c.is_uppercase() || c == '"'));
        if w.ends_with(['.', '!', '?']) && next_starts {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

impl Sentences {
    /// Analyses `passages` (title, text) with `terms`. A sentence that
    /// goes on about the one before ("It is open every day …", "Above that,
    /// …") also holds that one's terms: they name what "it" is.
    pub fn new<'a>(
        passages: impl Iterator<Item = (&'a str, &'a str)>,
        terms: impl Fn(&str) -> Vec<String>,
    ) -> Sentences {
        let mut all: Vec<Sentence> = Vec::new();
        for (i, (title, text)) in passages.enumerate() {
            // The section's own heading ("Cards › Lost card" → "Lost card").
            let heading = title.rsplit(" › ").next().unwrap_or(title);
            let title_terms: HashSet<String> = terms(heading).into_iter().collect();
            let mut before: Option<HashSet<String>> = None;
            for s in split_sentences(text) {
                let mut own: HashSet<String> = terms(&s).into_iter().collect();
                let mut opening = s.split_whitespace();
                let first = opening.next().unwrap_or("").to_lowercase();
                let first = first.trim_matches(|c: char| !c.is_alphabetic());
                // "The fee is waived …" after "The Everyday account costs 4
                // dollars a month." in "Account fees": a definite thing the
                // heading or the sentence before named.
                let named_before = |word: &str| {
                    let t = terms(word);
                    !t.is_empty()
                        && t.iter()
                            .all(|x| title_terms.contains(x) || before.as_ref().is_some_and(|b| b.contains(x)))
                };
                let definite = first == "the"
                    && opening
                        .next()
                        .is_some_and(|w| w.chars().next().is_some_and(char::is_lowercase) && named_before(w));
                let continues = (ANAPHORA.contains(&first) || definite) && before.is_some();
                if continues {
                    if let Some(b) = &before {
                        own.extend(b.iter().cloned());
                    }
                }
                before = Some(own.clone());
                all.push(Sentence {
                    passage: i,
                    terms: own,
                    title_terms: title_terms.clone(),
                    continues,
                    text: s,
                });
            }
        }
        let mut df: HashMap<String, usize> = HashMap::new();
        for s in &all {
            for t in s.terms.union(&s.title_terms) {
                *df.entry(t.clone()).or_default() += 1;
            }
        }
        let n = all.len().max(1) as f32;
        let idf = df.into_iter().map(|(t, d)| (t, (1.0 + n / d as f32).ln())).collect();
        let mut in_headings: HashMap<String, HashSet<usize>> = HashMap::new();
        for s in &all {
            for t in &s.title_terms {
                in_headings.entry(t.clone()).or_default().insert(s.passage);
            }
        }
        let headings = in_headings
            .into_iter()
            .filter(|(_, passages)| passages.len() == 1)
            .map(|(t, _)| t)
            .collect();
        Sentences { all, idf, headings }
    }

    /// Sentence `i` as a caller must hear it read: with the sentences before
    /// it that it goes on about ("The Riverside branch is at 48 Mill Road.
    /// It has free parking."), else "it" would name nothing.
    pub fn as_read(&self, i: usize) -> String {
        let Some(s) = self.all.get(i) else { return String::new() };
        let mut first = i;
        while first > 0 && self.all[first].continues && self.all[first - 1].passage == s.passage {
            first -= 1;
        }
        self.all[first..=i]
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The terms of `question` that name what one passage is about (a word
    /// of one section heading only): "airport" in "Is the airport branch
    /// open on Sunday?".
    pub fn subjects(&self, question: &[String]) -> HashSet<String> {
        question
            .iter()
            .filter(|t| self.headings.contains(*t))
            .cloned()
            .collect()
    }

    /// Whether passage `p` (its heading or any of its sentences) holds every
    /// one of `subjects`.
    pub fn passage_holds(&self, p: usize, subjects: &HashSet<String>) -> bool {
        subjects.iter().all(|t| {
            self.all
                .iter()
                .filter(|s| s.passage == p)
                .any(|s| s.terms.contains(t) || s.title_terms.contains(t))
        })
    }

    /// How rare `term` is; a term the knowledge never holds weighs as one
    /// found in two sentences (a question of such words covers little).
    fn weight(&self, term: &str) -> f32 {
        self.idf
            .get(term)
            .copied()
            .unwrap_or_else(|| (1.0 + self.all.len().max(1) as f32 / 2.0).ln())
    }

    /// The share (0–1) of the question's weighted terms sentence `i` holds
    /// (its section heading's at half weight). 0 when the question has no terms.
    pub fn coverage(&self, question: &[String], i: usize) -> f32 {
        let Some(s) = self.all.get(i) else { return 0.0 };
        let mut seen = HashSet::new();
        let (mut got, mut all) = (0.0, 0.0);
        for t in question.iter().filter(|t| seen.insert(t.as_str())) {
            let w = self.weight(t);
            all += w;
            if s.terms.contains(t) {
                got += w;
            } else if s.title_terms.contains(t) {
                got += w / 2.0;
            }
        }
        if all > 0.0 {
            got / all
        } else {
            0.0
        }
    }

    /// The sentences of `passages`, best answer to `question` first, with
    /// their relevance: the coverage, blended with how close each sentence's
    /// meaning is when `by_meaning` is given ([`ByMeaning::relevance`]).
    pub fn ranked(&self, question: &[String], passages: &[usize], by_meaning: Option<ByMeaning>) -> Vec<Ranked> {
        let mut out: Vec<Ranked> = self
            .all
            .iter()
            .enumerate()
            .filter(|(_, s)| passages.contains(&s.passage))
            .map(|(i, _)| {
                let coverage = self.coverage(question, i);
                Ranked {
                    index: i,
                    relevance: by_meaning.map_or(coverage, |m| m.relevance(coverage, i)),
                    coverage,
                    closeness: by_meaning.map(|m| m.closeness(i)),
                }
            })
            .collect();
        // Ties go to the shorter sentence (it says less else), then keep the
        // knowledge's order.
        out.sort_by(|a, b| {
            b.relevance
                .total_cmp(&a.relevance)
                .then_with(|| self.all[a.index].terms.len().cmp(&self.all[b.index].terms.len()))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lower-case words without the few function words the tests use (the
    /// agent's own analyser also stems).
    fn words(t: &str) -> Vec<String> {
        const STOP: &[&str] = &[
            "how", "much", "can", "from", "the", "over", "then", "whom", "you", "are", "and", "when", "where",
        ];
        t.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && (w.len() > 2 || w.chars().all(|c| c.is_ascii_digit())))
            .filter(|w| !STOP.contains(w))
            .map(String::from)
            .collect()
    }

    #[test]
    fn sentences_end_at_stops_but_not_inside_times() {
        assert_eq!(
            split_sentences("Open from 9 a.m. to 5 p.m. on weekdays. Closed on Sundays. Call 24 hours a day."),
            [
                "Open from 9 a.m. to 5 p.m. on weekdays.",
                "Closed on Sundays.",
                "Call 24 hours a day."
            ]
        );
        assert_eq!(split_sentences("It costs 3.5 percent."), ["It costs 3.5 percent."]);
    }

    #[test]
    fn a_sentence_about_the_one_before_holds_its_subject() {
        let s = Sentences::new(
            [(
                "Branches › Airport branch",
                "The Airport branch is in Terminal 2. It is open every day from 6 a.m. to 10 p.m.",
            )]
            .into_iter(),
            words,
        );
        let open = s.ranked(&words("when is the airport branch open"), &[0], None);
        assert!(s.all[open[0].index].text.starts_with("It is open"), "{open:?}");
        assert!((open[0].relevance - 1.0).abs() < 1e-6, "{open:?}");
        // Asked where, both hold the words; the shorter one answers.
        let where_ = s.ranked(&words("where is the airport branch"), &[0], None);
        assert!(s.all[where_[0].index].text.contains("Terminal 2"), "{where_:?}");
    }

    #[test]
    fn a_sentence_is_read_with_the_one_it_goes_on_about_and_subjects_name_passages() {
        let s = Sentences::new(
            [
                ("Branches › Opening hours", "Branches are closed on Sundays."),
                (
                    "Branches › Airport branch",
                    "The Airport branch is in Terminal 2. It is open every day. It has a cash machine.",
                ),
                ("Branches › Riverside branch", "The Riverside branch has parking."),
            ]
            .into_iter(),
            words,
        );
        assert_eq!(s.as_read(0), "Branches are closed on Sundays.");
        let fees = Sentences::new(
            [(
                "Fees › Monthly fee",
                "The Everyday account costs 4 dollars a month. The fee is waived when you deposit 1,000 dollars. The Student account is free.",
            )]
            .into_iter(),
            words,
        );
        assert_eq!(
            fees.as_read(1),
            "The Everyday account costs 4 dollars a month. The fee is waived when you deposit 1,000 dollars."
        );
        assert_eq!(fees.as_read(2), "The Student account is free.");
        assert_eq!(
            s.as_read(3),
            "The Airport branch is in Terminal 2. It is open every day. It has a cash machine."
        );
        let subjects = s.subjects(&words("is the airport branch open on sundays"));
        assert!(
            subjects.contains("airport") && !subjects.contains("sundays"),
            "{subjects:?}"
        );
        // "branch" heads both sections: it names neither.
        assert!(
            !subjects.contains("branches") && !subjects.contains("branch"),
            "{subjects:?}"
        );
        assert!(!s.passage_holds(0, &subjects) && s.passage_holds(1, &subjects));
    }

    #[test]
    fn the_sentence_holding_the_rare_words_of_the_question_ranks_first() {
        let s = Sentences::new(
            [
                (
                    "cards declined",
                    "The daily card spending limit is 3,000 dollars. Cards can be blocked.",
                ),
                (
                    "atm",
                    "ATM withdrawals are free. You can withdraw up to 1,000 dollars a day at an ATM.",
                ),
            ]
            .into_iter(),
            words,
        );
        let q = words("how much can I withdraw from an atm");
        let ranked = s.ranked(&q, &[0, 1], None);
        assert!(s.all[ranked[0].index].text.contains("1,000"), "{ranked:?}");
        assert!(
            ranked[0].relevance > 0.5 && ranked.last().unwrap().relevance < 0.2,
            "{ranked:?}"
        );
        // Words the knowledge never holds weigh most: a misheard question covers little.
        let garbled = words("whom wrenching over the next weekend then atm");
        assert!(s.ranked(&garbled, &[0, 1], None)[0].relevance < 0.4);
    }
}
