//! What one answer may state (decision 0040): the retrieved passages' words,
//! and as facts only the sentences that answer the question, ranked by how
//! much of it they hold ([`crate::relevance`]); and what is read as written
//! when the model's words fail the guard: the best sentence when it clearly
//! answers, else the pack's "I don't know" line.

use crate::answer::Fallback;
use crate::guard::{Ground, Guard};
use crate::knowledge::Hit;
use crate::pack::{DomainPack, KnowledgeRules};
use crate::relevance::{Ranked, Sentences};

/// The guard and the fallback of an answer to `utterance` from `hits`,
/// whose `sentences` are ranked best answer first, the first `similarity`
/// close in meaning (see [`crate::router::Intent::Question`]).
pub fn grounding(
    pack: &DomainPack,
    hits: &[Hit],
    sentences: &[Ranked],
    similarity: Option<f32>,
    utterance: &str,
) -> (Guard, Option<Fallback>) {
    let knowledge = &pack.knowledge;
    let rules = &pack.rules;
    let known = knowledge.sentences();
    let all = &known.all;
    let k = &rules.knowledge;
    let first = sentences.first().map(|s| s.index);
    // Clear by its words alone, by words and meaning together, or by its
    // meaning alone when it is the closest.
    let clear = |r: &Ranked| {
        r.coverage.max(r.relevance) >= k.read_coverage
            || (Some(r.index) == first && similarity.is_some_and(|s| s >= k.read_similarity))
    };
    // A figure is stated only from a sentence that answers as well as the
    // best one, and only when the best one clearly answers, or its words
    // cover enough of the question to be understood: a question whose
    // closest sentence is a stretch of meaning alone ("pay in another
    // currency" → "An international transfer costs 15 dollars.") gets no
    // figure of it.
    let best = sentences.first().filter(|b| clear(b) || b.coverage >= k.min_coverage);
    let answering: Vec<Vec<&str>> = hits
        .iter()
        .map(|h| {
            sentences
                .iter()
                .filter(|r| all[r.index].passage == h.index && answers(r, best, k))
                .map(|r| all[r.index].text.as_str())
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
    // meaning when the knowledge is embedded; and of what the caller named
    // ("the airport branch"), not a sentence of another passage ("Branches
    // are closed on Sundays").
    // (Only when that sentence is clear itself: "new" in "How long does a
    // new card take to arrive?" names the "New PIN" section too, whose PIN
    // sentence must not displace the replacement card's.)
    let subjects = known.subjects(&asked);
    let floor = sentences.first().map_or(0.0, |b| b.relevance * k.answering_share);
    let read = sentences
        .iter()
        .take_while(|r| r.relevance >= floor)
        .find(|r| known.passage_holds(all[r.index].passage, &subjects))
        .filter(|r| clear(r))
        .or(sentences.first());
    let fallback = match read {
        Some(r) if clear(r) => Fallback::Sentence(read_with_runner_up(known, sentences, r)),
        _ => Fallback::DontKnow(rules.domain.unknown.clone()),
    };
    (guard, Some(fallback))
}

/// Whether sentence `r` answers the question too, next to the best one:
/// its relevance is at least the answering share of the best's, and so are
/// its closeness in meaning and, when the best one's words cover the
/// question enough to say anything, its words' coverage, each on its own:
/// a sentence close on one side only (the Riverside branch's address, asked
/// about its parking: the right branch's words, not the question's meaning)
/// states no facts.
fn answers(r: &Ranked, best: Option<&Ranked>, k: &KnowledgeRules) -> bool {
    let Some(best) = best else { return false };
    let part = |mine: f32, theirs: f32| mine >= theirs * k.answering_share;
    r.relevance > 0.0
        && part(r.relevance, best.relevance)
        && (best.coverage < k.min_coverage || part(r.coverage, best.coverage))
        && match (r.closeness, best.closeness) {
            (Some(mine), Some(theirs)) => part(mine, theirs),
            _ => true,
        }
}

/// A second sentence read with the best one when it answers nearly as well
/// (this share of its relevance) and is of the same passage.
const RUNNER_UP_SHARE: f32 = 0.85;

/// Sentence `best` as read to the caller, with the runner-up of its
/// passage when that one answers nearly as well, in the knowledge's order:
/// asked when a late fee is charged, "If a bill is not paid, we send a
/// reminder after 14 days. A late payment fee of 10 dollars is added after
/// 28 days." rather than the reminder alone.
fn read_with_runner_up(known: &Sentences, ranked: &[Ranked], best: &Ranked) -> String {
    let i = best.index;
    let passage = known.all.get(i).map(|s| s.passage);
    let runner_up = ranked
        .iter()
        .find(|r| r.index != i && known.all.get(r.index).map(|s| s.passage) == passage)
        .filter(|r| r.relevance >= best.relevance * RUNNER_UP_SHARE)
        .map(|r| r.index);
    match runner_up {
        // A sentence read with the ones it goes on about already holds them.
        Some(j) if j < i && !known.as_read(i).contains(&known.all[j].text) => {
            format!("{} {}", known.as_read(j), known.as_read(i))
        }
        Some(j) if j > i && !known.as_read(j).contains(&known.all[i].text) => {
            format!("{} {}", known.as_read(i), known.as_read(j))
        }
        Some(j) if j > i => known.as_read(j),
        _ => known.as_read(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> Vec<String> {
        t.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_runner_up_of_the_same_passage_is_read_too_when_nearly_as_good() {
        let known = Sentences::new(
            [
                (
                    "Late payment",
                    "If a bill is not paid, we send a reminder after 14 days. A late payment fee of 10 dollars is added after 28 days.",
                ),
                ("Direct debit", "Direct debit customers get a 5 percent discount."),
            ]
            .into_iter(),
            words,
        );
        let r = |index: usize, relevance: f32| Ranked {
            index,
            relevance,
            coverage: relevance,
            closeness: None,
        };
        let both = read_with_runner_up(&known, &[r(0, 0.61), r(1, 0.57), r(2, 0.19)], &r(0, 0.61));
        assert_eq!(
            both,
            "If a bill is not paid, we send a reminder after 14 days. A late payment fee of 10 dollars is added after 28 days."
        );
        // Read in the knowledge's order whichever ranks first.
        assert_eq!(
            read_with_runner_up(&known, &[r(1, 0.61), r(0, 0.57)], &r(1, 0.61)),
            both
        );
        // Clearly worse, or of another passage: the best alone.
        assert_eq!(
            read_with_runner_up(&known, &[r(0, 0.61), r(1, 0.30)], &r(0, 0.61)),
            "If a bill is not paid, we send a reminder after 14 days."
        );
        assert_eq!(
            read_with_runner_up(&known, &[r(2, 0.61), r(0, 0.60)], &r(2, 0.61)),
            "Direct debit customers get a 5 percent discount."
        );
    }

    #[test]
    fn a_sentence_close_on_one_side_only_does_not_answer() {
        let best = Ranked {
            index: 1,
            relevance: 0.8,
            coverage: 1.0,
            closeness: Some(0.7),
        };
        let same_words = Ranked {
            index: 0,
            relevance: 0.5,
            coverage: 0.45,
            closeness: Some(0.52),
        };
        let both = Ranked {
            index: 2,
            relevance: 0.6,
            coverage: 0.7,
            closeness: Some(0.5),
        };
        let k = KnowledgeRules::default();
        assert!(answers(&best, Some(&best), &k));
        assert!(!answers(&same_words, Some(&best), &k));
        assert!(answers(&both, Some(&best), &k));
        // By words alone (no embedding model): coverage decides.
        let words = |index, coverage| Ranked {
            index,
            relevance: coverage,
            coverage,
            closeness: None,
        };
        assert!(answers(&words(0, 0.7), Some(&words(1, 1.0)), &k));
        assert!(!answers(&words(0, 0.5), Some(&words(1, 1.0)), &k));
        // Words that cover little of the question say nothing: meaning decides.
        let faint = |index, coverage, closeness| Ranked {
            index,
            relevance: 0.7 * closeness + 0.3 * coverage,
            coverage,
            closeness: Some(closeness),
        };
        assert!(answers(&faint(0, 0.05, 0.44), Some(&faint(1, 0.1, 0.6)), &k));
    }
}
