//! The knowledge by meaning: every knowledge sentence embedded once at
//! start-up (with its section heading, and the sentence before when it goes
//! on about that one), so a question put in other words still finds the
//! sentence that answers it. The model is shared by every pack of a process.

use crate::relevance::Sentences;
use std::sync::Arc;
use voxline_llm::embed::{similarity, EmbedError, Embedder};

/// Sentences embedded per batch at start-up.
const BATCH: usize = 16;

/// The embedded sentences of one pack's knowledge.
pub struct Meaning {
    embedder: Arc<Embedder>,
    vectors: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Meaning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meaning")
            .field("sentences", &self.vectors.len())
            .finish()
    }
}

/// The text a sentence is embedded as: "Heading: [sentence before] sentence".
pub fn sentence_text(sentences: &Sentences, headings: &[&str], i: usize) -> String {
    let s = &sentences.all[i];
    let heading = headings.get(s.passage).copied().unwrap_or("");
    let before = if s.continues && i > 0 {
        format!("{} ", sentences.all[i - 1].text)
    } else {
        String::new()
    };
    format!("{heading}: {before}{}", s.text)
}

impl Meaning {
    /// Embeds every sentence; `headings` holds each passage's own heading.
    pub fn new(embedder: Arc<Embedder>, sentences: &Sentences, headings: &[&str]) -> Result<Meaning, EmbedError> {
        let texts: Vec<String> = (0..sentences.all.len())
            .map(|i| sentence_text(sentences, headings, i))
            .collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            vectors.extend(embedder.embed(&refs)?);
        }
        Ok(Meaning { embedder, vectors })
    }

    /// The embedding of a caller's question.
    pub fn embed(&self, question: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embedder.embed(&[question])?;
        v.pop()
            .ok_or_else(|| EmbedError::Run("no vector for the question".into()))
    }

    /// How close each sentence's meaning is to `question` (cosine, −1–1),
    /// in the knowledge's sentence order.
    pub fn similarities(&self, question: &[f32]) -> Vec<f32> {
        self.vectors.iter().map(|v| similarity(v, question)).collect()
    }
}

/// The pack's requests by meaning: each tool's example phrasings and the
/// escalation phrases, embedded, so a question about a tool's or an
/// escalation's topic ("Is there a charge for blocking my card?") can be
/// told from the request itself ("block my card").
pub struct Requests {
    tools: Vec<Vec<Vec<f32>>>,
    escalation: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").field("tools", &self.tools.len()).finish()
    }
}

/// The closest of `examples` to `question` (−1 when there are none).
fn closest(examples: &[Vec<f32>], question: &[f32]) -> f32 {
    examples.iter().map(|e| similarity(e, question)).fold(-1.0, f32::max)
}

impl Requests {
    /// Embeds each tool's `examples` and the `escalation` phrases.
    pub fn new(embedder: &Embedder, tools: &[&[String]], escalation: &[String]) -> Result<Requests, EmbedError> {
        let embed = |texts: &[String]| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        };
        Ok(Requests {
            tools: tools.iter().map(|ex| embed(ex)).collect::<Result<_, _>>()?,
            escalation: embed(escalation)?,
        })
    }

    /// How close `question` is to tool `tool`'s closest example.
    pub fn tool(&self, tool: usize, question: &[f32]) -> f32 {
        self.tools.get(tool).map_or(-1.0, |ex| closest(ex, question))
    }

    /// How close `question` is to the closest escalation phrase.
    pub fn escalation(&self, question: &[f32]) -> f32 {
        closest(&self.escalation, question)
    }
}
