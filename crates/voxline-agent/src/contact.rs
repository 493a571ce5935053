//! A contact's variables in the pack's lines: `{first_name}`, `{due_date}`
//! or any column of a campaign's contact list (and a call's own facts, such
//! as `{trunk}`), filled in before a line is spoken or given to the model.

use crate::tools::fill_template;
use std::collections::BTreeMap;

/// `line` with each `{name}` replaced by its variable; a placeholder the
/// call has no value for is left out (with the space before it), so the
/// caller never hears a brace or a variable's name.
pub fn fill_line(line: &str, variables: &BTreeMap<String, String>) -> String {
    if !line.contains('{') {
        return line.to_string();
    }
    let filled = fill_template(line, &serde_json::Value::Null, variables);
    let mut out = String::with_capacity(filled.len());
    let mut rest = filled.as_str();
    let mut capitalize = false;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                out.push_str(rest[..open].trim_end_matches(' '));
                rest = &after[close + 1..];
                // "Hello {first_name}, this is…" → "Hello, this is…"; at the
                // start of the line, the space after it goes instead.
                if out.is_empty() {
                    rest = rest.trim_start_matches([',', ';', ':']).trim_start();
                    capitalize = true;
                } else if !rest.starts_with(|c: char| c.is_ascii_punctuation() || c == ' ') {
                    out.push(' ');
                }
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if capitalize {
        if let Some(first) = out.chars().next() {
            out = first.to_uppercase().chain(out.chars().skip(1)).collect();
        }
    }
    out
}

/// The placeholders of `line` (`{name}`), in order.
pub fn placeholders(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("first_name".to_string(), "Ana".to_string()),
            ("due_date".to_string(), "the 3rd of May".to_string()),
        ])
    }

    #[test]
    fn known_variables_are_filled() {
        assert_eq!(
            fill_line("Hello {first_name}, your card is due on {due_date}.", &vars()),
            "Hello Ana, your card is due on the 3rd of May."
        );
    }

    #[test]
    fn a_missing_variable_is_left_out_without_a_trace() {
        let none = BTreeMap::new();
        assert_eq!(
            fill_line("Hello {first_name}, this is Ava.", &none),
            "Hello, this is Ava."
        );
        assert_eq!(fill_line("{first_name}, this is Ava.", &none), "This is Ava.");
        assert_eq!(fill_line("Hi {first_name} how are you?", &none), "Hi how are you?");
        assert_eq!(fill_line("Is that {first_name}?", &none), "Is that?");
        // Not a placeholder: left as written.
        assert_eq!(fill_line("a {broken brace", &none), "a {broken brace");
        assert_eq!(fill_line("{} and {a b}", &none), "{} and {a b}");
    }

    #[test]
    fn placeholders_are_listed_in_order() {
        assert_eq!(
            placeholders("Hello {first_name}, due {due_date}, {not a name}"),
            vec!["first_name", "due_date"]
        );
    }
}
