//! A customer asking for a person, and an agent offering one, in any
//! words: a way of reaching someone ("speak to", "put me through to", "get
//! me"; "transfer you to", "connecting you to") followed closely by someone
//! to reach (a manager, a supervisor, a member of staff, one of my
//! colleagues), not denied ("I don't need to speak to anyone", "I can't
//! transfer you"). The scorecard's own `asks` and `offers` lines are matched
//! by meaning besides; this catches the wordings they are too far from.

use voxline_text::words::{phrase_starts, words};

/// Ways of asking to reach someone, and how many words may come between
/// one and the person asked for.
const ASKING: &[(&str, usize)] = &[
    ("speak to", 5),
    ("speak with", 5),
    ("talk to", 5),
    ("talk with", 5),
    ("put me through to", 5),
    ("put me on to", 5),
    ("put me onto", 5),
    ("transfer me to", 5),
    ("connect me to", 5),
    ("connect me with", 5),
    ("pass me to", 5),
    ("get me", 3),
    ("want a", 2),
    ("need a", 2),
];

/// Ways of offering to reach someone, and how many words may come between
/// one and the person offered.
const OFFERING: &[(&str, usize)] = &[
    ("transfer you", 8),
    ("transferring you", 8),
    ("put you through", 8),
    ("putting you through", 8),
    ("put you on to", 8),
    ("connect you", 8),
    ("connecting you", 8),
    ("pass you", 8),
    ("passing you", 8),
    ("hand you over", 8),
    ("speak to", 5),
    ("get", 3),
];

/// People a customer asks to reach (a plural "s" aside).
const PEOPLE: &[&str] = &[
    "someone",
    "somebody",
    "person",
    "human",
    "manager",
    "supervisor",
    "colleague",
    "staff",
    "adviser",
    "advisor",
    "agent",
    "representative",
    "senior",
    "boss",
    "operator",
    "specialist",
    "leader",
    "people",
    "team",
    "whoever",
    "whoever's",
    "anyone",
    "anybody",
];

/// Words that deny the request or the offer when they come just before it.
const DENIALS: &[&str] = &[
    "don't", "not", "never", "no", "didn't", "doesn't", "won't", "can't", "cannot", "unable",
];

/// Whether some `ways` in `sentence` are followed closely by a person, not denied.
fn reaches(sentence: &str, ways: &[(&str, usize)]) -> bool {
    let w = words(sentence);
    let toks: Vec<&str> = w.split_whitespace().collect();
    let person = |t: &&str| PEOPLE.contains(t) || t.strip_suffix('s').is_some_and(|one| PEOPLE.contains(&one));
    ways.iter().any(|(way, within)| {
        phrase_starts(&toks, way).any(|i| {
            let end = i + way.split_whitespace().count();
            let after = &toks[end..(end + within).min(toks.len())];
            let denied = toks[i.saturating_sub(3)..i].iter().any(|t| DENIALS.contains(t));
            !denied && after.iter().any(person)
        })
    })
}

/// Whether a customer's `sentence` asks to reach a person.
pub fn asks_for_person(sentence: &str) -> bool {
    reaches(sentence, ASKING)
}

/// Whether an agent's `sentence` offers or makes a transfer to a person.
pub fn offers_person(sentence: &str) -> bool {
    reaches(sentence, OFFERING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_are_heard_in_other_words() {
        for yes in [
            "I'd like to talk to someone more senior about this.",
            "Put me on to your supervisor, please.",
            "Could I speak with an actual member of staff?",
            "I want a human being, not a machine.",
            "Just get me a real person.",
            "Can you transfer me to a manager?",
            "Can I talk to whoever's in charge, please?",
        ] {
            assert!(asks_for_person(yes), "{yes}");
        }
        for no in [
            "I spoke to someone yesterday about it.",
            "I don't need to speak to anyone else.",
            "I want a new card.",
            "Can you get me my balance?",
            "The manager at the branch was helpful.",
        ] {
            assert!(!asks_for_person(no), "{no}");
        }
    }

    #[test]
    fn offers_of_a_person_are_heard_in_other_words() {
        for yes in [
            "Of course, I'll transfer you to my supervisor now.",
            "Sure, I'm connecting you to one of my colleagues now.",
            "Let me put you through to a specialist.",
            "Would you like to speak to a manager?",
            "I'll get a colleague for you.",
            "I'll pass you over to one of my mortgage colleagues now.",
        ] {
            assert!(offers_person(yes), "{yes}");
        }
        for no in [
            "I can't transfer you to anyone at this time of night.",
            "I'll transfer the money to your savings account.",
            "You can get a new card in the app.",
            "Our team works hard on the app.",
        ] {
            assert!(!offers_person(no), "{no}");
        }
    }
}
