//! A call's summary: a short account, the caller's intent, the outcome,
//! what is still to be done, and the fields the pack names (a card's last
//! digits, masked). A language model may write it; every sentence it writes
//! is checked against the transcript by the agent's own guard (the check
//! every spoken answer passes against the knowledge: its numbers and names
//! said in the call, its words mostly the call's). A draft that fails, or
//! no model, gives the extractive summary: the call's own sentences,
//! quoted with where they were said. Fields are read by the pack's
//! patterns, never by the model.

use crate::meaning::sentences_of;
use crate::outcome::clip;
use crate::quote::transcript_for_prompt;
use crate::score::Evidence;
use crate::scorecard::{Speaker, SummaryField};
use crate::transcript::CallTranscript;
use serde::Serialize;
use voxline_agent::guard::{Guard, Verdict as GuardVerdict};
use voxline_llm::{ChatMessage, ChatModel, ChatRequest, Role};
use voxline_text::heard::normalize_english;

/// Words a summary may use that a call seldom says: how a summary tells
/// what was said, not what it is about.
const SUMMARY_WORDS: &str = "agent customer caller asked asks wanted wants explained explains told said says \
confirmed confirms requested requests inquired enquired called calling call about their they them his her \
needed needs offered offers agreed agrees will would follow up none nothing issue question answered \
provided gave given informed reported wanted wished whether also then later resolved unresolved";

/// How a summary was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum WrittenBy {
    /// By the language model, every sentence checked against the call.
    Model {
        /// The model's name.
        model: String,
    },
    /// From the call's own sentences.
    Extractive {
        /// Why the model's draft was not used (none: no model was asked).
        #[serde(skip_serializing_if = "Option::is_none")]
        model_refused: Option<String>,
    },
}

/// One point of a summary and where in the call it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// The point, in words.
    pub text: String,
    /// The line it quotes (an extractive summary's points; a model's
    /// checked sentences quote none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// A field read from the call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldValue {
    /// The field's name.
    pub name: String,
    /// Its value, masked as the pack says.
    pub value: String,
    /// The line it was read from, as read (lower case, numbers in digits),
    /// the value masked in it too.
    pub evidence: Evidence,
}

/// A call's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// A short account of the call.
    pub summary: String,
    /// What the customer wanted.
    pub intent: Option<Point>,
    /// How the call ended.
    pub outcome: Option<Point>,
    /// What is still to be done.
    pub follow_ups: Vec<Point>,
    /// The pack's fields found in the call.
    pub fields: Vec<FieldValue>,
    /// Who wrote it.
    pub written_by: WrittenBy,
}

/// Phrases of a customer saying what they want.
const ASKING: &[&str] = &[
    "i want",
    "i would like",
    "i'd like",
    "i need",
    "can you",
    "could you",
    "can i",
    "could i",
    "how do",
    "how can",
    "how much",
    "how long",
    "what is",
    "what's",
    "what are",
    "why",
    "when",
    "i'm calling",
    "i am calling",
    "calling about",
    "calling to",
    "lost",
    "stolen",
    "problem",
    "help me",
    "question",
    "wondering",
    "trying to",
    "please",
];

/// Phrases of an agent's closing, which say nothing of the outcome.
const CLOSING: &[&str] = &[
    "anything else",
    "thank you for calling",
    "thanks for calling",
    "goodbye",
    "good bye",
    "have a nice",
    "have a good",
    "have a great",
    "you're welcome",
    "you are welcome",
    "my pleasure",
    "bye",
];

/// Phrases of an agent promising what comes after the call.
const PROMISING: &[&str] = &[
    "i will",
    "i'll",
    "we will",
    "we'll",
    "you will receive",
    "you'll receive",
    "you will get",
    "you'll get",
    "will arrive",
    "call you back",
    "send you",
    "within",
    "expect",
    "follow up",
];

fn holds_any(sentence: &str, phrases: &[&str]) -> bool {
    voxline_text::words::has_phrase(&voxline_text::words::words(sentence), phrases)
}

/// A sentence of the call with where it was said.
struct Said {
    text: String,
    evidence: Evidence,
}

fn sentences(call: &CallTranscript, who: Speaker) -> Vec<Said> {
    call.lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.speaker == who)
        .flat_map(|(i, l)| {
            sentences_of(&l.text).into_iter().map(move |s| Said {
                text: s,
                evidence: Evidence {
                    line: i,
                    speaker: l.speaker,
                    at_ms: l.start_ms,
                    quote: l.text.clone(),
                },
            })
        })
        .collect()
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

fn point(s: &Said) -> Point {
    Point {
        text: s.text.clone(),
        evidence: Some(s.evidence.clone()),
    }
}

/// The summary made of the call's own sentences: the customer's first
/// request, the agent's last sentence that is not a closing, the agent's
/// promises of what comes next.
pub fn extractive(call: &CallTranscript, fields: &[SummaryField]) -> CallSummary {
    let asked = sentences(call, Speaker::Customer);
    let intent = asked
        .iter()
        .find(|s| word_count(&s.text) >= 3 && (s.text.ends_with('?') || holds_any(&s.text, ASKING)))
        .or_else(|| asked.iter().find(|s| word_count(&s.text) >= 4));
    let told = sentences(call, Speaker::Agent);
    let after = intent.map_or(0, |i| i.evidence.line);
    // What the agent did or told last, before the promises of what comes next.
    let telling = |s: &&Said| s.evidence.line >= after && word_count(&s.text) >= 4 && !holds_any(&s.text, CLOSING);
    let outcome = told
        .iter()
        .rev()
        .filter(telling)
        .find(|s| !holds_any(&s.text, PROMISING))
        .or_else(|| told.iter().rev().find(telling));
    let mut follow_ups: Vec<Point> = Vec::new();
    for s in told
        .iter()
        .filter(|s| s.evidence.line >= after && holds_any(&s.text, PROMISING))
    {
        if follow_ups.len() < 3 && !follow_ups.iter().any(|p| p.text == s.text) {
            follow_ups.push(point(s));
        }
    }
    let mut summary = Vec::new();
    if let Some(i) = intent {
        summary.push(format!("The customer said: \"{}\"", i.text));
    }
    if let Some(o) = outcome {
        summary.push(format!("The agent said: \"{}\"", o.text));
    }
    if summary.is_empty() {
        summary.push("Nothing was said that tells what the call was about.".into());
    }
    let out = CallSummary {
        summary: summary.join(" "),
        intent: intent.map(point),
        outcome: outcome.map(point),
        follow_ups,
        fields: Vec::new(),
        written_by: WrittenBy::Extractive { model_refused: None },
    };
    with_fields(out, call, fields)
}

/// `summary` with the pack's fields read from `call`, the masked ones
/// masked wherever the summary says them.
fn with_fields(mut summary: CallSummary, call: &CallTranscript, fields: &[SummaryField]) -> CallSummary {
    let found = read_fields(call, fields);
    mask_all(&mut summary, &found, fields);
    summary.fields = found.into_iter().map(|f| f.value).collect();
    summary
}

/// A field's value as read, before masking.
struct Read {
    raw: String,
    value: FieldValue,
}

/// A line as fields are read from it: lower case, numbers in digits, a
/// number spoken digit by digit ("4 8 2 1") joined ("4821").
pub fn reading_form(text: &str) -> String {
    let norm = normalize_english(text);
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    for w in norm.split_whitespace() {
        if w.len() == 1 && w.chars().all(|c| c.is_ascii_digit()) {
            run.push_str(w);
            continue;
        }
        if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
        out.push(w.to_string());
    }
    if !run.is_empty() {
        out.push(run);
    }
    out.join(" ")
}

/// `value` with all but its last `keep` characters as `*`.
pub fn mask(value: &str, keep: usize) -> String {
    let n = value.chars().count();
    value
        .chars()
        .enumerate()
        .map(|(i, c)| if i + keep < n { '*' } else { c })
        .collect()
}

fn read_fields(call: &CallTranscript, fields: &[SummaryField]) -> Vec<Read> {
    let mut out = Vec::new();
    for f in fields {
        // Checked when the scorecard was read.
        let Ok(re) = regex::Regex::new(&f.pattern) else {
            continue;
        };
        let hit = call
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| f.who.is_none_or(|w| w == l.speaker))
            .find_map(|(i, l)| {
                let form = reading_form(&l.text);
                let caps = re.captures(&form)?;
                let m = caps.get(1).or_else(|| caps.get(0))?;
                let raw = m.as_str().to_string();
                (!raw.trim().is_empty()).then(|| (i, l, form.clone(), raw))
            });
        if let Some((i, l, form, raw)) = hit {
            let value = f.mask_keep.map_or_else(|| raw.clone(), |k| mask(&raw, k));
            out.push(Read {
                value: FieldValue {
                    name: f.name.clone(),
                    evidence: Evidence {
                        line: i,
                        speaker: l.speaker,
                        at_ms: l.start_ms,
                        quote: form.replace(&raw, &value),
                    },
                    value,
                },
                raw,
            });
        }
    }
    out
}

/// Masks the masked fields' values wherever the summary says them.
fn mask_all(summary: &mut CallSummary, found: &[Read], fields: &[SummaryField]) {
    let masked: Vec<(&str, &str)> = found
        .iter()
        .filter(|r| fields.iter().any(|f| f.name == r.value.name && f.mask_keep.is_some()))
        .map(|r| (r.raw.as_str(), r.value.value.as_str()))
        .collect();
    if masked.is_empty() {
        return;
    }
    let hide = |t: &mut String| {
        for (raw, value) in &masked {
            *t = t.replace(raw, value);
        }
    };
    hide(&mut summary.summary);
    let points = summary
        .intent
        .iter_mut()
        .chain(summary.outcome.iter_mut())
        .chain(summary.follow_ups.iter_mut());
    for p in points {
        hide(&mut p.text);
        if let Some(e) = &mut p.evidence {
            hide(&mut e.quote);
        }
    }
}

/// The prompt asking for a summary of a call written out as `transcript`.
pub fn summary_prompt(transcript: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            Role::System,
            "You summarise recorded phone calls between a company's agent and a customer, \
             using only what the transcript says.",
        ),
        ChatMessage::new(
            Role::User,
            format!(
                "Transcript:\n{transcript}\n\nSummarise the call in four lines:\n\
                 SUMMARY: one or two sentences on what happened\n\
                 INTENT: what the customer wanted\n\
                 OUTCOME: how the call ended\n\
                 FOLLOW-UP: what is still to be done, or none"
            ),
        ),
    ]
}

/// A model's draft, as read from its reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// SUMMARY.
    pub summary: String,
    /// INTENT.
    pub intent: String,
    /// OUTCOME.
    pub outcome: String,
    /// FOLLOW-UP (empty when "none").
    pub follow_up: String,
}

/// Reads a reply's labelled lines; a label missing or empty is an error
/// naming it.
pub fn read_draft(reply: &str) -> Result<Draft, String> {
    let mut d = Draft::default();
    for line in reply.lines().map(str::trim) {
        let lower = line.to_lowercase().replacen("follow up:", "follow-up:", 1);
        let slot = [
            ("summary:", &mut d.summary),
            ("intent:", &mut d.intent),
            ("outcome:", &mut d.outcome),
            ("follow-up:", &mut d.follow_up),
        ]
        .into_iter()
        .find(|(label, _)| lower.starts_with(label));
        if let Some((label, slot)) = slot {
            if slot.is_empty() {
                *slot = line.get(label.len()..).unwrap_or("").trim().to_string();
            }
        }
    }
    for (name, v) in [("SUMMARY", &d.summary), ("INTENT", &d.intent), ("OUTCOME", &d.outcome)] {
        if v.is_empty() {
            return Err(format!("no {name} line in the reply {:?}", clip(reply, 160)));
        }
    }
    let none = |s: &str| {
        let w = voxline_text::words::words(s);
        matches!(
            w.trim(),
            "" | "none" | "nothing" | "n a" | "no" | "none needed" | "nothing to do"
        )
    };
    if none(&d.follow_up) {
        d.follow_up.clear();
    }
    Ok(d)
}

/// A text's clauses: its sentences cut at `;` and at `, ` (not in "1,000"),
/// as the agent's replies are checked phrase by phrase.
fn clauses(text: &str) -> Vec<String> {
    sentences_of(text)
        .iter()
        .flat_map(|s| {
            s.split([';'])
                .flat_map(|c| c.split(", "))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Checks every sentence of a draft against the call: the agent's guard
/// over the whole transcript as the one source. The first sentence that
/// fails, and why, is the error.
pub fn check_draft(draft: &Draft, call: &CallTranscript) -> Result<(), String> {
    let text: String = call.lines.iter().map(|l| format!("{} ", l.text.trim())).collect();
    let parts = [
        ("SUMMARY", &draft.summary),
        ("INTENT", &draft.intent),
        ("OUTCOME", &draft.outcome),
        ("FOLLOW-UP", &draft.follow_up),
    ];
    for (name, part) in parts {
        // One guard per part: a point said again in another part is no loop.
        let mut guard = Guard::new(&[], &[text.as_str()], &[SUMMARY_WORDS]);
        for sentence in clauses(part) {
            let why = match guard.check(&sentence) {
                GuardVerdict::Speak => continue,
                GuardVerdict::Ungrounded(what) => {
                    format!(
                        "states what the call does not hold ({})",
                        what.replace("the facts", "the call")
                    )
                }
                GuardVerdict::Repeated => "said twice".into(),
                GuardVerdict::PromptEcho => "carries on the prompt".into(),
                GuardVerdict::Forbidden | GuardVerdict::Echo => "not a summary of the call".into(),
            };
            return Err(format!("{name} {sentence:?}: {why}"));
        }
    }
    Ok(())
}

/// The call's summary: the model's draft when every sentence of it holds
/// against the call, else the extractive one (saying why the draft was
/// refused). Without a model, the extractive one.
pub async fn summarize(call: &CallTranscript, fields: &[SummaryField], model: Option<&dyn ChatModel>) -> CallSummary {
    let mut base = extractive(call, fields);
    let Some(model) = model else {
        return base;
    };
    if call.lines.is_empty() {
        base.written_by = WrittenBy::Extractive {
            model_refused: Some("the call has no words to summarise".into()),
        };
        return base;
    }
    let request = ChatRequest::new(
        summary_prompt(&transcript_for_prompt(call, crate::outcome::PROMPT_TRANSCRIPT_CHARS)),
        200,
    );
    let drafted = crate::quote::ask(model, request)
        .await
        .map_err(|e| format!("the language model {} failed: {e}", model.name()))
        .and_then(|r| read_draft(&r))
        .and_then(|d| check_draft(&d, call).map(|()| d));
    match drafted {
        Ok(d) => {
            let text = |t: String| Point {
                text: t,
                evidence: None,
            };
            let out = CallSummary {
                summary: d.summary,
                intent: Some(text(d.intent)),
                outcome: Some(text(d.outcome)),
                follow_ups: if d.follow_up.is_empty() {
                    Vec::new()
                } else {
                    vec![text(d.follow_up)]
                },
                fields: Vec::new(),
                written_by: WrittenBy::Model { model: model.name() },
            };
            with_fields(out, call, fields)
        }
        Err(why) => {
            base.written_by = WrittenBy::Extractive {
                model_refused: Some(why),
            };
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(lines: &[(Speaker, &str)]) -> CallTranscript {
        crate::transcript::call_of(lines, 4000)
    }

    fn lost_card() -> CallTranscript {
        call(&[
            (
                Speaker::Agent,
                "Thank you for calling Harbor Bank, this is Ava. How can I help you today?",
            ),
            (
                Speaker::Customer,
                "Hi. I lost my debit card yesterday and I need to block it.",
            ),
            (
                Speaker::Agent,
                "I'm sorry to hear that. Can you confirm the last four digits of the card?",
            ),
            (Speaker::Customer, "Yes, it ends in four eight two one."),
            (
                Speaker::Agent,
                "Thank you. I have blocked the card ending 4821. A new card will arrive within five working days.",
            ),
            (Speaker::Customer, "Great, thanks."),
            (
                Speaker::Agent,
                "Is there anything else I can help you with? Thank you for calling Harbor Bank. Goodbye.",
            ),
        ])
    }

    fn card_field() -> SummaryField {
        SummaryField {
            name: "card_last_four".into(),
            who: Some(Speaker::Customer),
            pattern: r"(?:ends in|ending|last four digits are) (\d{4})\b".into(),
            mask_keep: Some(2),
        }
    }

    #[test]
    fn the_extractive_summary_quotes_the_request_the_outcome_and_the_promise() {
        let s = extractive(&lost_card(), &[card_field()]);
        let json = serde_json::to_string(&s).expect("json");
        assert!(!json.contains("4821"), "the card's digits in clear: {json}");
        let intent = s.intent.expect("intent");
        assert_eq!(intent.text, "I lost my debit card yesterday and I need to block it.");
        assert_eq!(intent.evidence.map(|e| e.line), Some(1));
        let outcome = s.outcome.expect("outcome");
        // The closing lines say nothing of the outcome; the promise is a follow-up.
        assert_eq!(outcome.text, "I have blocked the card ending **21.");
        assert_eq!(s.follow_ups.len(), 1, "{:?}", s.follow_ups);
        assert!(s.summary.contains("I need to block it"), "{}", s.summary);
        assert_eq!(s.fields.len(), 1);
        assert_eq!(s.fields[0].value, "**21");
        assert!(s.fields[0].evidence.quote.contains("ends in **21"), "{:?}", s.fields[0]);
        assert_eq!(s.written_by, WrittenBy::Extractive { model_refused: None });
    }

    #[test]
    fn a_draft_stating_what_the_call_did_not_is_refused() {
        let c = lost_card();
        let good = Draft {
            summary: "The customer lost their debit card and the agent blocked it.".into(),
            intent: "Block a lost debit card.".into(),
            outcome: "The card ending 4821 was blocked; a new card will arrive within five working days.".into(),
            follow_up: String::new(),
        };
        check_draft(&good, &c).expect("a faithful draft passes");
        let fee = Draft {
            outcome: "The card was blocked and a fee of 25 pounds was charged.".into(),
            ..good.clone()
        };
        let why = check_draft(&fee, &c).unwrap_err();
        assert!(why.starts_with("OUTCOME") && why.contains("25"), "{why}");
        let days = Draft {
            follow_up: "A new card will arrive within ten working days.".into(),
            ..good.clone()
        };
        assert!(check_draft(&days, &c).unwrap_err().contains("10"), "a changed figure");
        let invented = Draft {
            summary: "The customer complained about mortgage interest and overdraft penalties.".into(),
            ..good
        };
        assert!(check_draft(&invented, &c).unwrap_err().starts_with("SUMMARY"));
    }

    #[test]
    fn a_reply_without_its_labels_is_named() {
        let d = read_draft("SUMMARY: A card was blocked.\nINTENT: block a card\nOUTCOME: blocked\nFOLLOW-UP: None.")
            .expect("read");
        assert_eq!((d.intent.as_str(), d.follow_up.as_str()), ("block a card", ""));
        let e = read_draft("The customer called about a card.").unwrap_err();
        assert!(e.contains("SUMMARY"), "{e}");
        let e = read_draft("SUMMARY: x\nINTENT: y\n").unwrap_err();
        assert!(e.contains("OUTCOME"), "{e}");
    }

    #[test]
    fn spoken_digits_are_read_as_one_number_and_masked() {
        assert_eq!(reading_form("It ends in four, eight, two, one."), "it ends in 4821");
        assert_eq!(mask("4821", 2), "**21");
        assert_eq!(mask("21", 4), "21");
    }
}
