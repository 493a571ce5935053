//! Outcome items judged by a language model: the item's yes/no question
//! about the call, answered with a quote. The answer counts only when the
//! quote is found word for word in the transcript ([`crate::quote`]); else
//! the item stays unsure, with the model's reply as why. A model that
//! cannot be reached leaves the item unsure too: the rest of the score
//! stands.

use crate::quote::{find_quote, transcript_for_prompt};
use crate::score::{CallScore, Verdict};
use crate::scorecard::{Check, Scorecard};
use crate::transcript::CallTranscript;
use voxline_llm::{ChatMessage, ChatModel, ChatRequest, Role};

/// The most of a transcript a question's prompt holds, characters (about
/// 1,500 tokens: the default model's context holds it with room to answer).
pub const PROMPT_TRANSCRIPT_CHARS: usize = 6000;

const SYSTEM: &str = "You check recorded phone calls between a company's agent and a customer. \
You answer only from the transcript, and you copy words from it exactly.";

/// A model's answer to a yes/no question, as read from its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAnswer {
    /// Yes (`Some(true)`), no, or no answer found.
    pub yes: Option<bool>,
    /// The words it quoted, if any.
    pub quote: Option<String>,
}

/// Reads "ANSWER: yes / QUOTE: …" (or a reply that starts with yes or no).
pub fn read_answer(reply: &str) -> ModelAnswer {
    let mut yes = None;
    let mut quote = None;
    for line in reply.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let lower = line.to_lowercase();
        if let Some(rest) = lower.strip_prefix("answer:") {
            yes = yes.or_else(|| yes_or_no(rest));
        } else if lower.starts_with("quote:") {
            let q = line.get("quote:".len()..).unwrap_or("").trim();
            if quote.is_none() && !q.is_empty() {
                quote = Some(q.to_string());
            }
        } else if yes.is_none() && quote.is_none() {
            yes = yes_or_no(&lower);
        }
    }
    ModelAnswer { yes, quote }
}

fn yes_or_no(text: &str) -> Option<bool> {
    let first: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect::<String>()
        .to_lowercase();
    match first.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// The prompt asking `question` about a call written out as `transcript`.
pub fn question_prompt(transcript: &str, question: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, SYSTEM),
        ChatMessage::new(
            Role::User,
            format!(
                "Transcript:\n{transcript}\n\nQuestion: {question}\n\
                 Reply in two lines:\nANSWER: yes or no\nQUOTE: the words of the transcript that show it, copied exactly"
            ),
        ),
    ]
}

/// Asks `model` the question of each outcome item of `card` about `call`,
/// sets each item's verdict from the answer when its quote is in the
/// transcript (else unsure, saying why) and tallies the score again.
pub async fn judge_outcomes(score: &mut CallScore, card: &Scorecard, call: &CallTranscript, model: &dyn ChatModel) {
    let transcript = transcript_for_prompt(call, PROMPT_TRANSCRIPT_CHARS);
    let mut judged = false;
    for (item, got) in card.items.iter().zip(score.items.iter_mut()) {
        let Check::Outcome { question } = &item.check else {
            continue;
        };
        judged = true;
        let request = ChatRequest::new(question_prompt(&transcript, question), 80);
        let reply = match crate::quote::ask(model, request).await {
            Ok(r) => r,
            Err(e) => {
                got.verdict = Verdict::Unsure;
                got.why = format!("{question:?}: the language model {} failed: {e}", model.name());
                continue;
            }
        };
        let answer = read_answer(&reply);
        let found = answer.quote.as_deref().and_then(|q| find_quote(call, q));
        let said = |yes: bool| if yes { "yes" } else { "no" };
        match (answer.yes, found) {
            (Some(yes), Some(ev)) => {
                got.verdict = if yes { Verdict::Pass } else { Verdict::Fail };
                got.why = format!("{question:?}: {} ({}), quoting the call", said(yes), model.name());
                got.evidence = vec![ev];
            }
            (Some(yes), None) => {
                got.verdict = Verdict::Unsure;
                got.why = match &answer.quote {
                    Some(q) => format!(
                        "{question:?}: the model said {} but its quote {q:?} is not in the transcript",
                        said(yes)
                    ),
                    None => format!("{question:?}: the model said {} without a quote", said(yes)),
                };
            }
            (None, _) => {
                got.verdict = Verdict::Unsure;
                got.why = format!(
                    "{question:?}: no yes or no in the model's reply {:?}",
                    clip(&reply, 120)
                );
            }
        }
    }
    if judged {
        score.tally(card.pass_score);
    }
}

/// At most `n` characters of `s`, on a character boundary.
pub(crate) fn clip(s: &str, n: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_quotes_are_read_from_the_reply() {
        let a = read_answer("ANSWER: Yes.\nQUOTE: \"I have blocked the card\"");
        assert_eq!(a.yes, Some(true));
        assert_eq!(a.quote.as_deref(), Some("\"I have blocked the card\""));
        let a = read_answer("No, the agent never did.\n");
        assert_eq!((a.yes, a.quote), (Some(false), None));
        let a = read_answer("The customer asked about a card.\nQUOTE: my card");
        assert_eq!(a.yes, None);
        // "Nothing" is not "no"; "yesterday" is not "yes".
        assert_eq!(read_answer("Nothing was resolved").yes, None);
        assert_eq!(read_answer("ANSWER: yesterday").yes, None);
    }

    #[test]
    fn a_long_reply_is_clipped_on_a_character() {
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip(" ab ", 5), "ab");
    }
}
