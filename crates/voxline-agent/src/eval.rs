//! A domain pack's question set, run through the real engine (router,
//! retrieval, model, guard, tool choice): the share of answers that hold
//! the expected facts, of requests declined or admitted unknown, and of
//! tool calls with the right arguments.

use crate::dialogue::{Action, Agent};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// An answer holding every `contains` string.
    Answer,
    /// Declined as outside the domain.
    Decline,
    /// "I don't know" (and a transfer offered).
    Unknown,
    /// A tool call.
    Tool,
    /// A transfer to a human.
    Transfer,
    /// Goodbye and hang-up.
    Goodbye,
}

/// One question of the set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the caller says.
    pub ask: String,
    /// What should happen.
    pub expect: Expect,
    /// Answer: words or numbers the answer must hold (each may list alternatives: `no|not`).
    #[serde(default)]
    pub contains: Vec<String>,
    /// Answer: words or numbers it must not hold, a wrong fact the pack's
    /// passages make likely (each may list alternatives: `12 Harbor|Downtown`).
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Tool: its name.
    #[serde(default)]
    pub tool: Option<String>,
    /// Tool: its arguments.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// Tool: digits keyed when the agent asks for them.
    #[serde(default)]
    pub keyed: Option<String>,
    /// Tool: the caller's answer when the agent asks a question.
    #[serde(default)]
    pub then: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

/// Reads a question set (`[[case]]` tables).
pub fn load_cases(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let f: CaseFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(f.case)
}

/// How a case went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grade {
    /// What the case expects.
    Right,
    /// A fact stated that is not the expected one: a `lacks` said, or a
    /// number, amount or time in a reply that misses the case (or in one
    /// that should have declined). The worst outcome: said with confidence.
    WrongFact(String),
    /// The agent asked the caller to say it again: neither right nor wrong.
    AskedAgain,
    /// Not what the case expects, and no wrong fact stated.
    Missed,
}

/// What happened to one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// What the agent did, in short.
    pub got: String,
    /// What it said.
    pub said: String,
    /// How that compares with the case.
    pub grade: Grade,
    /// Some of the answer was read from the knowledge as written (the
    /// model's words failed a check, or it wrote none), not the model's.
    pub read: bool,
}

impl Outcome {
    /// Whether it is what the case expects.
    pub fn ok(&self) -> bool {
        self.grade == Grade::Right
    }
}

const DONT_KNOW: &[&str] = &[
    "don't know",
    "do not know",
    "not sure",
    "don't have that information",
    "no information",
];

/// Runs every case in a fresh conversation.
pub async fn run(agent: &Arc<Agent>, cases: &[Case]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for case in cases {
        let mut conv = agent.conversation();
        let mut said = Vec::new();
        let mut got = Vec::new();
        let mut read = false;
        let mut asked_again = false;
        let mut queue: std::collections::VecDeque<Action> = match conv.turn(&case.ask).await {
            Ok((intent, actions)) => {
                asked_again = intent == crate::Intent::Unclear;
                actions.into()
            }
            Err(e) => {
                got.push(format!("error: {e}"));
                Default::default()
            }
        };
        let mut answered_then = false;
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Say(s) => said.push(s),
                Action::Answer(mut ans) => {
                    let mut text = Vec::new();
                    while let Ok(Some(p)) = ans.next_phrase().await {
                        text.push(p);
                    }
                    let text = text.join(" ");
                    conv.answered(&ans, &text);
                    read |= ans.read_from_knowledge();
                    let by = if ans.is_curated() {
                        "curated"
                    } else if ans.read_from_knowledge() {
                        "read from the knowledge"
                    } else {
                        "in the model's words"
                    };
                    got.push(match &ans.stopped {
                        Some(why) => format!("answer {by} ({why})"),
                        None => format!("answer {by}"),
                    });
                    said.push(text);
                }
                Action::CollectDigits { .. } => {
                    got.push("collect digits".into());
                    if let Some(d) = &case.keyed {
                        queue.extend(conv.digits(d).await);
                    }
                }
                Action::CallTool(call) => {
                    got.push(format!("tool {} {:?}", call.tool, call.args));
                    // The question set checks the choice; the tool itself is not called.
                }
                Action::Transfer { to } => got.push(format!("transfer {to}")),
                Action::ScheduleCallback { when } => got.push(format!("callback {when}")),
                Action::SendDtmf { digits } => got.push(format!("keyed {digits}")),
                Action::Outcome(o) => got.push(format!("outcome {o}")),
                Action::HangUp => got.push("hang up".into()),
            }
            if queue.is_empty() && conv.is_collecting() && !answered_then {
                if let Some(then) = &case.then {
                    answered_then = true;
                    if let Ok((_, more)) = conv.turn(then).await {
                        queue.extend(more);
                    }
                }
            }
        }
        let said = said.join(" ");
        let grade = grade(agent, case, &conv, &got, &said, asked_again);
        out.push(Outcome {
            case: case.clone(),
            got: got.join(", "),
            said,
            grade,
            read,
        });
    }
    out
}

/// Grades one case from what the agent did (`got`) and said.
fn grade(
    agent: &Agent,
    case: &Case,
    conv: &crate::Conversation,
    got: &[String],
    said: &str,
    asked_again: bool,
) -> Grade {
    let rules = &agent.pack().rules;
    // Compared after Whisper's English normalisation: "1,000" = "1000", "nine" = "9".
    let norm = |t: &str| format!(" {} ", voxline_text::heard::normalize_english(t));
    let w = norm(said);
    // A figure also matches as a number said ("5th" holds 5).
    let said_numbers = crate::guard::numbers(said);
    let is_number = |alt: &str| alt.chars().all(|c| c.is_ascii_digit() || c == '.') && !alt.is_empty();
    let holds = |c: &String| {
        c.split('|').any(|alt| {
            w.contains(&norm(alt)) || (is_number(alt.trim()) && said_numbers.iter().any(|n| n == alt.trim()))
        })
    };
    let answered = got.iter().any(|g| g.starts_with("answer"));
    let right = match case.expect {
        Expect::Answer => {
            answered && !case.contains.is_empty() && case.contains.iter().all(holds) && !case.lacks.iter().any(holds)
        }
        Expect::Decline => said.contains(rules.domain.decline.trim()),
        Expect::Unknown => said.contains(rules.domain.unknown.trim()) || DONT_KNOW.iter().any(|d| w.contains(&norm(d))),
        Expect::Tool => conv.tool_calls.iter().any(|(name, args)| {
            Some(name) == case.tool.as_ref() && case.args.iter().all(|(k, v)| args.get(k) == Some(v))
        }),
        Expect::Transfer => got.iter().any(|g| g.starts_with("transfer")),
        Expect::Goodbye => got.iter().any(|g| g == "hang up"),
    };
    if right {
        return Grade::Right;
    }
    if let Some(wrong) = case.lacks.iter().find(|l| holds(l)) {
        return Grade::WrongFact(wrong.clone());
    }
    // A reply that misses the case, or should not have answered, and
    // states a figure: a number the caller may act on.
    let states_figures = matches!(case.expect, Expect::Answer | Expect::Decline | Expect::Unknown);
    if states_figures && answered {
        if let Some(n) = crate::guard::numbers(said).into_iter().next() {
            return Grade::WrongFact(n);
        }
    }
    if asked_again {
        return Grade::AskedAgain;
    }
    Grade::Missed
}

/// A group of cases and how they went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// What the group holds.
    pub label: &'static str,
    /// Cases in it.
    pub cases: usize,
    /// Right.
    pub right: usize,
    /// Right, with some of the answer read from the knowledge as written.
    pub right_read: usize,
    /// A wrong fact stated.
    pub wrong_facts: usize,
    /// The caller asked to say it again.
    pub asked_again: usize,
}

impl Tally {
    fn of(label: &'static str, outcomes: &[&Outcome]) -> Tally {
        let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        Tally {
            label,
            cases: outcomes.len(),
            right: count(&|o| o.ok()),
            right_read: count(&|o| o.ok() && o.read),
            wrong_facts: count(&|o| matches!(o.grade, Grade::WrongFact(_))),
            asked_again: count(&|o| o.grade == Grade::AskedAgain),
        }
    }
}

/// The outcomes by group: fact answers, declines (off-domain, unknown),
/// tool calls, routing (transfer, goodbye), then all of them.
pub fn summary(outcomes: &[Outcome]) -> Vec<Tally> {
    let groups: [(&str, &[Expect]); 4] = [
        ("fact questions", &[Expect::Answer]),
        ("declined (off-domain, unknown)", &[Expect::Decline, Expect::Unknown]),
        ("tool calls (tool and arguments)", &[Expect::Tool]),
        ("transfers and goodbyes", &[Expect::Transfer, Expect::Goodbye]),
    ];
    let mut out: Vec<Tally> = groups
        .iter()
        .map(|(label, kinds)| {
            let of: Vec<&Outcome> = outcomes.iter().filter(|o| kinds.contains(&o.case.expect)).collect();
            Tally::of(label, &of)
        })
        .collect();
    out.push(Tally::of("all", &outcomes.iter().collect::<Vec<_>>()));
    out
}

/// What a question set must show to pass.
#[derive(Debug, Clone, Copy)]
pub struct Bar {
    /// Least share of all cases right (0–1).
    pub min_right: f64,
    /// Least share of the fact questions answered right in the model's own
    /// words (0–1): an engine whose model writes nothing usable, every
    /// answer read from the knowledge, does not pass as a working model.
    pub min_model_answers: f64,
}

impl Default for Bar {
    /// 95 % right (the grounding issue's target), half the facts in the model's words.
    fn default() -> Bar {
        Bar {
            min_right: 0.95,
            min_model_answers: 0.5,
        }
    }
}

/// Whether the outcomes clear `bar`: no wrong fact at all, enough right,
/// enough fact answers in the model's words. `Err` says each shortfall.
pub fn passes(outcomes: &[Outcome], bar: Bar) -> Result<(), Vec<String>> {
    let all = Tally::of("all", &outcomes.iter().collect::<Vec<_>>());
    let facts: Vec<&Outcome> = outcomes.iter().filter(|o| o.case.expect == Expect::Answer).collect();
    let facts = Tally::of("facts", &facts);
    let share = |n: usize, of: usize| if of == 0 { 1.0 } else { n as f64 / of as f64 };
    let mut why = Vec::new();
    if all.wrong_facts > 0 {
        why.push(format!("{} wrong facts stated", all.wrong_facts));
    }
    if share(all.right, all.cases) < bar.min_right {
        why.push(format!(
            "{}/{} right, under {:.0}%",
            all.right,
            all.cases,
            bar.min_right * 100.0
        ));
    }
    let by_model = facts.right - facts.right_read;
    if share(by_model, facts.cases) < bar.min_model_answers {
        why.push(format!(
            "{by_model}/{} fact questions answered right in the model's words, under {:.0}%",
            facts.cases,
            bar.min_model_answers * 100.0
        ));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why)
    }
}

/// Retrieval on the fact questions: how often a passage holding the answer
/// (every `contains`, one of its alternatives) is the first found, or among
/// the first three. Cases no passage answers are left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recall {
    /// Fact questions some passage answers.
    pub cases: usize,
    /// Of those, answered by the first passage found.
    pub at_1: usize,
    /// Of those, answered by one of the first three.
    pub at_3: usize,
}

/// Measures [`Recall`] of `agent`'s knowledge search on `cases` (by words
/// and, when the pack's knowledge is embedded, by meaning).
pub async fn retrieval(agent: &Agent, cases: &[Case]) -> Recall {
    let norm = |t: &str| format!(" {} ", voxline_text::heard::normalize_english(t));
    let knowledge = &agent.pack().knowledge;
    let k = &agent.pack().rules.knowledge;
    let mut r = Recall::default();
    for case in cases
        .iter()
        .filter(|c| c.expect == Expect::Answer && !c.contains.is_empty())
    {
        let answers = |text: &str| {
            let w = norm(text);
            case.contains
                .iter()
                .all(|c| c.split('|').any(|alt| w.contains(&norm(alt))))
        };
        let holding: Vec<usize> = knowledge
            .passages()
            .iter()
            .enumerate()
            .filter(|(_, p)| answers(&format!("{} {}", p.title, p.text)))
            .map(|(i, _)| i)
            .collect();
        if holding.is_empty() {
            continue;
        }
        r.cases += 1;
        let meaning = agent.understand(&case.ask).await;
        let similarities = meaning.and_then(|q| knowledge.similarities(&q));
        let found = knowledge.find(&case.ask, similarities.as_deref(), 3, k.min_score, k.min_similarity);
        let rank = found.iter().position(|h| holding.contains(&h.index));
        r.at_1 += usize::from(rank == Some(0));
        r.at_3 += usize::from(rank.is_some());
    }
    r
}
