//! The arguments a caller gives for a tool in their own words: digits
//! spoken or written, a value named from a list.

use crate::pack::{ArgType, ToolSpec};
use std::collections::BTreeMap;
use voxline_text::words::{has_phrase, words};

/// The `length` digits the caller gave in `text`, spoken or written: a run
/// of consecutive numbers of exactly that many digits ("the last four
/// digits are nine eight seven six" → "9876"), else all its digits if they
/// are exactly that many.
pub fn digits_for(text: &str, length: usize) -> Option<String> {
    let normal = voxline_text::heard::normalize_english(text);
    let mut runs: Vec<String> = vec![String::new()];
    for w in normal.split_whitespace() {
        if w.chars().all(|c| c.is_ascii_digit()) {
            if let Some(r) = runs.last_mut() {
                r.push_str(w);
            }
        } else if runs.last().is_some_and(|r| !r.is_empty()) {
            runs.push(String::new());
        }
    }
    if let Some(r) = runs.iter().rev().find(|r| r.len() == length) {
        return Some(r.clone());
    }
    let all: String = runs.concat();
    (all.len() == length).then_some(all)
}

/// The value of `values` the caller's words name (all its words present).
pub(crate) fn pick_value(values: &[String], utterance: &str) -> Option<String> {
    let w = words(utterance);
    values
        .iter()
        .filter(|v| has_phrase(&w, &[v.as_str()]))
        .max_by_key(|v| v.len())
        .cloned()
}

/// Arguments the caller already gave in the request.
pub(crate) fn extract_args(tool: &ToolSpec, utterance: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, a) in &tool.args {
        let v = match a.kind {
            ArgType::Digits => a.length.and_then(|n| digits_for(utterance, n)),
            // A one-value enum is fixed: nothing to ask.
            ArgType::Enum if a.values.len() == 1 => a.values.first().cloned(),
            ArgType::Enum => pick_value(&a.values, utterance),
        };
        if let Some(v) = v {
            out.insert(name.clone(), v);
        }
    }
    out
}
