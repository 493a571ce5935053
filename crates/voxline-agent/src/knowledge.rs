//! The domain's knowledge: Markdown files split into passages (one per
//! heading), indexed in memory with tantivy (BM25, English stemming and
//! stop words) at start-up, searched for each caller turn.

use crate::meaning::Meaning;
use crate::relevance::Sentences;
use crate::PackError;
use std::path::Path;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED};
/// The analyser [`english_analyzer`] builds (for callers that keep one).
pub use tantivy::tokenizer::TextAnalyzer;
use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter};
use tantivy::{doc, Index, IndexReader, TantivyDocument};

/// Reciprocal rank fusion's constant: a passage ranked r-th (from 0) in
/// one list adds 1 / (RRF_K + r + 1).
const RRF_K: f32 = 10.0;

/// The tokenizer name registered on the index.
const ANALYZER: &str = "voxline_en";

/// One passage of knowledge: a heading's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// "File title › section heading".
    pub title: String,
    /// The section's text.
    pub text: String,
    /// The file it came from.
    pub source: String,
}

/// A passage found for a query, with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The passage.
    pub passage: Passage,
    /// Its score, higher is more relevant: BM25 from [`Knowledge::search`],
    /// the fused rank score from [`Knowledge::find`].
    pub score: f32,
    /// Its index among the knowledge's passages.
    pub index: usize,
}

/// The indexed knowledge of a domain.
pub struct Knowledge {
    passages: Vec<Passage>,
    vocabulary: std::collections::HashSet<String>,
    sentences: Sentences,
    meaning: Option<Meaning>,
    index: Index,
    reader: IndexReader,
    title: Field,
    body: Field,
    id: Field,
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("passages", &self.passages.len())
            .finish()
    }
}

/// Words that carry no meaning for finding a passage or a tool in what a
/// caller says (function words, pronouns, auxiliaries, question words, fillers).
const STOP_WORDS: &str = "a an and are as at be been being but by can could did do does doing for from \
had has have having he her here hers him his how i i'd i'll i'm i've if in into is it it's its just me \
my myself of on or our ours please s so some such than that that's the their them then there these they \
this those to too us very was we were what what's when where which while who whom why will with would \
you your yours yourself um uh like want need tell know get got let also about any t d ll m ve re \
each";

/// English words: lower-cased, stop words out, stemmed.
pub fn english_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(STOP_WORDS.split_whitespace().map(String::from)))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analysed terms of `text` (for matching outside the index).
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// The terms of `text` with its numbers as digits ("nine a.m." → "9",
/// "1,000" → "1000"): how facts and what is said of them are compared.
pub fn fact_terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    terms(analyzer, &voxline_text::heard::normalize_english(text))
}

/// Splits one Markdown document into passages at its headings. The first
/// `#` heading is the document's title; each `##` (or deeper) section is a
/// passage; text before any section belongs to the title.
pub fn split_markdown(source: &str, text: &str) -> Vec<Passage> {
    let mut doc_title = String::new();
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut body = String::new();
    let mut flush = |heading: &str, body: &mut String, doc_title: &str| {
        let t = body.trim();
        if !t.is_empty() {
            let title = match (doc_title.is_empty(), heading.is_empty()) {
                (false, false) => format!("{doc_title} › {heading}"),
                (true, false) => heading.to_string(),
                _ => doc_title.to_string(),
            };
            out.push(Passage {
                title,
                text: t.split_whitespace().collect::<Vec<_>>().join(" "),
                source: source.to_string(),
            });
        }
        body.clear();
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(h) = trimmed.strip_prefix('#') {
            let level = 1 + h.chars().take_while(|&c| c == '#').count();
            let name = h.trim_start_matches('#').trim().to_string();
            flush(&heading, &mut body, &doc_title);
            if level == 1 && doc_title.is_empty() {
                doc_title = name;
                heading.clear();
            } else {
                heading = name;
            }
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(&heading, &mut body, &doc_title);
    out
}

impl Knowledge {
    /// Reads every `*.md` file of `dir` (sorted by name) and indexes its passages.
    pub fn load(dir: &Path) -> Result<Knowledge, PackError> {
        let err = |why: String| PackError::new(dir, None, why);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(format!("reading the knowledge folder: {e}")))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        files.sort();
        let mut passages = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| PackError::new(f, None, format!("reading: {e}")))?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            passages.extend(split_markdown(&name, &text));
        }
        if passages.is_empty() {
            return Err(err(
                "no passages: add Markdown files (*.md) with headings and text".into()
            ));
        }
        Knowledge::from_passages(passages).map_err(|e| err(format!("indexing: {e}")))
    }

    /// Indexes these passages.
    pub fn from_passages(passages: Vec<Passage>) -> tantivy::Result<Knowledge> {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let text = TextOptions::default().set_indexing_options(indexing);
        let mut schema = Schema::builder();
        let title = schema.add_text_field("title", text.clone());
        let body = schema.add_text_field("body", text);
        let id = schema.add_u64_field("id", STORED);
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, english_analyzer());
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;
        for (i, p) in passages.iter().enumerate() {
            writer.add_document(doc!(title => p.title.clone(), body => p.text.clone(), id => i as u64))?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        let mut analyzer = english_analyzer();
        let vocabulary = passages
            .iter()
            .flat_map(|p| fact_terms(&mut analyzer, &format!("{} {}", p.title, p.text)))
            .collect();
        let sentences = Sentences::new(passages.iter().map(|p| (p.title.as_str(), p.text.as_str())), |t| {
            fact_terms(&mut english_analyzer(), t)
        });
        Ok(Knowledge {
            passages,
            vocabulary,
            sentences,
            meaning: None,
            index,
            reader,
            title,
            body,
            id,
            analyzer: english_analyzer(),
        })
    }

    /// All passages.
    pub fn passages(&self) -> &[Passage] {
        &self.passages
    }

    /// The knowledge's sentences, for grounding what is said.
    pub fn sentences(&self) -> &Sentences {
        &self.sentences
    }

    /// Embeds every sentence with `embedder`, so questions find sentences by
    /// meaning as well as by words.
    pub fn understand(
        &mut self,
        embedder: std::sync::Arc<voxline_llm::Embedder>,
    ) -> Result<(), voxline_llm::EmbedError> {
        let headings: Vec<&str> = self
            .passages
            .iter()
            .map(|p| p.title.rsplit(" › ").next().unwrap_or(&p.title))
            .collect();
        self.meaning = Some(Meaning::new(embedder, &self.sentences, &headings)?);
        Ok(())
    }

    /// The sentences by meaning, when [`Knowledge::understand`] was called.
    pub fn meaning(&self) -> Option<&Meaning> {
        self.meaning.as_ref()
    }

    /// How close each sentence's meaning is to the question embedded as
    /// `question` ([`Meaning::similarities`]); None when the knowledge is
    /// not embedded.
    pub fn similarities(&self, question: &[f32]) -> Option<Vec<f32>> {
        Some(self.meaning.as_ref()?.similarities(question))
    }

    /// Whether an analysed term occurs anywhere in the knowledge.
    pub fn knows(&self, term: &str) -> bool {
        self.vocabulary.contains(term)
    }

    /// The analysed terms of `text`, as the index sees them, numbers as
    /// digits ([`fact_terms`]).
    pub fn terms(&self, text: &str) -> Vec<String> {
        fact_terms(&mut self.analyzer.clone(), text)
    }

    /// The `k` best passages for `query` by its words and, given the
    /// question's similarity to each sentence ([`Meaning::similarities`]),
    /// by its meaning: a passage found by words scores BM25 at least
    /// `min_score`, one found by meaning has a sentence at least
    /// `min_similarity` close; the two rankings are fused by reciprocal rank
    /// (ties to the closer meaning).
    pub fn find(
        &self,
        query: &str,
        similarities: Option<&[f32]>,
        k: usize,
        min_score: f32,
        min_similarity: f32,
    ) -> Vec<Hit> {
        let by_words = self.search(query, self.passages.len(), min_score);
        let Some(sims) = similarities else {
            return by_words.into_iter().take(k).collect();
        };
        let mut closest = vec![f32::MIN; self.passages.len()];
        for (s, sim) in self.sentences.all.iter().zip(sims) {
            if let Some(c) = closest.get_mut(s.passage) {
                *c = c.max(*sim);
            }
        }
        let mut by_meaning: Vec<usize> = (0..self.passages.len())
            .filter(|&p| closest[p] >= min_similarity)
            .collect();
        by_meaning.sort_by(|a, b| closest[*b].total_cmp(&closest[*a]));
        let mut fused = vec![0.0f32; self.passages.len()];
        let rank_score = |rank: usize| 1.0 / (RRF_K + rank as f32 + 1.0);
        for (rank, h) in by_words.iter().enumerate() {
            fused[h.index] += rank_score(rank);
        }
        for (rank, &p) in by_meaning.iter().enumerate() {
            fused[p] += rank_score(rank);
        }
        let mut order: Vec<usize> = (0..self.passages.len()).filter(|&p| fused[p] > 0.0).collect();
        order.sort_by(|a, b| {
            fused[*b]
                .total_cmp(&fused[*a])
                .then(closest[*b].total_cmp(&closest[*a]))
        });
        order
            .into_iter()
            .take(k)
            .map(|i| Hit {
                passage: self.passages[i].clone(),
                score: fused[i],
                index: i,
            })
            .collect()
    }

    /// The `k` best passages for `query` by its words alone (BM25) scoring at least `min_score`.
    pub fn search(&self, query: &str, k: usize, min_score: f32) -> Vec<Hit> {
        // Only stop words: nothing to look for (the parser would match everything).
        if self.terms(query).is_empty() {
            return Vec::new();
        }
        let parser = QueryParser::for_index(&self.index, vec![self.title, self.body]);
        // Words only: the caller's punctuation is not query syntax.
        let clean: String = query
            .chars()
            .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
            .collect();
        let (q, _) = parser.parse_query_lenient(&clean);
        let searcher = self.reader.searcher();
        let Ok(top) = searcher.search(&q, &TopDocs::with_limit(k.max(1)).order_by_score()) else {
            return Vec::new();
        };
        top.into_iter()
            .filter(|(score, _)| *score >= min_score)
            .filter_map(|(score, addr)| {
                let d: TantivyDocument = searcher.doc(addr).ok()?;
                let i = d.get_first(self.id)?.as_u64()? as usize;
                Some(Hit {
                    passage: self.passages.get(i)?.clone(),
                    score,
                    index: i,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_splits_at_headings_under_the_document_title() {
        let p = split_markdown(
            "cards.md",
            "# Cards\nIntro line.\n\n## Lost card\nBlock it\nat once.\n\n## PIN\nUse the app.\n",
        );
        let titles: Vec<&str> = p.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["Cards", "Cards › Lost card", "Cards › PIN"]);
        assert_eq!(p[1].text, "Block it at once.");
    }

    #[test]
    fn search_finds_the_passage_by_stemmed_words_and_ignores_stop_words() {
        let k = Knowledge::from_passages(split_markdown(
            "b.md",
            "# Bank\n## Opening hours\nBranches open at 9 a.m. and close at 5 p.m.\n## Lost card\nBlock a lost or stolen card in the app.\n",
        ))
        .unwrap();
        let hits = k.search("When are your branches opening?", 2, 0.1);
        assert_eq!(hits[0].passage.title, "Bank › Opening hours", "{hits:?}");
        let hits = k.search("someone stole my cards!", 1, 0.1);
        assert_eq!(hits[0].passage.title, "Bank › Lost card", "{hits:?}");
        assert!(k.search("the and of", 3, 0.0).is_empty());
        assert_eq!(k.terms("What if my cards were stolen?"), ["card", "stolen"]);
    }
}
