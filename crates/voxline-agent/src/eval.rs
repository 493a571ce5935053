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

/// What happened to one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// What the agent did, in short.
    pub got: String,
    /// What it said.
    pub said: String,
    /// Whether that is what the case expects.
    pub ok: bool,
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
        let mut queue: std::collections::VecDeque<Action> = match conv.turn(&case.ask).await {
            Ok((_, actions)) => actions.into(),
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
                    got.push(match &ans.stopped {
                        Some(why) => format!("answer ({why})"),
                        None => "answer".into(),
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
        let rules = &agent.pack().rules;
        // Compared after Whisper's English normalisation: "1,000" = "1000", "nine" = "9".
        let norm = |t: &str| format!(" {} ", voxline_text::heard::normalize_english(t));
        let w = norm(&said);
        let holds = |c: &String| c.split('|').any(|alt| w.contains(&norm(alt)));
        let ok = match case.expect {
            Expect::Answer => {
                got.iter().any(|g| g.starts_with("answer"))
                    && case.contains.iter().all(holds)
                    && !case.contains.is_empty()
                    && !case.lacks.iter().any(holds)
            }
            Expect::Decline => said.contains(rules.domain.decline.trim()),
            Expect::Unknown => {
                said.contains(rules.domain.unknown.trim()) || DONT_KNOW.iter().any(|d| w.contains(&norm(d)))
            }
            Expect::Tool => conv.tool_calls.iter().any(|(name, args)| {
                Some(name) == case.tool.as_ref() && case.args.iter().all(|(k, v)| args.get(k) == Some(v))
            }),
            Expect::Transfer => got.iter().any(|g| g.starts_with("transfer")),
            Expect::Goodbye => got.iter().any(|g| g == "hang up"),
        };
        out.push(Outcome {
            case: case.clone(),
            got: got.join(", "),
            said,
            ok,
        });
    }
    out
}

/// Shares of the outcomes: (label, right, total) for answers, declines
/// (off-domain and unknown), tool calls and routing (transfer, goodbye).
pub fn summary(outcomes: &[Outcome]) -> Vec<(&'static str, usize, usize)> {
    let groups: [(&str, &[Expect]); 4] = [
        ("answered correctly", &[Expect::Answer]),
        (
            "declined correctly (off-domain, unknown)",
            &[Expect::Decline, Expect::Unknown],
        ),
        ("tool calls right (tool and arguments)", &[Expect::Tool]),
        ("transfers and goodbyes right", &[Expect::Transfer, Expect::Goodbye]),
    ];
    groups
        .iter()
        .map(|(label, kinds)| {
            let of: Vec<&Outcome> = outcomes.iter().filter(|o| kinds.contains(&o.case.expect)).collect();
            (*label, of.iter().filter(|o| o.ok).count(), of.len())
        })
        .collect()
}
