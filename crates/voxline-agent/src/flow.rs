//! Scripted flows (`flows.toml`): an ordered set of steps for an outbound
//! script or an IVR (greet → verify → offer → close). Each step has a goal
//! and the line that says it; the caller's answer moves the flow on through
//! the step's exits (a yes, a no, named words, or the result of the step's
//! tool). Questions in between are answered as usual and the step is asked
//! again, so the call stays on track; which steps were reached is recorded.

use crate::pack::{PackError, ToolSpec};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use voxline_text::words::{has_phrase, words};

/// How a step's line is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wording {
    /// The step's `say`, word for word (cached audio; compliance text).
    #[default]
    Fixed,
    /// The model words the step from its goal and `say`; checked like an
    /// answer (nothing not in them), `say` when the check fails.
    Model,
}

/// What ends a step when the call reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepEnd {
    /// Hang up after the line.
    Hangup,
    /// Transfer after the line (to `transfer_to`, else the escalation target).
    Transfer,
}

/// What moves a step on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitOn {
    /// The caller agrees ("yes", "that's right", "sure").
    Yes,
    /// The caller declines ("no", "not interested").
    No,
    /// The caller says one of `phrases`.
    Said,
    /// The step's tool succeeded.
    Done,
    /// The step's tool failed (an error or a refusal from the service).
    Failed,
}

impl ExitOn {
    /// Its name in `flows.toml` and the records.
    pub fn name(self) -> &'static str {
        match self {
            ExitOn::Yes => "yes",
            ExitOn::No => "no",
            ExitOn::Said => "said",
            ExitOn::Done => "done",
            ExitOn::Failed => "failed",
        }
    }
}

/// One way out of a step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exit {
    /// What the caller (or the tool) must do.
    pub on: ExitOn,
    /// For `said`: the words, any of which takes this exit.
    #[serde(default)]
    pub phrases: Vec<String>,
    /// The step it leads to.
    pub next: String,
}

/// One step of the flow (`[[step]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Its name (recorded when reached).
    pub name: String,
    /// What the step is for (given to the model when it words the step).
    pub goal: String,
    /// The line that says it (the wording itself, or the model's example
    /// and fallback). A tool step may leave it out.
    #[serde(default)]
    pub say: Option<String>,
    /// Said when the step is asked again after the caller went off script
    /// (default: `say` again).
    #[serde(default)]
    pub reask: Option<String>,
    /// How `say` is worded (default: the flow's `wording`).
    #[serde(default)]
    pub wording: Option<Wording>,
    /// A tool of `tools.toml` run when the step is reached (its arguments
    /// asked for as usual); its result takes the `done` or `failed` exit.
    #[serde(default)]
    pub tool: Option<String>,
    /// Ways out, tried in order.
    #[serde(default)]
    pub exit: Vec<Exit>,
    /// The step that follows at once (a statement that needs no answer).
    #[serde(default)]
    pub next: Option<String>,
    /// Where the flow goes when the caller gave no exit's answer in
    /// `max_tries` turns (default: the flow ends and the agent just helps).
    #[serde(default)]
    pub otherwise: Option<String>,
    /// Turns off script before `otherwise` (default: the flow's).
    #[serde(default)]
    pub max_tries: Option<u8>,
    /// The call ends here.
    #[serde(default)]
    pub end: Option<StepEnd>,
    /// For `end = "transfer"`: where to (a SIP URI).
    #[serde(default)]
    pub transfer_to: Option<String>,
    /// The call's outcome once this step is reached (`completed`,
    /// `declined`, or a pack's own word): a campaign contact's disposition.
    #[serde(default)]
    pub disposition: Option<String>,
}

/// Whether `name` can be an outcome: lowercase letters, digits and `_`.
pub fn is_outcome_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The flow's settings (`[flow]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Its name (for records and logs).
    pub name: String,
    /// The first step (default: the first one listed).
    #[serde(default)]
    pub start: Option<String>,
    /// Turns off script a step allows before its `otherwise`.
    #[serde(default = "default_max_tries")]
    pub max_tries: u8,
    /// How steps are worded unless they say otherwise.
    #[serde(default)]
    pub wording: Wording,
}

fn default_max_tries() -> u8 {
    2
}

/// A loaded, checked flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Settings.
    pub flow: FlowSettings,
    /// The steps.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

impl Flow {
    /// The index of the step named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// The first step's index.
    pub fn start(&self) -> usize {
        self.flow.start.as_deref().and_then(|s| self.index(s)).unwrap_or(0)
    }

    /// How step `i` is worded.
    pub fn wording(&self, i: usize) -> Wording {
        self.steps[i].wording.unwrap_or(self.flow.wording)
    }

    /// Turns off script step `i` allows.
    pub fn max_tries(&self, i: usize) -> u8 {
        self.steps[i].max_tries.unwrap_or(self.flow.max_tries)
    }

    /// Checks the flow against the pack's tools; errors name the field.
    pub fn check(&self, file: &Path, tools: &[ToolSpec]) -> Result<(), PackError> {
        let err = |field: String, why: String| Err(PackError::new(file, Some(&field), why));
        if self.flow.name.trim().is_empty() {
            return err("flow.name".into(), "must not be empty".into());
        }
        if self.steps.is_empty() {
            return err("step".into(), "a flow needs at least one step".into());
        }
        if !(1..=10).contains(&self.flow.max_tries) {
            return err("flow.max_tries".into(), "must be 1 to 10".into());
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if s.name.trim().is_empty() {
                return err(format!("step[{i}].name"), "must not be empty".into());
            }
            if seen.insert(s.name.as_str(), i).is_some() {
                return err(format!("step[{i}].name"), format!("{:?} is defined twice", s.name));
            }
            if let Some(d) = s.disposition.as_deref().filter(|d| !is_outcome_name(d)) {
                return err(
                    format!("step[{i}].disposition"),
                    format!("{d:?}: lowercase letters, digits and _ only (such as \"completed\")"),
                );
            }
        }
        if let Some(start) = &self.flow.start {
            if !seen.contains_key(start.as_str()) {
                return err("flow.start".into(), format!("no step is named {start:?}"));
            }
        }
        let known = |field: String, name: &str| -> Result<(), PackError> {
            if seen.contains_key(name) {
                Ok(())
            } else {
                err(field, format!("no step is named {name:?}"))
            }
        };
        for (i, s) in self.steps.iter().enumerate() {
            let at = |f: &str| format!("step[{i}].{f}");
            if s.goal.trim().is_empty() {
                return err(at("goal"), "must not be empty".into());
            }
            if s.say.as_deref().is_none_or(|t| t.trim().is_empty()) && s.tool.is_none() {
                return err(at("say"), "a step without a tool needs its line".into());
            }
            if s.max_tries.is_some_and(|n| !(1..=10).contains(&n)) {
                return err(at("max_tries"), "must be 1 to 10".into());
            }
            if let Some(t) = &s.tool {
                if !tools.iter().any(|spec| &spec.name == t) {
                    return err(at("tool"), format!("{t:?} is not a tool of tools.toml"));
                }
            }
            for (j, e) in s.exit.iter().enumerate() {
                let field = format!("step[{i}].exit[{j}]");
                known(format!("{field}.next"), &e.next)?;
                match e.on {
                    ExitOn::Said if e.phrases.iter().all(|p| p.trim().is_empty()) => {
                        return err(format!("{field}.phrases"), "a `said` exit needs its phrases".into());
                    }
                    ExitOn::Done | ExitOn::Failed if s.tool.is_none() => {
                        return err(format!("{field}.on"), "`done` and `failed` need the step's tool".into());
                    }
                    ExitOn::Yes | ExitOn::No | ExitOn::Said if s.tool.is_some() => {
                        return err(
                            format!("{field}.on"),
                            "a tool step moves on by its result (`done`, `failed`)".into(),
                        );
                    }
                    _ => {}
                }
            }
            if let Some(n) = &s.next {
                known(at("next"), n)?;
            }
            if let Some(n) = &s.otherwise {
                known(at("otherwise"), n)?;
            }
            let ways = usize::from(!s.exit.is_empty()) + usize::from(s.next.is_some()) + usize::from(s.end.is_some());
            if ways != 1 {
                return err(
                    at("exit"),
                    "a step needs exactly one of: exits (wait for the caller), next (go on), end".into(),
                );
            }
            if s.tool.is_some() && !s.exit.iter().any(|e| e.on == ExitOn::Done) {
                return err(at("exit"), "a tool step needs a `done` exit".into());
            }
            match (&s.end, &s.transfer_to) {
                (Some(StepEnd::Transfer), Some(to)) if !crate::pack::is_sip_uri(to) => {
                    return err(at("transfer_to"), "must be a sip: or sips: URI".into());
                }
                (Some(StepEnd::Transfer), _) | (_, None) => {}
                (_, Some(_)) => return err(at("transfer_to"), "only for `end = \"transfer\"`".into()),
            }
        }
        // Steps that go on at once must not go round for ever.
        for i in 0..self.steps.len() {
            let mut at = i;
            for _ in 0..=self.steps.len() {
                match self.steps[at].next.as_deref().and_then(|n| self.index(n)) {
                    Some(n) => at = n,
                    None => break,
                }
                if at == i {
                    return err(
                        format!("step[{i}].next"),
                        "these steps go on to each other for ever: one must wait for the caller".into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Loads and checks `flows.toml`.
    pub fn load(file: &Path, tools: &[ToolSpec]) -> Result<Flow, PackError> {
        let flow: Flow = crate::pack::read_toml(file)?;
        flow.check(file, tools)?;
        Ok(flow)
    }
}

/// Words that agree.
const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "correct",
    "that's right",
    "that is right",
    "right",
    "absolutely",
    "of course",
    "okay",
    "ok",
    "please do",
    "go ahead",
    "speaking",
    "that's me",
    "that is me",
    "it is",
    "i am",
    "i do",
    "sounds good",
    "definitely",
    "certainly",
];

/// Words that decline.
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "don't",
    "do not",
    "never",
    "wrong number",
    "isn't",
    "i'm not",
    "rather not",
];

/// Positive phrases that hold a "no" word.
const NOT_NO: &[&str] = &["no problem", "no worries", "not a problem", "why not"];

/// Whether the caller agreed (`Some(true)`), declined (`Some(false)`), or
/// neither or both (`None`).
pub fn yes_or_no(utterance: &str) -> Option<bool> {
    let mut w = words(utterance);
    for p in NOT_NO {
        w = w.replace(&words(p), " yes ");
    }
    match (has_phrase(&w, YES), has_phrase(&w, NO)) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// The exit of `step` the caller's words take, if any (tool exits are
/// taken by the tool's result, not by words).
pub fn exit_for<'a>(step: &'a Step, utterance: &str) -> Option<&'a Exit> {
    let w = words(utterance);
    // Named words first: "the branch" beats a "yes" that comes with it.
    if let Some(e) = step
        .exit
        .iter()
        .find(|e| e.on == ExitOn::Said && has_phrase(&w, &e.phrases))
    {
        return Some(e);
    }
    let yes = yes_or_no(utterance)?;
    let want = if yes { ExitOn::Yes } else { ExitOn::No };
    step.exit.iter().find(|e| e.on == want)
}

/// A step the call reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReached {
    /// The step's name.
    pub step: String,
    /// How: `start`, an exit (`yes`, `no`, `said`, `done`, `failed`),
    /// `next` or `otherwise`.
    pub via: String,
}

/// Where one call is in its flow.
#[derive(Debug, Clone, Default)]
pub struct FlowRun {
    /// The step waiting for the caller or its tool (`None`: not started,
    /// ended, or left after too many turns off script).
    pub at: Option<usize>,
    /// Turns off script at this step.
    pub tries: u8,
    /// Steps reached not yet handed to the records.
    pub reached: Vec<StepReached>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(text: &str) -> Result<Flow, PackError> {
        let flow: Flow =
            toml::from_str(text).map_err(|e| PackError::new(Path::new("flows.toml"), None, e.to_string()))?;
        flow.check(Path::new("flows.toml"), &[])?;
        Ok(flow)
    }

    const GOOD: &str = r#"
        [flow]
        name = "renewal"
        [[step]]
        name = "ask"
        goal = "Ask whether to post the card."
        say = "Shall we post it?"
        exit = [{ on = "said", phrases = ["branch"], next = "branch" }, { on = "yes", next = "bye" }, { on = "no", next = "branch" }]
        [[step]]
        name = "branch"
        goal = "Say where to collect it."
        say = "You can collect it at any branch."
        next = "bye"
        [[step]]
        name = "bye"
        goal = "Close."
        say = "Goodbye."
        end = "hangup"
    "#;

    #[test]
    fn yes_and_no_are_told_apart() {
        for y in [
            "Yes.",
            "Yeah, that's me.",
            "Sure, no problem.",
            "Yes please",
            "That's right",
            "OK go ahead",
        ] {
            assert_eq!(yes_or_no(y), Some(true), "{y}");
        }
        for n in [
            "No.",
            "No thanks.",
            "Nope",
            "I'm not interested",
            "Please don't",
            "Wrong number",
        ] {
            assert_eq!(yes_or_no(n), Some(false), "{n}");
        }
        for u in ["What time is it?", "Yes and no", "I don't know, right?"] {
            assert_eq!(yes_or_no(u), None, "{u}");
        }
    }

    #[test]
    fn exits_follow_the_callers_words() {
        let f = flow(GOOD).expect("valid flow");
        let ask = &f.steps[0];
        assert_eq!(exit_for(ask, "Yes please.").map(|e| e.next.as_str()), Some("bye"));
        assert_eq!(exit_for(ask, "No, thanks.").map(|e| e.next.as_str()), Some("branch"));
        assert_eq!(
            exit_for(ask, "Yes, I'll pick it up at the branch.").map(|e| e.next.as_str()),
            Some("branch")
        );
        assert!(exit_for(ask, "How much does a new card cost?").is_none());
    }

    #[test]
    fn a_broken_flow_is_refused_naming_the_field() {
        let cases = [
            (GOOD.replace("next = \"bye\"\n", "next = \"nowhere\"\n"), "step[1].next"),
            (
                GOOD.replace("phrases = [\"branch\"]", "phrases = []"),
                "step[0].exit[0].phrases",
            ),
            (GOOD.replace("end = \"hangup\"", ""), "step[2].exit"),
            (GOOD.replace("on = \"yes\"", "on = \"done\""), "step[0].exit[1].on"),
            (GOOD.replace("name = \"bye\"", "name = \"ask\""), "step[2].name"),
            (GOOD.replace("end = \"hangup\"", "next = \"branch\""), "step[1].next"),
            (GOOD.replace("say = \"Goodbye.\"", ""), "step[2].say"),
        ];
        for (text, field) in cases {
            let e = flow(&text).expect_err(field);
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
        }
        let e = flow(&GOOD.replace("name = \"renewal\"", "name = \"renewal\"\nstart = \"x\"")).expect_err("start");
        assert_eq!(e.field.as_deref(), Some("flow.start"));
    }
}
