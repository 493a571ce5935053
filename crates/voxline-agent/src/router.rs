//! What a caller's turn asks for, decided before any text is generated:
//! goodbye, a human, a tool, something outside the domain, small talk, or a
//! question for the knowledge. Phrases match on whole words; tools match
//! when the caller's words cover one of the tool's example phrasings
//! (stemmed, stop words out), so the 135M model never has to pick a tool.

use crate::knowledge::{english_analyzer, terms, Hit};
use crate::pack::DomainPack;
use crate::relevance::{ByMeaning, Ranked};
use tantivy::tokenizer::TextAnalyzer;
use voxline_text::words::{has_phrase, words};

/// Lowest match (F1 of the caller's words against an example's) that picks a tool.
pub const TOOL_MATCH: f32 = 0.6;

/// Words that end the call.
const GOODBYES: &[&str] = &[
    "goodbye",
    "good bye",
    "bye",
    "bye bye",
    "that's all",
    "that is all",
    "that's everything",
    "nothing else",
    "no thanks",
    "no thank you",
    "hang up",
];

/// Words of a caller who does not want to be called again (whole words,
/// any of them): the built-in opt-out of every pack.
pub const OPT_OUT: &[&str] = &[
    "stop calling",
    "stop ringing",
    "quit calling",
    "don't call me",
    "do not call me",
    "dont call me",
    "never call me",
    "don't ever call",
    "do not call this number",
    "don't call this number",
    "take me off your",
    "take me off the",
    "take my number off",
    "remove me from",
    "remove my number",
    "delete my number",
    "put me on your do not call",
    "do not call list",
    "don't call list",
    "opt me out",
];

/// Whether `utterance` asks not to be called again (the built-in phrases or
/// the pack's `extra`).
pub fn opts_out(utterance: &str, extra: &[String]) -> bool {
    let w = words(utterance);
    has_phrase(&w, OPT_OUT) || has_phrase(&w, extra)
}

/// Greetings and thanks that need no knowledge.
const GREETINGS: &[&str] = &["hello", "hi", "hey", "good morning", "good afternoon", "good evening"];
const THANKS: &[&str] = &[
    "thanks",
    "thank you",
    "great",
    "perfect",
    "ok",
    "okay",
    "cheers",
    "got it",
];

/// What a turn asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// The caller is done.
    Goodbye,
    /// The caller wants a human (or said an escalation word).
    Escalate,
    /// The caller asks not to be called again.
    OptOut,
    /// A tool, by index in the pack, with how well it matched.
    Tool {
        /// Index into `DomainPack::tools`.
        tool: usize,
        /// Match strength (0–1).
        score: f32,
    },
    /// Outside the domain.
    OffDomain,
    /// A greeting.
    Greeting,
    /// Thanks or an acknowledgement.
    Thanks,
    /// A question with relevant knowledge.
    Question {
        /// The passages found, best first.
        hits: Vec<Hit>,
        /// Their sentences, the best answer first, with their relevance (the
        /// share of the question each holds, blended with its meaning when
        /// known).
        sentences: Vec<Ranked>,
        /// How close in meaning the best sentence is to the question
        /// (cosine), when the knowledge is embedded.
        similarity: Option<f32>,
    },
    /// A question an expert's curated answer answers.
    Curated {
        /// Index into the pack's curated answers.
        answer: usize,
        /// How close the question is to its closest wording.
        score: f32,
    },
    /// A training bot's customer answered the trainee.
    Customer,
    /// A question the knowledge does not answer.
    Unknown,
    /// Words the agent is not sure it understood (they match the knowledge
    /// only weakly): the caller is asked to say it again.
    Unclear,
    /// An answer that moved the flow on, by this exit.
    Step {
        /// The exit taken.
        exit: crate::flow::ExitOn,
    },
}

impl Intent {
    /// A short name for records and logs (`question`, `tool`, `escalate`...).
    pub fn name(&self) -> &'static str {
        match self {
            Intent::Goodbye => "goodbye",
            Intent::Escalate => "escalate",
            Intent::OptOut => "opt_out",
            Intent::Tool { .. } => "tool",
            Intent::OffDomain => "off_domain",
            Intent::Greeting => "greeting",
            Intent::Thanks => "thanks",
            Intent::Question { .. } => "question",
            Intent::Curated { .. } => "curated",
            Intent::Customer => "customer",
            Intent::Unknown => "unknown",
            Intent::Unclear => "unclear",
            Intent::Step { .. } => "flow_step",
        }
    }
}

/// How much a question about a request's topic leans: a tool's question is
/// answered unless this much closer to the tool's examples than to the
/// knowledge; an escalation's only when this much closer to the knowledge
/// (decision 0041).
const QUESTION_LEAN: f32 = 0.1;

/// Words that open a question ("what …", "is there …", "by what day …").
const QUESTION_WORDS: &[&str] = &["what", "how", "when", "where", "which", "who", "whom", "whose", "why"];
const AUXILIARIES: &[&str] = &[
    "is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "may", "have",
    "has",
];

/// Whether `utterance` is put as a question: it opens with an auxiliary
/// ("Is there …", "Can I …") or has a question word among its first three
/// words ("By what day …", "Up to what amount …").
pub fn is_question(utterance: &str) -> bool {
    let first: Vec<String> = utterance
        .split_whitespace()
        .take(3)
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .collect();
    first.first().is_some_and(|w| AUXILIARIES.contains(&w.as_str()))
        || first.iter().any(|w| QUESTION_WORDS.contains(&w.as_str()))
}

/// Routes a pack's turns.
pub struct Router {
    analyzer: TextAnalyzer,
    /// Per tool, per example: its terms.
    tool_terms: Vec<Vec<Vec<String>>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("tools", &self.tool_terms.len()).finish()
    }
}

impl Router {
    /// A router for `pack`'s tools.
    pub fn new(pack: &DomainPack) -> Router {
        let mut analyzer = english_analyzer();
        let tool_terms = pack
            .tools
            .iter()
            .map(|t| t.examples.iter().map(|e| terms(&mut analyzer, e)).collect())
            .collect();
        Router { analyzer, tool_terms }
    }

    /// The best tool for `utterance`: (index, F1 of word overlap) above [`TOOL_MATCH`].
    pub fn match_tool(&self, utterance: &str) -> Option<(usize, f32)> {
        let mut a = self.analyzer.clone();
        // Numbers are arguments, not the request: "my card ending nine eight
        // seven six was stolen" asks what "my card was stolen" asks.
        let normal = voxline_text::heard::normalize_english(utterance);
        let said: Vec<String> = terms(&mut a, &normal)
            .into_iter()
            .filter(|t| !t.chars().any(|c| c.is_ascii_digit()))
            .collect();
        if said.is_empty() {
            return None;
        }
        let mut best: Option<(usize, f32)> = None;
        for (i, examples) in self.tool_terms.iter().enumerate() {
            for ex in examples.iter().filter(|e| !e.is_empty()) {
                let common = ex.iter().filter(|t| said.contains(t)).count() as f32;
                if common == 0.0 {
                    continue;
                }
                let recall = common / ex.len() as f32;
                let precision = common / said.len() as f32;
                let f1 = 2.0 * recall * precision / (recall + precision);
                if f1 >= TOOL_MATCH && best.is_none_or(|(_, s)| f1 > s) {
                    best = Some((i, f1));
                }
            }
        }
        best.filter(|&(_, s)| s >= TOOL_MATCH)
    }

    /// Decides what `utterance` asks for; `meaning` is its embedding when
    /// the pack's knowledge is embedded too ([`crate::Knowledge::understand`]).
    pub fn route(&self, pack: &DomainPack, utterance: &str, meaning: Option<&[f32]>) -> Intent {
        let w = words(utterance);
        let k = &pack.rules.knowledge;
        let similarities = meaning.and_then(|q| pack.knowledge.similarities(q));
        let sims = similarities.as_deref();
        // A question about a request's topic is answered, not taken as the
        // request: put as a question, its meaning closer to a knowledge
        // sentence than to the request's examples, give or take `lean`
        // (a tool's question leans to the answer; an escalation's to the
        // colleague, the safe side).
        let closest = sims.map_or(f32::MIN, |s| s.iter().copied().fold(f32::MIN, f32::max));
        let asks_about = |request: &dyn Fn(&crate::meaning::Requests, &[f32]) -> f32, lean: f32| -> bool {
            let (Some(q), Some(requests)) = (meaning, pack.requests.as_ref()) else {
                return false;
            };
            let near = request(requests, q);
            let answer = is_question(utterance) && closest >= k.min_similarity && closest + lean > near;
            if answer {
                tracing::debug!(closest, request = near, "a question about a request's topic");
            }
            answer
        };
        if has_phrase(&w, &pack.rules.escalation.phrases) && !asks_about(&|r, q| r.escalation(q), -QUESTION_LEAN) {
            return Intent::Escalate;
        }
        if has_phrase(&w, GOODBYES) {
            return Intent::Goodbye;
        }
        if let Some((tool, score)) = self.match_tool(utterance) {
            if !asks_about(&|r, q| r.tool(tool, q), QUESTION_LEAN) {
                return Intent::Tool { tool, score };
            }
        }
        // An expert's correction comes before the boundary's phrases and the
        // knowledge: it may answer what they got wrong.
        if let Some(m) = pack.curated.find(&pack.knowledge, utterance, meaning, k.curated_match) {
            return Intent::Curated {
                answer: m.answer,
                score: m.score,
            };
        }
        if has_phrase(&w, &pack.rules.domain.off_domain) {
            return Intent::OffDomain;
        }
        // Something the domain does not offer, or a name the knowledge never
        // mentions ("a branch in Paris"): the honest answer is "I don't know".
        if has_phrase(&w, &pack.rules.domain.not_offered) || self.unknown_name(pack, utterance) {
            return Intent::Unknown;
        }
        let hits = pack
            .knowledge
            .find(utterance, sims, k.passages, k.min_score, k.min_similarity);
        if !hits.is_empty() {
            let asked = pack.knowledge.terms(utterance);
            let passages: Vec<usize> = hits.iter().map(|h| h.index).collect();
            let knowledge = pack.knowledge.sentences();
            let by_meaning = sims.map(|similarities| ByMeaning {
                similarities,
                weight: k.meaning_weight,
            });
            let sentences = knowledge.ranked(&asked, &passages, by_meaning);
            // Understood when the words of one found sentence cover enough
            // of the question, or its meaning is close enough.
            let (coverage, nearest) = sentences.iter().fold((0.0f32, f32::MIN), |(c, m), r| {
                let sim = sims.and_then(|s| s.get(r.index)).copied().unwrap_or(f32::MIN);
                (c.max(r.coverage), m.max(sim))
            });
            let relevance = sentences.first().map_or(0.0, |s| s.relevance);
            tracing::debug!(coverage, nearest, relevance, "knowledge sentence for the question");
            for r in sentences.iter().take(3) {
                let text = knowledge.all.get(r.index).map_or("", |s| s.text.as_str());
                tracing::trace!(relevance = r.relevance, coverage = r.coverage, closeness = ?r.closeness, text, "ranked sentence");
            }
            if coverage >= k.min_coverage || nearest >= k.min_similarity {
                let similarity = sims.and_then(|s| Some(*s.get(sentences.first()?.index)?));
                return Intent::Question {
                    hits,
                    sentences,
                    similarity,
                };
            }
            return self.unknown_or_unclear(pack, &asked);
        }
        let content = pack.knowledge.terms(utterance);
        if content.len() <= 2 && has_phrase(&w, GREETINGS) {
            return Intent::Greeting;
        }
        if content.len() <= 2 && has_phrase(&w, THANKS) {
            return Intent::Thanks;
        }
        self.unknown_or_unclear(pack, &content)
    }

    /// Words no knowledge answers: most of them words the knowledge never
    /// uses (misheard, or not about this business at all) ask for the
    /// question again; otherwise the knowledge does not hold the answer.
    fn unknown_or_unclear(&self, pack: &DomainPack, asked: &[String]) -> Intent {
        let strange = asked.iter().filter(|t| !pack.knowledge.knows(t)).count();
        if strange * 2 > asked.len() {
            Intent::Unclear
        } else {
            Intent::Unknown
        }
    }

    /// A capitalised word inside the sentence (a name: a place, a product)
    /// that the knowledge never mentions.
    fn unknown_name(&self, pack: &DomainPack, utterance: &str) -> bool {
        let mut a = self.analyzer.clone();
        utterance
            .split(|c: char| c.is_whitespace())
            .enumerate()
            .filter(|(i, w)| {
                *i > 0 && w.chars().next().is_some_and(char::is_uppercase) && *w != "I" && !w.starts_with("I'")
            })
            .flat_map(|(_, w)| terms(&mut a, w))
            .any(|t| !pack.knowledge.knows(&t) && !words(&pack.persona.company).contains(&format!(" {t} ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_phrases_and_their_near_misses() {
        for said in [
            "Stop calling me.",
            "Please take me off your list",
            "Don't call me again",
            "Remove me from your calling list.",
            "Put me on your do not call list",
        ] {
            assert!(opts_out(said, &[]), "{said}");
        }
        for said in [
            "Can you stop my card?",
            "Please call me back later",
            "Take me off hold",
            "I don't know",
        ] {
            assert!(!opts_out(said, &[]), "{said}");
        }
        assert!(opts_out("leave me alone", &["leave me alone".to_string()]));
    }

    #[test]
    fn questions_are_told_from_requests_by_how_they_open() {
        assert!(is_question("Is there a charge for blocking my card?"));
        assert!(is_question("By what day of the month should I send my reading"));
        assert!(is_question("Up to what amount can I tap?"));
        assert!(is_question("How long do you take to reply to a complaint?"));
        assert!(!is_question("My power is off, can you report it?"));
        assert!(!is_question("I want to make a complaint about my bill."));
        assert!(!is_question("Block my card please"));
    }

    #[test]
    fn phrases_match_whole_words_only() {
        let w = words("I'd like to speak to a Representative, please!");
        assert!(has_phrase(&w, &["representative"]));
        assert!(!has_phrase(&w, &["present"]));
        assert!(has_phrase(&words("OK, bye."), GOODBYES));
        assert!(!has_phrase(&words("Maybe later"), GOODBYES));
    }
}
