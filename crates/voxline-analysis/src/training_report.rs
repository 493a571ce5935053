//! The trainee's report after a training call: the scenario's scorecard
//! with the trainee as the agent side (each item's verdict with the quotes
//! and times it rests on, and the scorecard's own wording where an item
//! was missed), the customer's objections (when each was raised, which of
//! the trainee's lines settled it), the facts the trainee should have
//! stated (the line that stated each, or the fact as the scenario words it
//! and the pack's knowledge section that holds it), and how the customer
//! left. Stored as JSON and printed as text from the same value.

use crate::score::{CallScore, ItemScore, Verdict};
use crate::scorecard::{Check, Scorecard, Speaker};
use crate::training::{Fact, Scenario};
use crate::transcript::{CallTranscript, Line};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use voxline_agent::knowledge::{english_analyzer, fact_terms, Knowledge};

/// A line of the call a verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// When it was said, ms from the call's answer.
    pub at_ms: u64,
    /// Who said it: `trainee` or `customer`.
    pub who: String,
    /// The words as the transcript has them.
    pub text: String,
}

/// One scorecard item, judged with the trainee as the agent side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportItem {
    /// The item's id.
    pub id: String,
    /// Its kind (`said`, `silence`…).
    pub kind: String,
    /// pass, fail, na or unsure.
    pub verdict: String,
    /// Its weight.
    pub weight: u32,
    /// A failed critical item fails the session.
    pub critical: bool,
    /// Why, in words.
    pub why: String,
    /// The lines it rests on.
    pub quotes: Vec<Quote>,
    /// On a miss: the scorecard's wording to use (`said`, `order`), or what
    /// not to say again (`not_said`).
    pub better: Option<String>,
}

/// Where an objection got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionState {
    /// The trainee's words settled it.
    Settled,
    /// Raised and never settled.
    NotSettled,
    /// The call ended before the customer raised it.
    NotReached,
}

/// One of the customer's objections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportObjection {
    /// What the customer says.
    pub line: String,
    /// Where it got to.
    pub state: ObjectionState,
    /// When the customer raised it (again), ms from the answer.
    pub raised_ms: Vec<u64>,
    /// The trainee's line that settled it.
    pub settled_by: Option<Quote>,
    /// When not settled: a line that would have (the scenario's first).
    pub better: Option<String>,
}

/// A fact the trainee should state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportFact {
    /// Its id.
    pub id: String,
    /// The trainee's line that stated it.
    pub stated: Option<Quote>,
    /// The fact as the scenario words it (the better wording on a miss).
    pub state: String,
    /// The pack's knowledge section that holds it ("fees.md › Overdrafts"),
    /// when one does.
    pub source: Option<String>,
}

/// A trainee's report on one training call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    /// The scenario's name.
    pub scenario: String,
    /// Its title.
    pub title: String,
    /// Who was trained.
    pub trainee: String,
    /// The call's SIP Call-ID.
    pub call_id: String,
    /// When the call was answered (ms since the epoch).
    pub answered_at: Option<i64>,
    /// How long it lasted, ms.
    pub duration_ms: u64,
    /// How the customer left: satisfied, angry (none: the trainee hung up
    /// or the call was cut).
    pub outcome: Option<String>,
    /// The scorecard's score, 0–100 (none: nothing could be judged).
    pub score: Option<f64>,
    /// The scorecard's pass mark.
    pub pass_score: f64,
    /// Passed the scorecard: its pass mark and no critical item failed.
    pub passed: bool,
    /// Each item, in the scorecard's order.
    pub items: Vec<ReportItem>,
    /// The objections, in the scenario's order.
    pub objections: Vec<ReportObjection>,
    /// The facts, in the scenario's order.
    pub facts: Vec<ReportFact>,
}

/// Who a transcript line is from, as the report names them (the trainee is
/// the agent side of the transcript it is built from).
fn who(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "trainee",
        Speaker::Customer => "customer",
    }
}

fn quote(line: &Line) -> Quote {
    Quote {
        at_ms: line.start_ms,
        who: who(line.speaker).into(),
        text: line.text.clone(),
    }
}

/// What the report's call is: its ids and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCall {
    /// Who was trained.
    pub trainee: String,
    /// The call's SIP Call-ID.
    pub call_id: String,
    /// When it was answered (ms since the epoch).
    pub answered_at: Option<i64>,
    /// The call's outcome as recorded (`satisfied`, `angry`).
    pub outcome: Option<String>,
}

impl TrainingReport {
    /// The report on `call` (its transcript with the trainee as the agent
    /// side), scored as `score` against the scenario's scorecard; facts are
    /// grounded in `knowledge` when given.
    pub fn build(
        scenario: &Scenario,
        call: &SessionCall,
        transcript: &CallTranscript,
        score: &CallScore,
        knowledge: Option<&Knowledge>,
    ) -> TrainingReport {
        TrainingReport {
            scenario: scenario.name.clone(),
            title: scenario.title.clone(),
            trainee: call.trainee.clone(),
            call_id: call.call_id.clone(),
            answered_at: call.answered_at,
            duration_ms: transcript.duration_ms,
            outcome: call
                .outcome
                .clone()
                .filter(|o| matches!(o.as_str(), "satisfied" | "angry")),
            score: score.score,
            pass_score: scenario.scorecard.pass_score,
            passed: score.passed,
            items: items(&scenario.scorecard, score),
            objections: objections(scenario, transcript, call.outcome.as_deref() == Some("satisfied")),
            facts: scenario
                .facts
                .iter()
                .map(|f| ReportFact {
                    id: f.id.clone(),
                    stated: stated(f, transcript).map(quote),
                    state: f.state.clone(),
                    source: knowledge.and_then(|k| grounding(f, k)),
                })
                .collect(),
        }
    }

    /// What the trainee missed, each with the better wording: failed
    /// items, objections not settled, facts not stated.
    pub fn missed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in self.items.iter().filter(|i| i.verdict == "fail") {
            out.push(match &i.better {
                Some(b) => format!("{}: {b}", i.id),
                None => format!("{}: {}", i.id, i.why),
            });
        }
        for (n, o) in self.objections.iter().enumerate() {
            if o.state == ObjectionState::NotSettled {
                let better = o.better.as_deref().unwrap_or_default();
                out.push(format!("objection {}: settle it with \"{better}\"", n + 1));
            }
        }
        for f in self.facts.iter().filter(|f| f.stated.is_none()) {
            let from = f.source.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            out.push(format!("{}: say \"{}\"{from}", f.id, f.state));
        }
        out
    }

    /// The report as text, for a trainee or their coach.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Training report: {} ({})", self.title, self.scenario);
        let outcome = match self.outcome.as_deref() {
            Some("satisfied") => "the customer left satisfied",
            Some("angry") => "the customer hung up angry",
            _ => "the call ended before the customer was satisfied",
        };
        let _ = writeln!(
            s,
            "Trainee {} · call {} · {} · {}",
            self.trainee,
            self.call_id,
            clock(self.duration_ms),
            outcome
        );
        let score = self.score.map_or("no score".to_string(), |v| format!("{v:.0}/100"));
        let _ = writeln!(
            s,
            "Score {score} (pass mark {:.0}, no critical item failed): {}",
            self.pass_score,
            if self.passed { "passed" } else { "not passed" }
        );
        let _ = writeln!(s, "\nScorecard (the trainee is the agent side)");
        for i in &self.items {
            let mark = if i.critical { ", critical" } else { "" };
            let _ = writeln!(
                s,
                "  {:<6} {} (weight {}{mark}): {}",
                i.verdict.to_uppercase(),
                i.id,
                i.weight,
                i.why
            );
            for q in &i.quotes {
                let _ = writeln!(s, "         {} {}: \"{}\"", clock(q.at_ms), q.who, q.text);
            }
            if let (Some(b), "fail") = (&i.better, i.verdict.as_str()) {
                let _ = writeln!(s, "         better: {b}");
            }
        }
        if !self.objections.is_empty() {
            let _ = writeln!(s, "\nObjections");
        }
        for (n, o) in self.objections.iter().enumerate() {
            let raised: Vec<String> = o.raised_ms.iter().map(|t| clock(*t)).collect();
            let when = if raised.is_empty() {
                "never raised".to_string()
            } else {
                format!("raised at {}", raised.join(", "))
            };
            let state = match o.state {
                ObjectionState::Settled => "settled",
                ObjectionState::NotSettled => "NOT SETTLED",
                ObjectionState::NotReached => "not reached",
            };
            let _ = writeln!(s, "  {}. \"{}\" {when}: {state}", n + 1, o.line);
            if let Some(q) = &o.settled_by {
                let _ = writeln!(s, "     {} trainee: \"{}\"", clock(q.at_ms), q.text);
            }
            if let (Some(b), ObjectionState::NotSettled) = (&o.better, o.state) {
                let _ = writeln!(s, "     better: \"{b}\"");
            }
        }
        if !self.facts.is_empty() {
            let _ = writeln!(s, "\nFacts to state");
        }
        for f in &self.facts {
            match &f.stated {
                Some(q) => {
                    let _ = writeln!(s, "  stated {} at {}: \"{}\"", f.id, clock(q.at_ms), q.text);
                }
                None => {
                    let from = f.source.as_deref().map(|x| format!(" (from {x})")).unwrap_or_default();
                    let _ = writeln!(s, "  MISSED {}: say \"{}\"{from}", f.id, f.state);
                }
            }
        }
        let missed = self.missed();
        let _ = writeln!(s, "\nTo work on: {}", if missed.is_empty() { "nothing" } else { "" });
        for m in missed {
            let _ = writeln!(s, "  - {m}");
        }
        s
    }
}

/// `m:ss`.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn items(card: &Scorecard, score: &CallScore) -> Vec<ReportItem> {
    card.items
        .iter()
        .zip(&score.items)
        .map(|(item, got): (_, &ItemScore)| ReportItem {
            id: got.id.clone(),
            kind: got.kind.to_string(),
            verdict: got.verdict.as_str().to_string(),
            weight: got.weight,
            critical: got.critical,
            why: got.why.clone(),
            quotes: got
                .evidence
                .iter()
                .map(|e| Quote {
                    at_ms: e.at_ms,
                    who: who(e.speaker).into(),
                    text: e.quote.clone(),
                })
                .collect(),
            better: (got.verdict == Verdict::Fail)
                .then(|| better_for(&item.check))
                .flatten(),
        })
        .collect()
}

/// The scorecard's own wording for a missed item.
fn better_for(check: &Check) -> Option<String> {
    match check {
        Check::Said { lines, .. } => lines.first().map(|l| format!("say \"{l}\"")),
        Check::Order { first, .. } => first.first().map(|l| format!("first say \"{l}\"")),
        Check::NotSaid { .. } => Some("never promise or say this; say what the pack's knowledge holds".into()),
        Check::Escalation { offers, .. } => offers.first().map(|l| format!("offer \"{l}\"")),
        Check::Silence { hold_lines, .. } => hold_lines
            .first()
            .map(|l| format!("say \"{l}\" before a pause, and keep it short")),
        _ => None,
    }
}

/// A line's words for finding a script's line in it: lower case, letters
/// and digits only.
fn plain(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The customer said `script_line` in `line` (its first six words, enough
/// for a line cut short by the trainee talking over it).
fn says_line(line: &str, script_line: &str) -> bool {
    let want = plain(script_line);
    let head: Vec<&str> = want.split(' ').take(6).collect();
    !head.is_empty() && plain(line).contains(&head.join(" "))
}

/// The customer's objections, read from what the bot said: each raise,
/// and the trainee's line after which the customer moved on (to a later
/// objection or their satisfied line).
fn objections(scenario: &Scenario, t: &CallTranscript, satisfied: bool) -> Vec<ReportObjection> {
    let customer: Vec<(usize, &Line)> = t
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.speaker == Speaker::Customer)
        .collect();
    let objections = &scenario.customer.objection;
    objections
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let raised: Vec<usize> = customer
                .iter()
                .filter(|(_, l)| says_line(&l.text, &o.line))
                .map(|(n, _)| *n)
                .collect();
            let from = raised.first().copied().unwrap_or(0);
            // The customer moving on: a later objection, or satisfied.
            let moved_on = customer.iter().find(|(n, l)| {
                *n > from
                    && (objections[i + 1..].iter().any(|later| says_line(&l.text, &later.line))
                        || says_line(&l.text, &scenario.customer.satisfied_line))
            });
            let settled_at = moved_on.map(|(n, _)| *n).or(satisfied.then_some(t.lines.len()));
            let settled_by = settled_at.and_then(|at| {
                t.lines[..at]
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(n, l)| l.speaker == Speaker::Agent && raised.iter().all(|r| r < n))
                    .map(|(_, l)| quote(l))
            });
            let state = match (settled_at, raised.is_empty()) {
                (Some(_), _) => ObjectionState::Settled,
                (None, false) => ObjectionState::NotSettled,
                (None, true) => ObjectionState::NotReached,
            };
            ReportObjection {
                line: o.line.clone(),
                state,
                raised_ms: raised.iter().map(|n| t.lines[*n].start_ms).collect(),
                settled_by,
                better: (state != ObjectionState::Settled)
                    .then(|| o.settled_by.first().cloned())
                    .flatten(),
            }
        })
        .collect()
}

/// A fact's `holds` as term lists, each with its alternatives
/// (`25|twenty-five` → [["25"], ["25"]]), and one analyser for the texts
/// it is looked for in.
struct Holds {
    wanted: Vec<Vec<Vec<String>>>,
    analyzer: voxline_agent::knowledge::TextAnalyzer,
}

impl Holds {
    fn of(fact: &Fact) -> Holds {
        let mut analyzer = english_analyzer();
        let wanted = fact
            .holds
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| h.split('|').map(|alt| fact_terms(&mut analyzer, alt)).collect())
            .collect();
        Holds { wanted, analyzer }
    }

    /// `text` holds every one of the fact's `holds` (one of each's
    /// alternatives, all of that alternative's terms).
    fn in_text(&mut self, text: &str) -> bool {
        let terms = fact_terms(&mut self.analyzer, text);
        self.wanted.iter().all(|alts| {
            alts.iter()
                .any(|alt| !alt.is_empty() && alt.iter().all(|w| terms.contains(w)))
        })
    }
}

/// The trainee's first line that states `fact`.
fn stated<'a>(fact: &Fact, t: &'a CallTranscript) -> Option<&'a Line> {
    let mut holds = Holds::of(fact);
    t.lines
        .iter()
        .find(|l| l.speaker == Speaker::Agent && holds.in_text(&l.text))
}

/// The knowledge section that holds `fact` (its title), the best found
/// for the fact's wording first.
pub fn grounding(fact: &Fact, knowledge: &Knowledge) -> Option<String> {
    let mut holds = Holds::of(fact);
    let found = knowledge.search(&fact.state, 5, 0.0);
    found
        .iter()
        .map(|h| &h.passage)
        .chain(knowledge.passages())
        .find(|p| holds.in_text(&p.text))
        .map(|p| p.title.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::{Customer, Mood, Objection};
    use crate::transcript::call_of;

    fn scenario() -> Scenario {
        Scenario {
            name: "overdraft-fee".into(),
            title: "An overdraft fee".into(),
            file: "training/overdraft-fee.toml".into(),
            customer: Customer {
                persona: "Sam".into(),
                mood: Mood::Angry,
                knows: vec![],
                wants: "to know why".into(),
                opening: "What is this 25 dollar charge?".into(),
                objection: vec![
                    Objection {
                        line: "Twenty-five dollars for two days? That's outrageous.".into(),
                        settled_by: vec!["The fee is charged once per month.".into()],
                    },
                    Objection {
                        line: "So what stops this from happening again?".into(),
                        settled_by: vec!["You can ask for an arranged overdraft.".into()],
                    },
                ],
                satisfied_by: vec!["An unarranged overdraft costs 25 dollars per month.".into()],
                satisfied_line: "All right, that makes sense now. Thank you, goodbye.".into(),
                angry_line: "Goodbye.".into(),
                patience_s: 240,
            },
            scorecard: Scorecard {
                file: "qa.toml".into(),
                pass_score: 80.0,
                items: vec![],
                fields: vec![],
            },
            facts: vec![
                Fact {
                    id: "unarranged_fee".into(),
                    state: "An unarranged overdraft costs 25 dollars per month in which it happens.".into(),
                    holds: vec!["25|twenty-five".into(), "month".into()],
                },
                Fact {
                    id: "arranged_rate".into(),
                    state: "The arranged overdraft interest rate is 15 percent a year.".into(),
                    holds: vec!["15|fifteen".into()],
                },
            ],
        }
    }

    fn empty_score() -> CallScore {
        CallScore {
            items: vec![],
            score: None,
            passed: false,
        }
    }

    fn call(outcome: &str) -> SessionCall {
        SessionCall {
            trainee: "alice".into(),
            call_id: "c1".into(),
            answered_at: None,
            outcome: Some(outcome.into()),
        }
    }

    #[test]
    fn a_good_trainee_settles_both_objections_and_states_the_fee() {
        use Speaker::{Agent as T, Customer as C};
        let t = call_of(
            &[
                (C, "What is this 25 dollar charge?"),
                (T, "I'm sorry. That is the unarranged overdraft fee."),
                (C, "Twenty-five dollars for two days? That's outrageous."),
                (T, "It costs twenty five dollars per month, charged once per month."),
                (C, "So what stops this from happening again?"),
                (T, "You can ask for an arranged overdraft."),
                (C, "All right, that makes sense now. Thank you, goodbye."),
            ],
            5000,
        );
        let s = scenario();
        let r = TrainingReport::build(&s, &call("satisfied"), &t, &empty_score(), None);
        assert_eq!(r.objections[0].state, ObjectionState::Settled);
        assert_eq!(r.objections[0].raised_ms, vec![10_000]);
        assert_eq!(r.objections[0].settled_by.as_ref().map(|q| q.at_ms), Some(15_000));
        assert_eq!(r.objections[1].state, ObjectionState::Settled);
        assert_eq!(
            r.objections[1].settled_by.as_ref().map(|q| q.text.as_str()),
            Some("You can ask for an arranged overdraft.")
        );
        assert_eq!(r.facts[0].stated.as_ref().map(|q| q.at_ms), Some(15_000));
        assert!(r.facts[1].stated.is_none());
        assert_eq!(r.missed(), vec![format!("arranged_rate: say \"{}\"", s.facts[1].state)]);
        let text = r.render();
        assert!(text.contains("MISSED arranged_rate"), "{text}");
        assert!(text.contains("0:15 trainee: \"It costs twenty five dollars"), "{text}");
    }

    #[test]
    fn a_poor_trainee_leaves_the_objection_unsettled_with_the_line_that_would_settle_it() {
        use Speaker::{Agent as T, Customer as C};
        let t = call_of(
            &[
                (C, "What is this 25 dollar charge?"),
                (T, "Fees are fees."),
                (C, "Twenty-five dollars for two days? That's outrageous."),
                (T, "There is nothing I can do."),
                (
                    C,
                    "You're not answering me. Twenty-five dollars for two days? That's outrageous.",
                ),
                (T, "Please hold."),
                (C, "Goodbye."),
            ],
            5000,
        );
        let s = scenario();
        let r = TrainingReport::build(&s, &call("angry"), &t, &empty_score(), None);
        assert_eq!(r.objections[0].state, ObjectionState::NotSettled);
        assert_eq!(r.objections[0].raised_ms, vec![10_000, 20_000]);
        assert_eq!(
            r.objections[0].better.as_deref(),
            Some("The fee is charged once per month.")
        );
        assert_eq!(r.objections[1].state, ObjectionState::NotReached);
        assert!(r.facts.iter().all(|f| f.stated.is_none()));
        assert_eq!(r.missed().len(), 3, "{:?}", r.missed());
        // The stored form reads back to the same report.
        let back: TrainingReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_fact_is_grounded_in_the_section_that_holds_its_figures() {
        let k = Knowledge::from_passages(vec![
            voxline_agent::Passage {
                title: "Fees › Cards".into(),
                text: "Card payments abroad cost 2.75 percent.".into(),
                source: "fees.md".into(),
            },
            voxline_agent::Passage {
                title: "Fees › Overdrafts".into(),
                text: "An unarranged overdraft costs 25 dollars per month in which it happens.".into(),
                source: "fees.md".into(),
            },
        ])
        .unwrap();
        let s = scenario();
        assert_eq!(grounding(&s.facts[0], &k).as_deref(), Some("Fees › Overdrafts"));
        assert_eq!(grounding(&s.facts[1], &k), None);
    }
}
