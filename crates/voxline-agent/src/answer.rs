//! A generated answer being spoken: the model's streamed text cut into
//! phrases, each checked by the guard before it is handed out; a forbidden
//! phrase is replaced, an ungrounded or repeated one ends the answer (the
//! knowledge sentence that best answers the question is read as written
//! when little was said or a sentence was left hanging; see
//! [`crate::grounding`]).

use crate::guard::{Guard, Verdict};
use std::collections::VecDeque;
use voxline_llm::{ChatEvent, ChatStream, LlmError};
use voxline_text::phrases::{PhraseSplitter, SplitterConfig};

/// What an answer reads as written when the model's words fail the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// A knowledge sentence that answers the question (or a flow step's
    /// line): read in the model's place, also after a sentence it left hanging.
    Sentence(String),
    /// The pack's "I don't know" line: read only when nothing of use was said.
    DontKnow(String),
}

impl Fallback {
    fn text(&self) -> &str {
        match self {
            Fallback::Sentence(t) | Fallback::DontKnow(t) => t,
        }
    }
}

/// A generated answer being spoken: the model's text, cut into phrases,
/// each checked before it is handed out.
pub struct Answer {
    pub(crate) stream: Option<ChatStream>,
    pub(crate) splitter: PhraseSplitter,
    pub(crate) guard: Guard,
    pub(crate) fallback: Option<Fallback>,
    pub(crate) replacement: String,
    pub(crate) queue: VecDeque<String>,
    /// The rest of a fallback being read, a phrase at a time (the voice
    /// starts on its first phrase while the next are synthesised).
    pub(crate) reading: VecDeque<String>,
    pub(crate) words_left: usize,
    pub(crate) handed_out: usize,
    /// Of those, phrases read from the knowledge as written (the fallback),
    /// not the model's words.
    pub(crate) read: usize,
    /// What was handed out so far.
    pub(crate) said: String,
    /// What the history keeps of it: the question (earlier facts stay out of
    /// later prompts; what was said of them is in the answer).
    pub(crate) question: String,
    /// Why the answer stopped early, if it did.
    pub stopped: Option<String>,
    /// When the model's first text arrived.
    pub(crate) first_token_at: Option<std::time::Instant>,
    /// Prompt tokens the model read for it (the rest was in its cache).
    pub(crate) prompt_read: Option<usize>,
    /// It must ask the caller something (a flow step waiting for an
    /// answer): when the model's words asked nothing, the fallback follows.
    pub(crate) must_ask: bool,
    /// An expert's curated answer, read as written (no model).
    pub(crate) curated: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer").field("handed_out", &self.handed_out).finish()
    }
}

impl Answer {
    /// An expert's curated answer (`text`, already checked against the
    /// pack's forbidden phrases when the pack was loaded), read as written a
    /// phrase at a time; `question` is what the history keeps of the turn.
    pub(crate) fn curated(text: &str, question: String, guard: Guard) -> Answer {
        Answer {
            fallback: Some(Fallback::Sentence(text.to_string())),
            curated: true,
            ..Answer::unstarted(question, guard)
        }
    }

    /// An answer to `question` with nothing generated, read or said yet, no
    /// model stream and no fallback.
    pub(crate) fn unstarted(question: String, guard: Guard) -> Answer {
        Answer {
            stream: None,
            splitter: PhraseSplitter::new(SplitterConfig::default()),
            guard,
            fallback: None,
            replacement: String::new(),
            queue: VecDeque::new(),
            reading: VecDeque::new(),
            words_left: usize::MAX,
            handed_out: 0,
            read: 0,
            said: String::new(),
            question,
            stopped: None,
            first_token_at: None,
            prompt_read: None,
            must_ask: false,
            curated: false,
        }
    }

    /// Whether this is an expert's curated answer, read as written.
    pub fn is_curated(&self) -> bool {
        self.curated
    }

    /// The next checked phrase to speak; None when the answer is over.
    pub async fn next_phrase(&mut self) -> Result<Option<String>, LlmError> {
        if let Some(s) = self.reading.pop_front() {
            self.handed_out += 1;
            self.read += 1;
            return Ok(Some(s));
        }
        loop {
            if let Some(p) = self.queue.pop_front() {
                let p = without_label(&p).to_string();
                if !p.chars().any(char::is_alphanumeric) {
                    continue;
                }
                match self.guard.check(&p) {
                    Verdict::Speak => {
                        let n = p.split_whitespace().count();
                        if n > self.words_left && self.handed_out > 0 {
                            self.finish("the reply reached its length limit");
                            return Ok(None);
                        }
                        self.words_left = self.words_left.saturating_sub(n);
                        self.handed_out += 1;
                        self.said.push(' ');
                        self.said.push_str(&p);
                        if p.trim_end().ends_with('?') {
                            self.must_ask = false;
                        }
                        return Ok(Some(p));
                    }
                    Verdict::Echo => {
                        tracing::debug!(phrase = %p, "phrase not said: nothing of the facts (the caller's words back, a bare yes)");
                        continue;
                    }
                    Verdict::Forbidden => {
                        self.finish("a forbidden phrase was generated");
                        self.handed_out += 1;
                        return Ok(Some(self.replacement.clone()));
                    }
                    v @ (Verdict::Repeated | Verdict::PromptEcho | Verdict::Ungrounded(_)) => {
                        let why = match v {
                            Verdict::Ungrounded(what) => format!("ungrounded: {what}"),
                            Verdict::PromptEcho => "the model went on with the prompt".to_string(),
                            _ => "the model repeated itself".to_string(),
                        };
                        tracing::debug!(phrase = %p, %why, "phrase not said");
                        self.finish(&why);
                        // The facts were not said yet: read their best sentence
                        // instead when little was said, or a knowledge sentence
                        // when the last phrase left one hanging ("You can block a
                        // lost card,").
                        let little_said = self.handed_out == 0 || self.said.split_whitespace().count() < 6;
                        // (Not when it would only say again what was said: "3.5%
                        // interest a year," then the same sentence.)
                        let hanging = !self.said.trim_end().ends_with(['.', '!', '?'])
                            && matches!(&self.fallback, Some(Fallback::Sentence(f)) if adds_to(f, &self.said));
                        let unsaid = self.fallback.as_ref().is_some_and(|f| !self.said.contains(f.text()));
                        if unsaid && (little_said || hanging || self.must_ask) {
                            return Ok(self.read_fallback());
                        }
                        return Ok(None);
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                // A step's question the model left out is asked in its own
                // words; an answer of which nothing could be said (the model's
                // words all dropped) reads the facts.
                if self.must_ask || self.handed_out == 0 {
                    self.must_ask = false;
                    if let Some(f) = self.read_fallback() {
                        return Ok(Some(f));
                    }
                }
                return Ok(None);
            };
            let next = stream.next().await;
            if self.first_token_at.is_none() {
                self.first_token_at = stream.first_token_at();
                self.prompt_read = stream.prompt_read();
            }
            match next {
                Some(Ok(ChatEvent::Delta(d))) => self.queue.extend(self.splitter.push(&d)),
                Some(Ok(ChatEvent::Done(_))) | None => {
                    self.stream = None;
                    self.queue.extend(self.splitter.finish());
                    if self.queue.is_empty() && self.handed_out == 0 {
                        // The model said nothing: read the facts.
                        if let Some(f) = self.read_fallback() {
                            return Ok(Some(f));
                        }
                    }
                }
                Some(Err(e)) => {
                    self.stream = None;
                    return Err(e);
                }
            }
        }
    }

    /// The fallback, handed out once, a phrase at a time, as phrases read
    /// from the knowledge.
    fn read_fallback(&mut self) -> Option<String> {
        let f = self.fallback.take()?;
        let (Fallback::Sentence(t) | Fallback::DontKnow(t)) = f;
        // Not the phrases the model said already: after "The downtown
        // branch is at 12 Harbor Street," the sentence goes on from there.
        let said = self.said.clone();
        self.read_in_place(&t, |p| already_said(&said, p))
    }

    /// Reads `text` in the model's place, cut like the model's words (the
    /// voice starts on the first phrase), leaving out the phrases `said`
    /// says were said already; its first phrase, the rest queued.
    fn read_in_place(&mut self, text: &str, said: impl Fn(&str) -> bool) -> Option<String> {
        let mut cut = PhraseSplitter::new(SplitterConfig::default());
        let mut phrases = cut.push(text);
        phrases.extend(cut.finish());
        let mut left = phrases.into_iter().filter(|p| !said(p));
        let first = left.next()?;
        self.reading.extend(left);
        self.handed_out += 1;
        self.read += 1;
        Some(first)
    }

    /// Gives the model up for this answer (it stalled or failed): its
    /// generation stops, its unchecked words are dropped, and the first
    /// phrase of the knowledge sentence that answers the question is
    /// returned when there is one not said yet (the rest follows from
    /// [`next_phrase`](Self::next_phrase)); None: nothing can be said in
    /// its place.
    pub fn give_up(&mut self, why: &str) -> Option<String> {
        self.finish(why);
        let Some(Fallback::Sentence(f)) = self.fallback.take() else {
            return None;
        };
        // Only what the model did not say already (it may have said the
        // first of the facts' sentences before it stalled).
        let said = self.said.clone();
        self.read_in_place(&f, |p| already_said(&said, p))
    }

    /// Whether any of the answer was read from the knowledge as written
    /// (the model's words failed a check, or it wrote none).
    pub fn read_from_knowledge(&self) -> bool {
        self.read > 0
    }

    /// How many phrases of the answer were the model's own words.
    pub fn model_phrases(&self) -> usize {
        self.handed_out - self.read
    }

    /// The user message as the history keeps it (the question only).
    pub fn history_message(&self) -> &str {
        &self.question
    }

    /// Pauses (`true`) or resumes the model's generation of the rest
    /// (see [`ChatStream::hold`]).
    pub fn hold(&self, on: bool) {
        if let Some(s) = &self.stream {
            s.hold(on);
        }
    }

    /// Stops generating (barge-in, or a failed check).
    pub fn cancel(&mut self) {
        self.finish("cancelled");
    }

    fn finish(&mut self, why: &str) {
        if let Some(mut s) = self.stream.take() {
            s.cancel();
        }
        self.queue.clear();
        self.stopped.get_or_insert_with(|| why.to_string());
    }

    /// When the model's first text arrived, once it has (`None` too for an
    /// answer read from the passages without the model).
    pub fn first_token_at(&self) -> Option<std::time::Instant> {
        self.first_token_at
    }

    /// Prompt tokens the model read for this answer after it was asked
    /// (the rest was reused from its cache: the system prompt, earlier
    /// turns, what was read ahead from a partial), once it answered; `None`
    /// from engines that do not say.
    pub fn prompt_read(&self) -> Option<usize> {
        self.prompt_read
    }
}

/// Whether `phrase` was said already in `said`, in any case, punctuation
/// and spacing (whole words).
fn already_said(said: &str, phrase: &str) -> bool {
    let words = |t: &str| {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let p = words(phrase);
    !p.is_empty() && format!(" {} ", words(said)).contains(&format!(" {p} "))
}

/// Whether `sentence` says something `said` does not hold yet: a figure,
/// or most of its longer words.
fn adds_to(sentence: &str, said: &str) -> bool {
    let already = crate::guard::numbers(said);
    if crate::guard::numbers(sentence).iter().any(|n| !already.contains(n)) {
        return true;
    }
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphabetic())
            .filter(|w| w.len() > 3)
            .map(str::to_lowercase)
            .collect()
    };
    let old = words(said);
    let new = words(sentence);
    let unsaid = new.iter().filter(|w| !old.contains(w)).count();
    unsaid * 2 > new.len()
}

/// A phrase without the label or list mark the model may put before it
/// ("A: ...", "- ..."): read aloud, they are noise.
fn without_label(phrase: &str) -> &str {
    let t = phrase.trim_start();
    [
        "The answer is:",
        "The answer is",
        "A:",
        "Answer:",
        "Assistant:",
        "- ",
        "* ",
    ]
    .iter()
    .find_map(|m| t.strip_prefix(m))
    .map_or(t, str::trim_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_list_marks_are_not_read_aloud() {
        assert_eq!(without_label("A: 12 hours a day."), "12 hours a day.");
        assert_eq!(
            without_label("- Harbor Bank ATMs are free."),
            "Harbor Bank ATMs are free."
        );
        assert_eq!(without_label("Answer:"), "");
        assert_eq!(without_label("Branches open at 9."), "Branches open at 9.");
        assert_eq!(without_label("A-level fees"), "A-level fees");
        assert_eq!(without_label("The answer is: 3."), "3.");
    }

    fn answer_with(fallback: Option<Fallback>, said: &str) -> Answer {
        Answer {
            fallback,
            queue: VecDeque::from(vec!["The Downtown".to_string()]),
            words_left: 45,
            handed_out: usize::from(!said.is_empty()),
            said: said.to_string(),
            ..Answer::unstarted("Where is the Downtown branch?".into(), Guard::new(&[], &[], &[]))
        }
    }

    #[test]
    fn a_model_given_up_leaves_the_facts_to_read_or_nothing() {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let facts = "The Downtown branch is at 12 Harbor Street, next to the central station.";
        // Nothing said yet: the facts are read, phrase by phrase, then the end.
        let mut a = answer_with(Some(Fallback::Sentence(facts.into())), "");
        let first = a.give_up("stalled").expect("the facts");
        let mut read = vec![first];
        while let Some(p) = rt.block_on(a.next_phrase()).expect("phrase") {
            read.push(p);
        }
        assert_eq!(read.join(" "), facts);
        assert!(a.read_from_knowledge());
        assert_eq!(a.stopped.as_deref(), Some("stalled"));
        // The facts were said already: nothing more.
        let mut a = answer_with(Some(Fallback::Sentence(facts.into())), facts);
        assert_eq!(a.give_up("stalled"), None);
        assert_eq!(rt.block_on(a.next_phrase()).expect("phrase"), None);
        // Their first sentence was said: only the rest is read.
        let two = format!("{facts} It has a coin deposit machine.");
        let mut a = answer_with(Some(Fallback::Sentence(two)), facts);
        assert_eq!(a.give_up("stalled").as_deref(), Some("It has a coin deposit machine."));
        assert_eq!(rt.block_on(a.next_phrase()).expect("phrase"), None);
        // Only the "I don't know" line: not read in a stalled model's place.
        let mut a = answer_with(Some(Fallback::DontKnow("I don't know that.".into())), "");
        assert_eq!(a.give_up("stalled"), None);
        assert_eq!(rt.block_on(a.next_phrase()).expect("phrase"), None);
    }

    #[test]
    fn a_sentence_read_after_a_hanging_phrase_goes_on_from_it() {
        let facts = "The Downtown branch is at 12 Harbor Street, next to the central station.";
        // The model said the first clause in its own case, then failed a check.
        let mut a = answer_with(
            Some(Fallback::Sentence(facts.into())),
            "The downtown branch is at 12 Harbor Street,",
        );
        let first = a.read_fallback().expect("the rest of the facts");
        let mut read = vec![first];
        read.extend(a.reading.drain(..));
        let read = read.join(" ");
        assert!(!read.contains("Harbor Street"), "said twice: {read}");
        assert!(read.contains("central station"), "{read}");
        assert!(already_said("It costs 3.5% a year.", "3.5%"));
        assert!(!already_said("The Downtown branch", "Down"), "whole words only");
        assert!(!already_said("anything", " , "));
    }

    #[test]
    fn a_sentence_read_after_a_hanging_phrase_must_add_to_it() {
        let said = "The Harbor Saver account pays 3.5% interest a year,";
        assert!(!adds_to(
            "The Harbor Saver account pays 3.5 percent interest a year, paid monthly.",
            said
        ));
        assert!(adds_to("Blocking is free.", "You can block a lost card,"));
        assert!(adds_to(
            "A replacement card arrives in 5 working days.",
            "A replacement card arrives,"
        ));
    }
}
