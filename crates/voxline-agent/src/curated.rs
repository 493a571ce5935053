//! Curated answers (decision 0081): an expert's corrections of what the
//! agent said, kept in the pack's `curated.toml` with the wordings of the
//! question they answer, and the turns an expert marked good. A caller's
//! question close enough to a curated wording (by meaning when the knowledge
//! is embedded, else by its words) is answered with the curated answer as
//! written, before the knowledge and the model are consulted.
//!
//! A match must not be about something else: a question naming one section
//! of the knowledge ("domestic") where the curated entry names another
//! ("international"), or holding a figure the entry does not, is not its
//! question, however close the meaning.

use crate::forbidden::ForbiddenPhrases;
use crate::knowledge::Knowledge;
use crate::pack::{read_toml, PackError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use voxline_llm::embed::{similarity, Embedder};

/// The file in a pack's folder.
pub const FILE: &str = "curated.toml";
/// The question set written from the curated answers (one case per wording).
pub const QUESTION_SET: &str = "eval-taught.toml";

/// One corrected answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CuratedAnswer {
    /// The question as callers put it: the wording that was answered wrong
    /// first, then any others the expert gave.
    pub asked: Vec<String>,
    /// The answer, spoken as written.
    pub say: String,
    /// The facts the answer must hold when the question set is run (figures,
    /// names); the answer's figures when the expert named none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    /// What the agent had said, when the correction came from a turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    /// Where the correction came from (`call <id> turn <n>`, `chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Who corrected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A turn an expert marked as answered well: kept for the fine-tuning set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodTurn {
    /// What the caller asked.
    pub asked: String,
    /// What the agent said.
    pub said: String,
    /// Where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Who marked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// The contents of `curated.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CuratedFile {
    /// Corrected answers.
    #[serde(default)]
    pub answer: Vec<CuratedAnswer>,
    /// Turns marked good.
    #[serde(default)]
    pub good: Vec<GoodTurn>,
}

impl CuratedFile {
    /// Reads `dir/curated.toml`; an empty set when the pack has none. Errors
    /// name the file and the field.
    pub fn read(dir: &Path) -> Result<CuratedFile, PackError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok(CuratedFile::default());
        }
        read_toml(&path)
    }

    /// Checks every answer: at least one wording, no empty text, and no
    /// phrase the pack forbids (`forbidden`), the same check as every reply.
    pub fn check(&self, file: &Path, forbidden: &[String]) -> Result<(), PackError> {
        let mut phrases = ForbiddenPhrases::new(forbidden);
        for (i, a) in self.answer.iter().enumerate() {
            if a.asked.iter().all(|q| q.trim().is_empty()) {
                let field = format!("answer[{i}].asked");
                return Err(PackError::new(file, Some(&field), "needs the question's wording"));
            }
            if a.say.trim().is_empty() {
                let field = format!("answer[{i}].say");
                return Err(PackError::new(file, Some(&field), "is empty"));
            }
            if phrases.matches(&a.say) {
                let field = format!("answer[{i}].say");
                return Err(PackError::new(
                    file,
                    Some(&field),
                    "says a phrase the pack forbids (rules.toml [forbidden])",
                ));
            }
        }
        for (i, g) in self.good.iter().enumerate() {
            if g.asked.trim().is_empty() || g.said.trim().is_empty() {
                let field = format!("good[{i}]");
                return Err(PackError::new(file, Some(&field), "needs both `asked` and `said`"));
            }
        }
        Ok(())
    }

    /// Writes the file to `dir` (through a temporary file renamed over it,
    /// so a reader never sees half of it) with the question set made from it.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = String::from(
            "# Curated answers: experts' corrections, answered as written when a\n\
             # caller's question matches one of `asked` (written by `voxline teach`).\n\n",
        );
        text.push_str(&toml::to_string_pretty(self).map_err(std::io::Error::other)?);
        write_atomic(&dir.join(FILE), &text)?;
        write_atomic(&dir.join(QUESTION_SET), &self.question_set())
    }

    /// The question set that keeps the corrections fixed: each wording of
    /// each answer, expecting an answer that holds its facts.
    pub fn question_set(&self) -> String {
        #[derive(Serialize)]
        struct Case<'a> {
            ask: &'a str,
            expect: &'static str,
            contains: Vec<String>,
        }
        #[derive(Serialize)]
        struct Set<'a> {
            case: Vec<Case<'a>>,
        }
        let case = self
            .answer
            .iter()
            .flat_map(|a| {
                let contains = a.facts();
                a.asked.iter().map(move |q| Case {
                    ask: q,
                    expect: "answer",
                    contains: contains.clone(),
                })
            })
            .collect();
        let body = toml::to_string_pretty(&Set { case }).unwrap_or_default();
        format!(
            "# The corrections' question set, written by `voxline teach` from {FILE}\n\
             # (edit that file, not this one): every wording must get its answer.\n\n{body}"
        )
    }
}

impl CuratedAnswer {
    /// What the answer must hold: `holds`, else the figures it states.
    pub fn facts(&self) -> Vec<String> {
        if !self.holds.is_empty() {
            return self.holds.clone();
        }
        crate::guard::numbers(&self.say)
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// A pack's curated answers, ready to match questions.
pub struct Curated {
    file: CuratedFile,
    /// Per answer, the knowledge's terms of each wording.
    wordings: Vec<Vec<HashSet<String>>>,
    /// Per answer, every term of its wordings and its text.
    named: Vec<HashSet<String>>,
    /// Per answer, the section-heading words among them (see
    /// [`crate::relevance::Sentences::subjects`]).
    subjects: Vec<HashSet<String>>,
    /// Per answer, each wording's embedding, once [`Curated::understand`] ran.
    vectors: Option<Vec<Vec<Vec<f32>>>>,
}

impl std::fmt::Debug for Curated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Curated")
            .field("answers", &self.file.answer.len())
            .field("good", &self.file.good.len())
            .field("embedded", &self.vectors.is_some())
            .finish()
    }
}

/// A curated answer that matched a question.
#[derive(Debug, Clone, PartialEq)]
pub struct CuratedMatch {
    /// Index into [`Curated::answers`].
    pub answer: usize,
    /// How close the question is to the closest wording: cosine by meaning,
    /// or the share of terms in common by words; 1 for the same words.
    pub score: f32,
}

impl Curated {
    /// The curated answers of `file`, their terms read by `knowledge`.
    pub fn new(file: CuratedFile, knowledge: &Knowledge) -> Curated {
        let wordings = file
            .answer
            .iter()
            .map(|a| {
                a.asked
                    .iter()
                    .map(|q| knowledge.terms(q).into_iter().collect())
                    .collect()
            })
            .collect();
        let named: Vec<HashSet<String>> = file
            .answer
            .iter()
            .map(|a| {
                a.asked
                    .iter()
                    .chain(std::iter::once(&a.say))
                    .flat_map(|t| knowledge.terms(t))
                    .collect()
            })
            .collect();
        let subjects = named
            .iter()
            .map(|terms| {
                let terms: Vec<String> = terms.iter().cloned().collect();
                knowledge.sentences().subjects(&terms)
            })
            .collect();
        Curated {
            file,
            wordings,
            named,
            subjects,
            vectors: None,
        }
    }

    /// The answers.
    pub fn answers(&self) -> &[CuratedAnswer] {
        &self.file.answer
    }

    /// The file as read.
    pub fn file(&self) -> &CuratedFile {
        &self.file
    }

    /// Embeds every wording so questions in other words match by meaning.
    pub fn understand(&mut self, embedder: &Arc<Embedder>) -> Result<(), voxline_llm::embed::EmbedError> {
        let mut vectors = Vec::with_capacity(self.file.answer.len());
        for a in &self.file.answer {
            let refs: Vec<&str> = a.asked.iter().map(String::as_str).collect();
            vectors.push(if refs.is_empty() {
                Vec::new()
            } else {
                embedder.embed(&refs)?
            });
        }
        self.vectors = Some(vectors);
        Ok(())
    }

    /// The curated answer to `utterance`, if one matches at least
    /// `threshold`, holds every figure of the question and, when both name
    /// sections of the knowledge, names the question's. `meaning` is the
    /// question's embedding, when the knowledge is embedded.
    pub fn find(
        &self,
        knowledge: &Knowledge,
        utterance: &str,
        meaning: Option<&[f32]>,
        threshold: f32,
    ) -> Option<CuratedMatch> {
        if self.file.answer.is_empty() {
            return None;
        }
        let asked = knowledge.terms(utterance);
        if asked.is_empty() {
            return None;
        }
        let terms: HashSet<String> = asked.iter().cloned().collect();
        // What the question names that a different question would not:
        // a section's own word, or a figure.
        let subjects = knowledge.sentences().subjects(&asked);
        let figures: Vec<&String> = terms.iter().filter(|t| t.chars().any(|c| c.is_ascii_digit())).collect();
        let mut best: Option<CuratedMatch> = None;
        for (i, wordings) in self.wordings.iter().enumerate() {
            let by_words = wordings.iter().map(|w| shared_share(&terms, w)).fold(0.0, f32::max);
            let score = if by_words >= 1.0 {
                1.0
            } else {
                match (meaning, &self.vectors) {
                    (Some(q), Some(v)) => v[i].iter().map(|w| similarity(w, q)).fold(-1.0, f32::max),
                    _ => by_words,
                }
            };
            if score < threshold || best.as_ref().is_some_and(|b| b.score >= score) {
                continue;
            }
            let named = &self.named[i];
            // Each names a section the other does not: about something else.
            let elsewhere =
                subjects.iter().any(|s| !named.contains(s)) && self.subjects[i].iter().any(|s| !subjects.contains(s));
            if elsewhere || !figures.iter().all(|f| named.contains(*f)) {
                tracing::debug!(
                    answer = i,
                    score,
                    "a curated answer close in meaning names something else"
                );
                continue;
            }
            best = Some(CuratedMatch { answer: i, score });
        }
        best
    }
}

/// The share of terms two sets have in common (Jaccard); 0 for two empty sets.
fn shared_share(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / union as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::split_markdown;

    fn knowledge() -> Knowledge {
        let text = "# International transfers\n\nAn international transfer costs 15 dollars.\n\n\
                    # Domestic transfers\n\nDomestic transfers are free.\n\n\
                    # Replacement cards\n\nA replacement card arrives in 5 working days.\n";
        Knowledge::from_passages(split_markdown("fees.md", text)).expect("index")
    }

    fn file() -> CuratedFile {
        CuratedFile {
            answer: vec![CuratedAnswer {
                asked: vec!["What does an international transfer cost?".into()],
                say: "An international transfer costs 15 dollars, and arrives in 2 days.".into(),
                holds: vec![],
                was: Some("I don't know.".into()),
                source: Some("chat".into()),
                by: None,
                at: None,
            }],
            good: vec![],
        }
    }

    #[test]
    fn the_same_question_matches_and_one_naming_another_section_does_not() {
        let k = knowledge();
        let c = Curated::new(file(), &k);
        let m = c.find(&k, "what does an international transfer cost", None, 0.8);
        assert_eq!(m, Some(CuratedMatch { answer: 0, score: 1.0 }));
        // Close in words, but about domestic transfers: the entry names
        // international ones.
        assert_eq!(c.find(&k, "What does a domestic transfer cost?", None, 0.3), None);
        // A figure the entry does not hold.
        assert_eq!(
            c.find(&k, "What does an international transfer of 500 cost?", None, 0.3),
            None
        );
        // Unrelated.
        assert_eq!(c.find(&k, "When does a replacement card arrive?", None, 0.3), None);
    }

    #[test]
    fn facts_are_the_figures_unless_named_and_the_question_set_holds_each_wording() {
        let mut f = file();
        assert_eq!(f.answer[0].facts(), vec!["15".to_string(), "2".to_string()]);
        f.answer[0].asked.push("How much is a transfer abroad?".into());
        f.answer[0].holds = vec!["15 dollars".into()];
        let set: toml::Value = toml::from_str(&f.question_set()).expect("valid TOML");
        let cases = set["case"].as_array().expect("cases");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1]["ask"].as_str(), Some("How much is a transfer abroad?"));
        assert_eq!(cases[1]["contains"][0].as_str(), Some("15 dollars"));
    }

    #[test]
    fn a_forbidden_phrase_or_a_missing_wording_is_refused_with_its_field() {
        let mut f = file();
        let path = Path::new("pack/curated.toml");
        assert!(f.check(path, &["guaranteed".into()]).is_ok());
        f.answer[0].say = "Transfers are guaranteed to arrive.".into();
        let e = f.check(path, &["guaranteed".into()]).expect_err("forbidden");
        assert!(e.to_string().contains("answer[0].say"), "{e}");
        f.answer[0].asked = vec![" ".into()];
        let e = f.check(path, &[]).expect_err("no wording");
        assert!(e.to_string().contains("answer[0].asked"), "{e}");
    }

    #[test]
    fn written_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("voxline-curated-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = file();
        f.write(&dir).expect("write");
        assert_eq!(CuratedFile::read(&dir).expect("read"), f);
        assert!(dir.join(QUESTION_SET).exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}
