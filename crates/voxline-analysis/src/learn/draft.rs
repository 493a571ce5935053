//! Drafted questions: from each learned section, the questions its figures
//! answer ("Card payments abroad cost 2.75 percent of the amount." → "What
//! do card payments abroad cost?", holding 2.75), for an expert to review
//! and keep as the pack's question set (`eval-learned.toml`, run with
//! `voxline chat --domain PACK --eval`). Drafted by rules on the sentence's
//! own words, not by a model: a sentence whose shape the rules do not know
//! gets no question rather than a wrong one.

use voxline_agent::guard::numbers;

/// The file drafted into the pack's folder.
pub const QUESTION_SET: &str = "eval-learned.toml";

/// A drafted question.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The question.
    pub ask: String,
    /// The figure its answer must hold.
    pub holds: String,
    /// Where it comes from: "document › heading".
    pub source: String,
    /// The sentence that answers it.
    pub sentence: String,
}

/// How a sentence states its figure: the verb after the subject (its
/// number tells the question's: "costs" → "does", "cost" → "do"), and the
/// question that asks for it (`{}`: the subject).
const SHAPES: &[(&str, &str)] = &[
    (" costs ", "How much does {} cost?"),
    (" cost ", "How much do {} cost?"),
    (" pays ", "How much does {} pay?"),
    (" pay ", "How much do {} pay?"),
    (" takes ", "How long does {} take?"),
    (" take ", "How long do {} take?"),
    (" arrives ", "When does {} arrive?"),
    (" arrive ", "When do {} arrive?"),
    (" is ", "What is {}?"),
    (" are ", "What are {}?"),
];

/// Longest subject taken, in words: a longer one is a clause, not a name.
const MAX_SUBJECT_WORDS: usize = 8;

/// The questions `body` (a section under `heading` of `document`) answers.
pub fn draft(document: &str, heading: &str, body: &str) -> Vec<Draft> {
    let mut out = Vec::new();
    // The section's own heading ("Savings accounts › Fixed Saver" → "Fixed Saver").
    let topic = heading.rsplit('›').next().unwrap_or(heading).trim();
    for sentence in sentences(body) {
        if let Some((ask, holds)) = question(&sentence, topic) {
            if !out.iter().any(|d: &Draft| d.ask == ask) {
                out.push(Draft {
                    ask,
                    holds,
                    source: format!("{document} › {heading}"),
                    sentence,
                });
            }
        }
    }
    out
}

/// The question a sentence (of the section on `topic`) answers and the
/// figure it must hold. A subject that shares no word with the topic gets
/// the topic after it ("What is the smallest deposit for Fixed Saver?"):
/// the question alone would not say which product it asks about.
fn question(sentence: &str, topic: &str) -> Option<(String, String)> {
    let s = sentence.trim().trim_end_matches(['.', '!', ';']);
    for (verb, template) in SHAPES {
        let Some(at) = s.find(verb) else { continue };
        let (subject, rest) = (&s[..at], &s[at + verb.len()..]);
        // "is" / "are" state a figure only when it follows at once ("The
        // limit is 3,000 dollars"), not an adjective ("Branches are open
        // from 9 a.m.").
        if matches!(*verb, " is " | " are ") && !states_at_once(rest) {
            return None;
        }
        // The figure is what the verb states; a subject with a figure of its
        // own ("Orders over 500 dollars are free") is a condition, not a name.
        let figure = numbers(rest).into_iter().next()?;
        if !numbers(subject).is_empty() || subject.contains(',') {
            return None;
        }
        let words: Vec<&str> = subject.split_whitespace().collect();
        if words.is_empty() || words.len() > MAX_SUBJECT_WORDS || is_pronoun(words[0]) || has_verb(&words) {
            return None;
        }
        let mut ask = template.replace("{}", &lower_first(subject));
        let named = |w: &str| {
            let w = w.to_lowercase();
            words.iter().any(|s| {
                let s = s.to_lowercase();
                s.len() > 3 && (s.starts_with(&w) || w.starts_with(&s))
            })
        };
        if !topic.is_empty() && !topic.split_whitespace().any(named) {
            ask = format!("{} for {}?", ask.trim_end_matches('?'), lower_first(topic));
        }
        return Some((ask, figure));
    }
    None
}

/// A subject holding a verb ("Customers can pay…") is a clause, not a name.
fn has_verb(words: &[&str]) -> bool {
    const VERBS: &[&str] = &[
        "can", "could", "may", "might", "must", "shall", "should", "will", "would", "do", "does", "did", "has", "have",
        "is", "are", "was", "were",
    ];
    words.iter().any(|w| VERBS.contains(&w.to_lowercase().as_str()))
}

/// Whether `rest` opens with its figure ("3,000 dollars", "up to 100
/// dollars", "$25", "about 15 minutes").
fn states_at_once(rest: &str) -> bool {
    let rest = rest.trim_start();
    let rest = ["up to ", "about ", "around ", "only ", "just "]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .unwrap_or(rest);
    rest.trim_start_matches('$').starts_with(|c: char| c.is_ascii_digit())
}

/// A subject that names nothing by itself ("It costs…", "There is…").
fn is_pronoun(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "it" | "this" | "that" | "there" | "they" | "these" | "those" | "you" | "we"
    )
}

/// "The Harbor Saver account" → "the Harbor Saver account": the first
/// word loses the capital it has for starting the sentence (an article, or
/// a word followed by one in lower case: "Card payments"); a name keeps it
/// ("Harbor Bank ATMs").
fn lower_first(subject: &str) -> String {
    let words: Vec<&str> = subject.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return String::new();
    };
    let article = ["The", "A", "An", "Each", "Every", "Your", "Our", "All"].contains(first);
    let next_lower = rest
        .first()
        .and_then(|w| w.chars().next())
        .is_none_or(char::is_lowercase);
    let first = if article || next_lower {
        first.to_lowercase()
    } else {
        (*first).to_string()
    };
    std::iter::once(first.as_str())
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sentences of a section's text (a table row, "Header: cell; …", is one).
fn sentences(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in body.lines() {
        let mut current = String::new();
        let chars: Vec<char> = line.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            current.push(*c);
            // A stop followed by a space or the line's end ("3.5" is no
            // end); after "a.m." / "p.m." only when a capital follows.
            let next = chars[i + 1..].iter().find(|n| !n.is_whitespace());
            let ends = matches!(c, '.' | '!' | '?')
                && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
                && (!(current.ends_with("a.m.") || current.ends_with("p.m.")) || next.is_none_or(|n| n.is_uppercase()));
            if ends {
                out.push(current.trim().to_string());
                current.clear();
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_string());
        }
    }
    out
}

/// The question set of `drafts` as TOML, headed as a draft to review.
pub fn question_set(drafts: &[Draft]) -> String {
    let mut text = String::from(
        "# Questions drafted by `voxline learn` from the documents it took, one\n\
         # per stated figure, for an expert to review (edit, delete, add) before\n\
         # it is used as the pack's question set: `voxline chat --domain PACK\n\
         # --eval eval-learned.toml`. Learning again rewrites this file.\n",
    );
    for d in drafts {
        text.push_str(&format!(
            "\n# {}: \"{}\"\n[[case]]\nask = {}\nexpect = \"answer\"\ncontains = [{}]\n",
            d.source.replace('\n', " "),
            d.sentence.replace('\n', " "),
            toml::Value::String(d.ask.clone()),
            toml::Value::String(d.holds.clone()),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(body: &str) -> Vec<(String, String)> {
        draft("doc", "", body).into_iter().map(|d| (d.ask, d.holds)).collect()
    }

    #[test]
    fn a_figure_stated_of_a_named_subject_becomes_a_question() {
        assert_eq!(
            asks("Card payments abroad cost 2.75 percent of the amount. Cash withdrawals abroad cost 3 dollars each."),
            vec![
                ("How much do card payments abroad cost?".to_string(), "2.75".to_string()),
                ("How much do cash withdrawals abroad cost?".to_string(), "3".to_string()),
            ]
        );
        assert_eq!(
            asks("The Harbor Saver account pays 3.5 percent interest a year, paid monthly."),
            vec![(
                "How much does the Harbor Saver account pay?".to_string(),
                "3.5".to_string()
            )]
        );
        assert_eq!(
            asks("The daily card spending limit is 3,000 dollars."),
            vec![("What is the daily card spending limit?".to_string(), "3000".to_string())]
        );
        assert_eq!(
            asks("A replacement card arrives in 5 working days."),
            vec![("When does a replacement card arrive?".to_string(), "5".to_string())]
        );
    }

    #[test]
    fn sentences_the_rules_do_not_know_get_no_question() {
        // No figure, a pronoun for a subject, a condition with its own figure,
        // a clause for a subject.
        assert!(asks("Blocking is free.").is_empty());
        assert!(asks("It costs 4 dollars a month.").is_empty());
        assert!(asks("Orders over 500 dollars are free of 2 fees.").is_empty());
        assert!(asks("If you order by 3 pm and collect the next day, the commission is 1 percent.").is_empty());
        assert!(asks("Customers can pay in up to 500 coins a day for free.").is_empty());
    }

    #[test]
    fn times_and_decimals_do_not_cut_sentences_and_the_set_is_valid_toml() {
        let body = "Branches are open from 9 a.m. to 5 p.m. The rate is 4.2 percent a year.";
        assert_eq!(sentences(body).len(), 2, "{:?}", sentences(body));
        let drafts = draft("mortgages.md", "Mortgages › Fixed rate", body);
        let set: toml::Value = toml::from_str(&question_set(&drafts)).expect("valid TOML");
        let cases = set["case"].as_array().expect("cases");
        assert_eq!(cases.len(), 1, "{drafts:?}");
        assert_eq!(
            cases[0]["ask"].as_str(),
            Some("What is the rate?"),
            "the topic's word is in it"
        );
        let drafts = draft(
            "savings.md",
            "Savings › Fixed Saver",
            "The smallest deposit is 1,000 dollars.",
        );
        assert_eq!(drafts[0].ask, "What is the smallest deposit for Fixed Saver?");
        assert_eq!(cases[0]["contains"][0].as_str(), Some("4.2"));
    }
}
