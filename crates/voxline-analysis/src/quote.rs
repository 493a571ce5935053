//! What a language model reads of a call and what it may say back: the
//! transcript written out for a prompt (its middle cut when the call is
//! long), the model asked, and its quote found word for word in the transcript, so
//! nothing the model claims is taken on its word alone.

use crate::score::Evidence;
use crate::scorecard::Speaker;
use crate::transcript::CallTranscript;
use voxline_llm::{ChatModel, ChatRequest, LlmError};
use voxline_text::words::words;

/// The fewest words a quote must hold to count as evidence ("yes" is in
/// most calls).
pub const MIN_QUOTE_WORDS: usize = 3;

/// The transcript as a prompt reads it, one line per turn ("Agent: …",
/// "Customer: …"), at most `max_chars` bytes: a longer call keeps its first and
/// last lines, the middle marked as cut.
pub fn transcript_for_prompt(call: &CallTranscript, max_chars: usize) -> String {
    let lines: Vec<String> = call
        .lines
        .iter()
        .map(|l| {
            let who = match l.speaker {
                Speaker::Agent => "Agent",
                Speaker::Customer => "Customer",
            };
            format!("{who}: {}", l.text.trim())
        })
        .collect();
    let whole: usize = lines.iter().map(|l| l.len() + 1).sum();
    if whole <= max_chars {
        return lines.join("\n");
    }
    // The opening says why they called, the end how it ended: keep both.
    let (mut head, mut tail) = (Vec::new(), Vec::new());
    // Room for the cut's mark (its "…" are 3 bytes each).
    let (mut used, budget) = (0usize, max_chars.saturating_sub(40));
    let (mut i, mut j) = (0usize, lines.len());
    while i < j {
        let take_head = head.len() <= tail.len();
        let line = if take_head { &lines[i] } else { &lines[j - 1] };
        if used + line.len() + 1 > budget {
            break;
        }
        used += line.len() + 1;
        if take_head {
            head.push(line.clone());
            i += 1;
        } else {
            tail.push(line.clone());
            j -= 1;
        }
    }
    tail.reverse();
    if head.is_empty() {
        // One line longer than the whole budget: its start.
        let first = &lines[0];
        let end = (0..=budget.min(first.len()))
            .rev()
            .find(|&i| first.is_char_boundary(i))
            .unwrap_or(0);
        head.push(first[..end].to_string());
    }
    let mut out = head;
    out.push("[… part of the call cut …]".into());
    out.extend(tail);
    out.join("\n")
}

/// Where `quote` is said word for word (case and punctuation aside) in
/// the call: the first line holding it, as evidence quoting the line's own
/// words. `None` when no line holds it or it is shorter than
/// [`MIN_QUOTE_WORDS`].
pub fn find_quote(call: &CallTranscript, quote: &str) -> Option<Evidence> {
    let q = words(strip_speaker(
        quote.trim().trim_matches(['"', '\'', '“', '”', '«', '»']),
    ));
    if q.split_whitespace().count() < MIN_QUOTE_WORDS {
        return None;
    }
    call.lines.iter().enumerate().find_map(|(i, l)| {
        words(&l.text).contains(&q).then(|| Evidence {
            line: i,
            speaker: l.speaker,
            at_ms: l.start_ms,
            quote: l.text.clone(),
        })
    })
}

/// `model`'s whole reply to `request`.
pub async fn ask(model: &dyn ChatModel, request: ChatRequest) -> Result<String, LlmError> {
    let (text, _) = model.chat(request).await?.text().await?;
    Ok(text)
}

/// "Agent: thanks" → "thanks": a model copying a prompt's line copies its label too.
fn strip_speaker(quote: &str) -> &str {
    for label in ["Agent:", "Customer:", "agent:", "customer:"] {
        if let Some(rest) = quote.strip_prefix(label) {
            return rest.trim_start();
        }
    }
    quote
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(lines: &[(Speaker, &str)]) -> CallTranscript {
        crate::transcript::call_of(lines, 3000)
    }

    #[test]
    fn a_quote_is_found_only_word_for_word() {
        let c = call(&[
            (Speaker::Agent, "Thank you for calling Harbor Bank."),
            (Speaker::Customer, "I lost my card, it ends in 4821."),
            (Speaker::Agent, "I have blocked the card and ordered a new one."),
        ]);
        let ev = find_quote(&c, "\"Agent: I have BLOCKED the card\"").expect("found");
        assert_eq!((ev.line, ev.speaker, ev.at_ms), (2, Speaker::Agent, 6000));
        assert_eq!(ev.quote, "I have blocked the card and ordered a new one.");
        // A paraphrase, a word changed, or too short a quote is no evidence.
        assert!(find_quote(&c, "I blocked the card").is_none());
        assert!(find_quote(&c, "it ends in 4822").is_none());
        assert!(find_quote(&c, "the card").is_none());
        assert!(find_quote(&c, "").is_none());
    }

    #[test]
    fn a_long_call_keeps_its_start_and_end() {
        let many: Vec<(Speaker, String)> = (0..200)
            .map(|i| {
                (
                    if i % 2 == 0 { Speaker::Agent } else { Speaker::Customer },
                    format!("line number {i} of the call"),
                )
            })
            .collect();
        let refs: Vec<(Speaker, &str)> = many.iter().map(|(s, t)| (*s, t.as_str())).collect();
        let text = transcript_for_prompt(&call(&refs), 600);
        assert!(text.len() <= 600, "{}", text.len());
        assert!(
            text.starts_with("Agent: line number 0 of the call\nCustomer: line number 1"),
            "{text}"
        );
        assert!(text.ends_with("Customer: line number 199 of the call"), "{text}");
        assert!(text.contains("cut"), "{text}");
        let long_line = "word ".repeat(500);
        let one = transcript_for_prompt(&call(&[(Speaker::Agent, long_line.as_str())]), 600);
        assert!(one.starts_with("Agent: word word") && one.len() <= 600, "{}", one.len());
        let short = transcript_for_prompt(&call(&refs[..2]), 600);
        assert_eq!(
            short,
            "Agent: line number 0 of the call\nCustomer: line number 1 of the call"
        );
    }
}
