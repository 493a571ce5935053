//! Whether a line of the call says what a scorecard line says, in its
//! words or in others: each line of the transcript is cut into sentences,
//! and a sentence matches a scorecard line when it lies close to it in
//! meaning (sentence embeddings), or holds most of its content words
//! (stemmed: "recorded" is "record"; a recogniser's slips allowed), or is
//! fairly close on both. A match's quote is the sentence as the transcript
//! has it, so every verdict's evidence is found word for word in the call.

use crate::scorecard::Speaker;
use crate::transcript::CallTranscript;
use voxline_llm::embed::similarity;
use voxline_llm::{EmbedError, Embedder};

/// A sentence this close in meaning (cosine of all-MiniLM-L6-v2) says
/// the same thing.
pub const SAME_MEANING: f32 = 0.72;
/// A sentence holding this share of a line's content words (stemmed, in
/// any order) says it, even where the meaning score is lower.
pub const SAME_WORDS: f32 = 0.75;
/// A sentence at least this close in meaning ...
pub const NEAR_MEANING: f32 = 0.6;
/// ... and holding this share of the line's content words says a line
/// that must be said ([`Match::Lenient`]).
pub const NEAR_WORDS: f32 = 0.4;

/// A sentence this close in meaning to a forbidden promise, giving an
/// assurance of its own on the promise's subject, says it
/// ([`CallSentences::find_assured`]).
pub const ASSURED_MEANING: f32 = 0.4;

/// How readily a sentence is taken to say a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Lines that must be said, asked for or offered: close in meaning or
    /// in words, or fairly close on both (a paraphrased notice); a stretch
    /// of a line counts too (a recogniser often runs two sentences of a
    /// turn together, or cuts one in three).
    Lenient,
    /// The lenient rules on whole sentences only: for lines whose saying
    /// counts against the agent (a balance read), where a stretch cut out
    /// of its sentence could lose what qualifies it.
    LenientWhole,
    /// Lines never to be said: close in meaning or in words only (a refund
    /// stated as a fact must not read as a promised one, and a wrong
    /// failure of a critical item fails the call).
    Strict,
}

/// Whether a sentence `meaning` close to a line, holding `words` of its
/// content words, says it.
pub fn says(meaning: f32, words: f32, how: Match) -> bool {
    meaning >= SAME_MEANING
        || words >= SAME_WORDS
        || (how != Match::Strict && meaning >= NEAR_MEANING && words >= NEAR_WORDS)
}

/// Words that carry no content of their own in a scorecard line.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "is", "are", "was", "were", "be", "been", "am", "will",
    "would", "may", "might", "can", "could", "shall", "should", "do", "does", "did", "have", "has", "had", "to", "for",
    "of", "in", "on", "at", "by", "with", "from", "and", "or", "but", "so", "if", "i", "me", "my", "you", "your", "we",
    "our", "us", "it", "its", "he", "she", "they", "them", "their", "there", "here", "what", "which", "who", "how",
    "please", "just", "all", "any", "some", "now", "today", "i'm", "you're", "it's", "we're", "i'll", "you'll",
    "we'll",
];

/// A text's content words, stemmed (English Snowball), in order.
pub fn content_words(text: &str) -> Vec<String> {
    static STEMMER: std::sync::LazyLock<rust_stemmers::Stemmer> =
        std::sync::LazyLock::new(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English));
    let stemmer = &*STEMMER;
    voxline_text::words::words(text)
        .split_whitespace()
        .filter(|w| !FUNCTION_WORDS.contains(w))
        .map(|w| stemmer.stem(w).into_owned())
        .collect()
}

/// One sentence of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// The line's index in the transcript.
    pub line: usize,
    /// Who said it.
    pub speaker: Speaker,
    /// When its line started, ms.
    pub at_ms: u64,
    /// Its words as the transcript has them.
    pub text: String,
    /// A stretch of a longer line (see [`stretches_of`]), matched only by
    /// [`Match::Lenient`].
    pub stretch: bool,
    /// Its content words (see [`content_words`]).
    words: Vec<String>,
    /// Its embedding.
    vector: Vec<f32>,
    /// For a sentence giving an assurance, the other side's line it
    /// answers: what it assures may be named only there ("Will my loan go
    /// through?" "It'll sail through, I can assure you").
    answers: Option<Answered>,
}

/// The line a sentence answers, read with it.
#[derive(Debug, Clone, PartialEq)]
struct Answered {
    /// The line's content words.
    words: Vec<String>,
    /// The embedding of the line and the sentence together.
    vector: Vec<f32>,
}

/// The call's sentences, embedded once, matched against scorecard lines.
#[derive(Debug)]
pub struct CallSentences {
    /// In call order.
    pub sentences: Vec<Sentence>,
}

/// A sentence that says one of the lines looked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The sentence's index in [`CallSentences::sentences`].
    pub sentence: usize,
    /// Which of the lines looked for it says.
    pub target: usize,
    /// The meaning's cosine.
    pub meaning: f32,
    /// The share of the line's content words it holds.
    pub words: f32,
}

impl Found {
    /// How close, in a report: "meaning 0.64, words 0.50".
    pub fn closeness(&self) -> String {
        format!("meaning {:.2}, words {:.2}", self.meaning, self.words)
    }

    /// One figure to rank by: the larger of the two.
    fn rank(&self) -> f32 {
        self.meaning.max(self.words)
    }
}

/// Cuts a line into sentences at `.`, `?` and `!` (a number's decimal
/// point stays), keeping each with its punctuation.
pub fn sentences_of(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        cur.push(c);
        let decimal =
            c == '.' && i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if matches!(c, '.' | '?' | '!') && !decimal && chars.get(i + 1).is_none_or(|n| n.is_whitespace()) {
            let s = cur.trim();
            if s.chars().any(char::is_alphanumeric) {
                out.push(s.to_string());
            }
            cur.clear();
        }
    }
    let s = cur.trim();
    if s.chars().any(char::is_alphanumeric) {
        out.push(s.to_string());
    }
    out
}

/// Stretches of a line's words, across its sentences' ends: runs of 6,
/// 10 and 14 words, every 3 words, in lines longer than the run, each
/// exactly as the line has it (so a quote of one is found word for word).
/// A recogniser runs two sentences together without a full stop, or cuts
/// one sentence in three ("Hello, you're through to Harbor Bank. I'm Ava.
/// How may I help?"); a scorecard line is found in either.
pub fn stretches_of(line: &str) -> Vec<String> {
    // Each word's byte span in the line.
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, line.len()));
    }
    let mut out = Vec::new();
    for size in [6usize, 10, 14] {
        if spans.len() <= size + 1 {
            continue;
        }
        let mut from = 0;
        loop {
            out.push(line[spans[from].0..spans[from + size - 1].1].to_string());
            if from + size == spans.len() {
                break;
            }
            from = (from + 3).min(spans.len() - size);
        }
    }
    out
}

/// The share of `target`'s content words that `text` holds (stemmed,
/// any order); a line of fewer than two content words is matched on
/// meaning alone (0).
pub fn word_share(target: &str, text: &str) -> f32 {
    share_of(&content_words(target), &content_words(text))
}

/// [`word_share`] on content words already taken.
fn share_of(want: &[String], have: &[String]) -> f32 {
    if want.len() < 2 {
        return 0.0;
    }
    let hit = want.iter().filter(|w| have.contains(w)).count();
    hit as f32 / want.len() as f32
}

impl CallSentences {
    /// Cuts and embeds every line of `call`.
    pub fn new(call: &CallTranscript, embedder: &Embedder) -> Result<CallSentences, EmbedError> {
        let mut sentences = Vec::new();
        // Per sentence given an assurance: the line it answers, and the
        // two read together.
        let mut exchanges: Vec<(usize, &str, String)> = Vec::new();
        for (i, line) in call.lines.iter().enumerate() {
            let sentence = |text: String, stretch: bool| Sentence {
                line: i,
                speaker: line.speaker,
                at_ms: line.start_ms,
                words: content_words(&text),
                text,
                stretch,
                vector: Vec::new(),
                answers: None,
            };
            let answered = call.lines[..i].iter().rev().find(|l| l.speaker != line.speaker);
            for text in sentences_of(&line.text) {
                if let Some(asked) = answered.filter(|_| crate::assurance::assures(&text)) {
                    exchanges.push((sentences.len(), asked.text.as_str(), format!("{} {text}", asked.text)));
                }
                sentences.push(sentence(text, false));
            }
            // The line's stretches after its sentences: indices stay in
            // call order from line to line.
            sentences.extend(stretches_of(&line.text).into_iter().map(|s| sentence(s, true)));
        }
        let vectors = {
            let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
            embed_in_batches(embedder, &texts)?
        };
        for (s, v) in sentences.iter_mut().zip(vectors) {
            s.vector = v;
        }
        let texts: Vec<&str> = exchanges.iter().map(|(_, _, both)| both.as_str()).collect();
        for ((at, asked, _), vector) in exchanges.iter().zip(embed_in_batches(embedder, &texts)?) {
            sentences[*at].answers = Some(Answered {
                words: content_words(asked),
                vector,
            });
        }
        Ok(CallSentences { sentences })
    }

    /// `who`'s sentence closest to any of `targets`, matching or not (for
    /// a failed item's report: the near miss).
    pub fn closest(&self, who: Speaker, targets: &Targets) -> Option<Found> {
        self.sentences
            .iter()
            .enumerate()
            .filter(|(_, s)| s.speaker == who && !s.stretch)
            .flat_map(|(i, s)| {
                targets
                    .words
                    .iter()
                    .zip(&targets.vectors)
                    .enumerate()
                    .map(move |(t, (words, v))| Found {
                        sentence: i,
                        target: t,
                        meaning: similarity(&s.vector, v),
                        words: share_of(words, &s.words),
                    })
            })
            .max_by(|a, b| a.rank().total_cmp(&b.rank()))
    }

    /// Every sentence of `who` that says one of `targets`, in call order
    /// (each sentence with its best target).
    pub fn find(&self, who: Speaker, targets: &Targets, how: Match) -> Vec<Found> {
        let mut out = Vec::new();
        let stretches = how == Match::Lenient;
        for (i, s) in self
            .sentences
            .iter()
            .enumerate()
            .filter(|(_, s)| s.speaker == who && (stretches || !s.stretch))
        {
            let best = targets
                .words
                .iter()
                .zip(&targets.vectors)
                .enumerate()
                .map(|(t, (words, v))| Found {
                    sentence: i,
                    target: t,
                    meaning: similarity(&s.vector, v),
                    words: share_of(words, &s.words),
                })
                .filter(|f| says(f.meaning, f.words, how))
                .max_by(|a, b| a.rank().total_cmp(&b.rank()));
            out.extend(best);
        }
        out
    }

    /// Every sentence of `who` that promises what one of `targets` (those
    /// that are promises) promises in other words: it gives an assurance
    /// it does not deny, it or the other side's line it answers shares a
    /// word of the promise's subject, and it (or the two read together)
    /// lies at least [`ASSURED_MEANING`] close to it (see
    /// [`crate::assurance`]).
    pub fn find_assured(&self, who: Speaker, targets: &Targets) -> Vec<Found> {
        let mut out = Vec::new();
        for (i, s) in self
            .sentences
            .iter()
            .enumerate()
            .filter(|(_, s)| s.speaker == who && !s.stretch && crate::assurance::assures(&s.text))
        {
            let best = targets
                .promises
                .iter()
                .enumerate()
                .filter_map(|(t, subject)| {
                    let subject = subject.as_ref()?;
                    let own = similarity(&s.vector, &targets.vectors[t]);
                    let (named, meaning) = match &s.answers {
                        Some(a) => (
                            subject.iter().any(|w| s.words.contains(w) || a.words.contains(w)),
                            own.max(similarity(&a.vector, &targets.vectors[t])),
                        ),
                        None => (subject.iter().any(|w| s.words.contains(w)), own),
                    };
                    named.then(|| Found {
                        sentence: i,
                        target: t,
                        meaning,
                        words: share_of(&targets.words[t], &s.words),
                    })
                })
                .filter(|f| f.meaning >= ASSURED_MEANING)
                .max_by(|a, b| a.rank().total_cmp(&b.rank()));
            out.extend(best);
        }
        out
    }

    /// The sentence `found` points at.
    pub fn sentence(&self, found: &Found) -> &Sentence {
        &self.sentences[found.sentence]
    }

    /// How close each of `who`'s sentences lies to the closest of
    /// `anchors`, in call order: (sentence index, cosine).
    pub fn closeness(&self, who: Speaker, anchors: &Targets) -> Vec<(usize, f32)> {
        self.sentences
            .iter()
            .enumerate()
            .filter(|(_, s)| s.speaker == who && !s.stretch)
            .map(|(i, s)| {
                let best = anchors
                    .vectors
                    .iter()
                    .map(|v| similarity(&s.vector, v))
                    .fold(f32::MIN, f32::max);
                (i, best)
            })
            .collect()
    }
}

/// Scorecard lines, embedded once.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The lines.
    pub lines: Vec<String>,
    /// Each line's content words.
    words: Vec<Vec<String>>,
    vectors: Vec<Vec<f32>>,
    /// For each line that is a promise, the words of its subject.
    promises: Vec<Option<Vec<String>>>,
}

impl Targets {
    /// Embeds `lines`.
    pub fn new(lines: &[String], embedder: &Embedder) -> Result<Targets, EmbedError> {
        let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
        Ok(Targets {
            lines: lines.to_vec(),
            words: lines.iter().map(|l| content_words(l)).collect(),
            vectors: embed_in_batches(embedder, &texts)?,
            promises: lines
                .iter()
                .map(|l| crate::assurance::assures(l).then(|| crate::assurance::subject_words(l)))
                .collect(),
        })
    }
}

/// Embeds in batches of 32 (a long call has hundreds of sentences; one
/// batch pads them all to the longest).
fn embed_in_batches(embedder: &Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        out.extend(embedder.embed(chunk)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_into_sentences_keeping_decimals() {
        assert_eq!(
            sentences_of("Thank you, you are verified. Your balance is 12.50 pounds! Anything else?"),
            vec![
                "Thank you, you are verified.",
                "Your balance is 12.50 pounds!",
                "Anything else?"
            ]
        );
        assert_eq!(sentences_of("no punctuation at all"), vec!["no punctuation at all"]);
        assert!(sentences_of(" ... ").is_empty());
    }

    #[test]
    fn lines_give_stretches_across_sentences_quoted_word_for_word() {
        let line =
            "Hello, you're through to Harbor Bank. I'm Ava. How may I help? Just so you know, this call is recorded.";
        let parts = stretches_of(line);
        assert!(parts.iter().all(|p| line.contains(p.as_str())), "{parts:?}");
        assert!(
            parts.contains(&"Hello, you're through to Harbor Bank. I'm Ava. How may".to_string()),
            "most of the greeting, across three sentences: {parts:?}"
        );
        assert!(
            parts.iter().any(|p| p.ends_with("call is recorded.")),
            "the end is covered: {parts:?}"
        );
        assert!(
            stretches_of("Is there anything else I can help?").is_empty(),
            "short: none"
        );
        assert!(stretches_of("").is_empty());
    }

    #[test]
    fn word_share_counts_stemmed_content_words_in_any_order() {
        let share = word_share("This call may be recorded.", "we record every call for training");
        assert!((share - 1.0).abs() < 1e-6, "{share}");
        // promise, fee, refund: the fee only.
        let share = word_share("I promise the fee will be refunded.", "The fee will be looked at.");
        assert!((share - 1.0 / 3.0).abs() < 1e-6, "{share}");
        assert_eq!(word_share("", "anything"), 0.0);
        assert_eq!(
            word_share("Goodbye.", "goodbye"),
            0.0,
            "one content word: meaning alone"
        );
    }
}
