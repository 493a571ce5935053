//! The words the model sees. The system prompt is the same for every turn
//! and call of a pack (so its KV stays cached); each turn's facts travel in
//! its user message, right before the caller's question.

use crate::knowledge::Hit;
use crate::pack::DomainPack;

/// The pack's fixed system prompt.
pub fn system_prompt(pack: &DomainPack) -> String {
    let p = &pack.persona;
    format!(
        "You are {name}, the phone assistant of {company}. {style} \
         You help only with: {topics}. \
         Answer the caller in one or two short sentences, using only the facts given with the question. \
         If the facts do not answer it, say that you do not know.",
        name = p.name,
        company = p.company,
        style = p.style.trim(),
        topics = pack.rules.domain.topics.join(", "),
    )
}

/// One turn's user message: the facts found, then the caller's words.
pub fn user_message(hits: &[Hit], utterance: &str) -> String {
    let mut s = String::from("Facts:\n");
    for h in hits {
        s.push_str("- ");
        s.push_str(&h.passage.text);
        s.push('\n');
    }
    s.push_str("\nQuestion: ");
    s.push_str(utterance.trim());
    s
}

/// The user message that has the model word a flow step: its goal and
/// the line that says it, to be said in the agent's own words.
pub fn step_message(goal: &str, say: &str) -> String {
    format!(
        "Your next task on this call: {goal}\nSay it to the caller in one short sentence, like: {say}",
        goal = goal.trim(),
        say = say.trim()
    )
}
