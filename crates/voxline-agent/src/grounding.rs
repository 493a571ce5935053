//! What one answer may state (decision 0040): the retrieved passages' words,
//! and as facts only the sentences that answer the question, ranked by how
//! much of it they hold ([`crate::relevance`]); and what is read as written
//! when the model's words fail the guard: the best sentence when it clearly
//! answers, else the pack's "I don't know" line.

use crate::answer::Fallback;
use crate::guard::{Ground, Guard};
use crate::knowledge::Hit;
use crate::pack::DomainPack;

/// The guard and the fallback of an answer to `utterance` from `hits`,
/// whose `sentences` are ranked best answer first, the first `similarity`
/// close in meaning (see [`crate::router::Intent::Question`]).
pub fn grounding(
    pack: &DomainPack,
    hits: &[Hit],
    sentences: &[(usize, f32)],
    similarity: Option<f32>,
    utterance: &str,
) -> (Guard, Option<Fallback>) {
    let knowledge = &pack.knowledge;
    let rules = &pack.rules;
    let all = &knowledge.sentences().all;
    let best = sentences.first().map_or(0.0, |s| s.1);
    let answering: Vec<Vec<&str>> = hits
        .iter()
        .map(|h| {
            sentences
                .iter()
                .filter(|(i, c)| *c > 0.0 && *c >= best * rules.knowledge.answering_share && all[*i].passage == h.index)
                .map(|(i, _)| all[*i].text.as_str())
                .collect()
        })
        .collect();
    let grounds: Vec<Ground> = hits
        .iter()
        .zip(&answering)
        .map(|(h, answering)| Ground {
            title: &h.passage.title,
            text: &h.passage.text,
            answering,
        })
        .collect();
    // The caller's words that name something the knowledge holds.
    let asked = knowledge.terms(utterance);
    let topic: Vec<String> = asked
        .iter()
        .filter(|t| knowledge.knows(t) && !t.chars().any(|c| c.is_ascii_digit()))
        .cloned()
        .collect();
    // The agent may always name its company.
    let shared = [utterance, pack.persona.company.as_str()];
    let guard = Guard::grounded(&rules.forbidden.phrases, &grounds, &shared, &topic);
    // Read as written only what clearly answers: by its words, or by its
    // meaning when the knowledge is embedded.
    let k = &rules.knowledge;
    let clear = |relevance: f32| relevance >= k.read_coverage || similarity.is_some_and(|s| s >= k.read_similarity);
    let fallback = match sentences.first() {
        Some((i, r)) if clear(*r) => Fallback::Sentence(all[*i].text.clone()),
        _ => Fallback::DontKnow(rules.domain.unknown.clone()),
    };
    (guard, Some(fallback))
}
