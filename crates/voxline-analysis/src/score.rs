//! Scoring a call against a scorecard: each item's verdict with its
//! evidence (the line, its time, a quote found word for word in the
//! transcript), the weighted score and the call's verdict.

use crate::meaning::{says, CallSentences, Found, Match, Targets};
use crate::mood::{overall, Mood, MoodReader};
use crate::person_request::{asks_for_person, offers_person};
use crate::scorecard::{Check, Item, Scorecard, Speaker};
use crate::timing;
use crate::transcript::CallTranscript;
use serde::Serialize;
use std::sync::Arc;
use voxline_llm::{EmbedError, Embedder};

/// An item's verdict on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Met.
    Pass,
    /// Not met.
    Fail,
    /// Does not apply to this call (no balance read, nobody asked for a person).
    NotApplicable,
    /// Could not be judged with evidence: left to a person, never passed.
    Unsure,
}

impl Verdict {
    /// As written in reports and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotApplicable => "na",
            Verdict::Unsure => "unsure",
        }
    }
}

/// Where in the call a verdict comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The line's index in the transcript.
    pub line: usize,
    /// Who said it.
    pub speaker: Speaker,
    /// When, ms from the call's start.
    pub at_ms: u64,
    /// The words, exactly as the transcript has them.
    pub quote: String,
}

/// One item's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemScore {
    /// The item's id.
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// Its weight.
    pub weight: u32,
    /// Whether its failure fails the call.
    pub critical: bool,
    /// Why, in words.
    pub why: String,
    /// The lines it rests on.
    pub evidence: Vec<Evidence>,
    /// The measured figure, for items measured on the clock (seconds of
    /// silence, overlaps, share, words per minute).
    pub value: Option<f64>,
}

/// A call's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallScore {
    /// Each item, in the scorecard's order.
    pub items: Vec<ItemScore>,
    /// The weighted share of the judged items that passed, 0–100
    /// (`None`: nothing could be judged).
    pub score: Option<f64>,
    /// The call passes: score at or above the scorecard's `pass_score` and
    /// no critical item failed.
    pub passed: bool,
}

impl CallScore {
    /// The items that failed.
    pub fn failed(&self) -> impl Iterator<Item = &ItemScore> {
        self.items.iter().filter(|i| i.verdict == Verdict::Fail)
    }

    /// The item with id `id`.
    pub fn item(&self, id: &str) -> Option<&ItemScore> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Sets the score and the verdict from the items' verdicts (again,
    /// after an item was judged later): the weighted share of the judged
    /// items that passed; a pass needs `pass_score` and no critical failure.
    pub fn tally(&mut self, pass_score: f64) {
        let (mut passed_w, mut judged_w) = (0u64, 0u64);
        for i in &self.items {
            match i.verdict {
                Verdict::Pass => {
                    passed_w += u64::from(i.weight);
                    judged_w += u64::from(i.weight);
                }
                Verdict::Fail => judged_w += u64::from(i.weight),
                Verdict::NotApplicable | Verdict::Unsure => {}
            }
        }
        self.score = (judged_w > 0).then(|| 100.0 * passed_w as f64 / judged_w as f64);
        let critical_failed = self.items.iter().any(|i| i.critical && i.verdict == Verdict::Fail);
        self.passed = !critical_failed && self.score.is_some_and(|s| s >= pass_score);
    }
}

/// A scorecard ready to score calls: its lines embedded once.
#[derive(Debug)]
pub struct Inspector {
    card: Scorecard,
    embedder: Arc<Embedder>,
    moods: MoodReader,
    /// Per item, its lines embedded (by the order of the lists in the check).
    targets: Vec<Vec<Targets>>,
}

impl Inspector {
    /// Embeds `card`'s lines.
    pub fn new(card: Scorecard, embedder: Arc<Embedder>) -> Result<Inspector, EmbedError> {
        let mut targets = Vec::with_capacity(card.items.len());
        for item in &card.items {
            let lists = item.check.line_lists();
            let mut embedded = Vec::with_capacity(lists.len());
            for l in lists {
                embedded.push(Targets::new(l, &embedder)?);
            }
            targets.push(embedded);
        }
        let moods = MoodReader::new(&embedder)?;
        Ok(Inspector {
            card,
            embedder,
            moods,
            targets,
        })
    }

    /// The scorecard.
    pub fn scorecard(&self) -> &Scorecard {
        &self.card
    }

    /// Scores `call`.
    pub fn score(&self, call: &CallTranscript) -> Result<CallScore, EmbedError> {
        let sentences = CallSentences::new(call, &self.embedder)?;
        let judge = Judge {
            call,
            sentences: &sentences,
            moods: &self.moods,
        };
        let items: Vec<ItemScore> = self
            .card
            .items
            .iter()
            .zip(&self.targets)
            .map(|(item, targets)| judge.item(item, targets))
            .collect();
        let mut scored = CallScore {
            items,
            score: None,
            passed: false,
        };
        scored.tally(self.card.pass_score);
        Ok(scored)
    }
}

/// A stretch's mood and the sentence that set it.
type MoodAt = (Mood, Option<Evidence>);

/// One call's material while its items are judged.
struct Judge<'a> {
    call: &'a CallTranscript,
    sentences: &'a CallSentences,
    moods: &'a MoodReader,
}

fn result(item: &Item, verdict: Verdict, why: String, evidence: Vec<Evidence>, value: Option<f64>) -> ItemScore {
    ItemScore {
        id: item.id.clone(),
        kind: item.check.kind(),
        verdict,
        weight: item.weight,
        critical: item.critical,
        why,
        evidence,
        value,
    }
}

fn pass_if(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

impl Judge<'_> {
    /// "; closest: 0.64 "…"" — the sentence nearest to `targets`, for a
    /// report that explains a miss.
    fn near_miss(&self, who: Speaker, targets: &Targets) -> String {
        self.sentences
            .closest(who, targets)
            .map(|f| format!("; closest ({}): {:?}", f.closeness(), self.sentences.sentence(&f).text))
            .unwrap_or_default()
    }

    fn evidence(&self, found: &Found) -> Evidence {
        self.sentence_evidence(found.sentence)
    }

    /// The sentence with index `i` among the call's sentences, as evidence.
    fn sentence_evidence(&self, i: usize) -> Evidence {
        let s = &self.sentences.sentences[i];
        Evidence {
            line: s.line,
            speaker: s.speaker,
            at_ms: s.at_ms,
            quote: s.text.clone(),
        }
    }

    fn line_evidence(&self, line: usize) -> Evidence {
        let l = &self.call.lines[line];
        Evidence {
            line,
            speaker: l.speaker,
            at_ms: l.start_ms,
            quote: l.text.clone(),
        }
    }

    fn item(&self, item: &Item, targets: &[Targets]) -> ItemScore {
        match &item.check {
            Check::Said {
                who, within_s, last_s, ..
            } => {
                let duration = self.call.duration_ms;
                let in_time = |f: &&Found| {
                    let s = self.sentences.sentence(f);
                    let line = &self.call.lines[s.line];
                    within_s.is_none_or(|w| s.at_ms as f64 <= w * 1000.0)
                        && last_s.is_none_or(|l| {
                            // Near the end, and never in the first half (a
                            // short call's greeting is within its last 30 s).
                            line.end_ms as f64 + l * 1000.0 >= duration as f64 && 2 * s.at_ms >= duration
                        })
                };
                let found = self.sentences.find(*who, &targets[0], Match::Lenient);
                match found.iter().find(in_time) {
                    Some(f) => result(
                        item,
                        Verdict::Pass,
                        format!(
                            "{} ({} to {:?})",
                            if says(f.meaning, f.words, Match::Strict) {
                                "said"
                            } else {
                                "promised in other words"
                            },
                            f.closeness(),
                            targets[0].lines[f.target]
                        ),
                        vec![self.evidence(f)],
                        None,
                    ),
                    None => {
                        let when = match (within_s, last_s) {
                            (Some(w), _) => format!(" in the first {w} s"),
                            (None, Some(l)) => format!(" in the last {l} s"),
                            (None, None) => String::new(),
                        };
                        let also = found.first().map(|f| self.evidence(f));
                        let why = match &also {
                            Some(e) => format!("not said{when} (said at {:.1} s)", e.at_ms as f64 / 1000.0),
                            None => format!("not said{when}{}", self.near_miss(*who, &targets[0])),
                        };
                        result(item, Verdict::Fail, why, also.into_iter().collect(), None)
                    }
                }
            }
            Check::NotSaid { who, .. } => {
                // In its words or meaning, or a promise made in other words.
                let mut found = self.sentences.find(*who, &targets[0], Match::Strict);
                for f in self.sentences.find_assured(*who, &targets[0]) {
                    if !found.iter().any(|g| g.sentence == f.sentence) {
                        found.push(f);
                    }
                }
                found.sort_by_key(|f| f.sentence);
                match found.first() {
                    Some(f) => result(
                        item,
                        Verdict::Fail,
                        format!("said ({} to {:?})", f.closeness(), targets[0].lines[f.target]),
                        found.iter().map(|f| self.evidence(f)).collect(),
                        None,
                    ),
                    None => result(
                        item,
                        Verdict::Pass,
                        format!("never said{}", self.near_miss(*who, &targets[0])),
                        vec![],
                        None,
                    ),
                }
            }
            Check::Order { who, .. } => {
                let then = self.sentences.find(*who, &targets[1], Match::LenientWhole);
                let Some(first_then) = then.first() else {
                    return result(
                        item,
                        Verdict::NotApplicable,
                        format!("the second part was never said{}", self.near_miss(*who, &targets[1])),
                        vec![],
                        None,
                    );
                };
                let before = self
                    .sentences
                    .find(*who, &targets[0], Match::Lenient)
                    .into_iter()
                    .find(|f| f.sentence < first_then.sentence);
                match before {
                    Some(f) => result(
                        item,
                        Verdict::Pass,
                        "in order".into(),
                        vec![self.evidence(&f), self.evidence(first_then)],
                        None,
                    ),
                    None => result(
                        item,
                        Verdict::Fail,
                        format!("said before what must come first{}", self.near_miss(*who, &targets[0])),
                        vec![self.evidence(first_then)],
                        None,
                    ),
                }
            }
            Check::Silence {
                max_s,
                hold_max_s,
                hold_lines,
            } => {
                let max_ms = (max_s * 1000.0) as u64;
                let hold_ms = (hold_max_s * 1000.0) as u64;
                let holds: Vec<usize> = if hold_lines.is_empty() {
                    Vec::new()
                } else {
                    self.sentences
                        .find(Speaker::Agent, &targets[0], Match::Lenient)
                        .iter()
                        .map(|f| self.sentences.sentence(f).line)
                        .collect()
                };
                let long: Vec<timing::Gap> = timing::gaps(self.call, max_ms)
                    .into_iter()
                    .filter(|g| !(holds.contains(&g.after) && g.ms <= hold_ms))
                    .collect();
                let longest = long.iter().map(|g| g.ms).max().unwrap_or(0);
                let why = match long.first() {
                    Some(_) => format!(
                        "{} gap(s) over {max_s} s, the longest {:.1} s",
                        long.len(),
                        longest as f64 / 1000.0
                    ),
                    None => format!("no gap over {max_s} s"),
                };
                let evidence = long.iter().map(|g| self.line_evidence(g.after)).collect();
                result(
                    item,
                    pass_if(long.is_empty()),
                    why,
                    evidence,
                    Some(longest as f64 / 1000.0),
                )
            }
            Check::Overlap { who, min_ms, max_count } => {
                let found = timing::overlaps(self.call, *who, *min_ms);
                let why = format!(
                    "the {} started over the other side {} time(s) for more than {min_ms} ms",
                    who.as_str(),
                    found.len()
                );
                let evidence = found.iter().map(|o| self.line_evidence(o.line)).collect();
                result(
                    item,
                    pass_if(found.len() <= *max_count as usize),
                    why,
                    evidence,
                    Some(found.len() as f64),
                )
            }
            Check::TalkRatio { who, min, max } => match timing::talk_ratio(self.call, *who) {
                Some(r) => result(
                    item,
                    pass_if((*min..=*max).contains(&r)),
                    format!(
                        "the {} talked {:.0}% of the time ({min}–{max})",
                        who.as_str(),
                        r * 100.0
                    ),
                    vec![],
                    Some(r),
                ),
                None => result(item, Verdict::NotApplicable, "nobody spoke".into(), vec![], None),
            },
            Check::SpeakingRate { who, min_wpm, max_wpm } => match timing::words_per_minute(self.call, *who) {
                Some(wpm) => result(
                    item,
                    pass_if((*min_wpm..=*max_wpm).contains(&wpm)),
                    format!(
                        "the {} spoke {wpm:.0} words a minute ({min_wpm}–{max_wpm})",
                        who.as_str()
                    ),
                    vec![],
                    Some(wpm),
                ),
                None => result(
                    item,
                    Verdict::NotApplicable,
                    "too little said to tell".into(),
                    vec![],
                    None,
                ),
            },
            Check::Sentiment { who } => {
                let (start, end) = self.start_and_end_mood(*who);
                let Some(((start, start_ev), (end, end_ev))) = start.zip(end) else {
                    return result(
                        item,
                        Verdict::NotApplicable,
                        format!("the {} said nothing", who.as_str()),
                        vec![],
                        None,
                    );
                };
                let ok = end != Mood::Negative;
                let evidence = start_ev.into_iter().chain(end_ev).collect();
                result(
                    item,
                    pass_if(ok),
                    format!("{start:?} at the start, {end:?} at the end"),
                    evidence,
                    None,
                )
            }
            Check::Escalation { .. } => {
                // Asked in the scorecard's words or meaning, or in any words
                // of reaching a person ("put me on to your supervisor").
                let by_meaning = self
                    .sentences
                    .find(Speaker::Customer, &targets[0], Match::Lenient)
                    .first()
                    .map(|f| f.sentence);
                let in_words = self
                    .sentences
                    .sentences
                    .iter()
                    .position(|s| s.speaker == Speaker::Customer && !s.stretch && asks_for_person(&s.text));
                let asked = match (by_meaning, in_words) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let (_, end) = self.start_and_end_mood(Speaker::Customer);
                let unhappy_at_end = end.as_ref().is_some_and(|(m, _)| *m == Mood::Negative);
                // When the customer asked, or (ending unhappy) first sounded unhappy.
                let first_negative = self
                    .moods
                    .read(self.sentences, Speaker::Customer)
                    .into_iter()
                    .find(|m| m.mood == Mood::Negative)
                    .map(|m| m.sentence);
                let trigger = match (asked, unhappy_at_end) {
                    (Some(a), _) => Some((a, "asked for a person")),
                    (None, true) => first_negative.map(|s| (s, "unhappy")),
                    (None, false) => None,
                };
                let Some((from, reason)) = trigger else {
                    return result(
                        item,
                        Verdict::NotApplicable,
                        "nobody asked for a person and the customer did not end unhappy".into(),
                        vec![],
                        None,
                    );
                };
                let trigger_ev = self.sentence_evidence(from);
                // Offered in the scorecard's words or meaning, or in any
                // words of reaching a person ("I'm connecting you to one of
                // my colleagues").
                let by_meaning = self
                    .sentences
                    .find(Speaker::Agent, &targets[1], Match::Lenient)
                    .into_iter()
                    .find(|f| f.sentence > from)
                    .map(|f| f.sentence);
                let in_words = self
                    .sentences
                    .sentences
                    .iter()
                    .enumerate()
                    .find(|(i, s)| *i > from && s.speaker == Speaker::Agent && !s.stretch && offers_person(&s.text))
                    .map(|(i, _)| i);
                let offer = match (by_meaning, in_words) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                match offer {
                    Some(at) => result(
                        item,
                        Verdict::Pass,
                        format!("the customer {reason}; a colleague was offered"),
                        vec![trigger_ev, self.sentence_evidence(at)],
                        None,
                    ),
                    None => result(
                        item,
                        Verdict::Fail,
                        format!("the customer {reason}; no colleague was offered"),
                        vec![trigger_ev],
                        None,
                    ),
                }
            }
            Check::Outcome { question } => result(
                item,
                Verdict::Unsure,
                format!("{question:?} is for the language model to judge with a quote; no model judged it"),
                vec![],
                None,
            ),
        }
    }

    /// `who`'s mood over their first two and their last two lines, each
    /// with the sentence that set it (the first negative or positive one).
    fn start_and_end_mood(&self, who: Speaker) -> (Option<MoodAt>, Option<MoodAt>) {
        let moods = self.moods.read(self.sentences, who);
        let lines: Vec<usize> = {
            let mut l: Vec<usize> = moods
                .iter()
                .map(|m| self.sentences.sentences[m.sentence].line)
                .collect();
            l.dedup();
            l
        };
        if lines.is_empty() {
            return (None, None);
        }
        let first: Vec<usize> = lines.iter().take(2).copied().collect();
        let last: Vec<usize> = lines.iter().rev().take(2).copied().collect();
        let part = |keep: &[usize]| {
            let part: Vec<_> = moods
                .iter()
                .filter(|m| keep.contains(&self.sentences.sentences[m.sentence].line))
                .copied()
                .collect();
            let mood = overall(&part);
            let ev = part
                .iter()
                .find(|m| m.mood == mood && mood != Mood::Neutral)
                .map(|m| self.sentence_evidence(m.sentence));
            (mood, ev)
        };
        (Some(part(&first)), Some(part(&last)))
    }
}
