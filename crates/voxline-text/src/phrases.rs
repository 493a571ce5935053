//! Cuts streamed text (LLM deltas) into phrases to speak as soon as they
//! are complete. The first phrase goes at the first clause break once it
//! has a few words (so the caller hears the agent early); later phrases at
//! sentence ends, or at a clause break once they grow long. A break is
//! punctuation followed by a space: "3.5", "e.g." and "Dr. Smith" stay whole.

/// Abbreviations whose period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "no", "approx", "jr", "sr", "mt", "ave",
];

/// Phrase sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitterConfig {
    /// The first phrase may end at a clause break (",;:") once it has this many words.
    pub first_min_words: usize,
    /// Later phrases end at a clause break once they have this many words.
    pub clause_min_words: usize,
    /// A phrase longer than this many characters is cut at its last space.
    pub max_chars: usize,
}

impl Default for SplitterConfig {
    fn default() -> SplitterConfig {
        SplitterConfig {
            first_min_words: 3,
            clause_min_words: 8,
            max_chars: 200,
        }
    }
}

/// The phrase splitter of one reply.
#[derive(Debug, Clone)]
pub struct PhraseSplitter {
    cfg: SplitterConfig,
    buf: String,
    emitted: usize,
}

impl PhraseSplitter {
    /// A splitter for a new reply.
    pub fn new(cfg: SplitterConfig) -> PhraseSplitter {
        PhraseSplitter {
            cfg,
            buf: String::new(),
            emitted: 0,
        }
    }

    /// Takes the next piece of text; returns the phrases it completed.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = self.next_break() {
            let phrase: String = self.buf[..end].trim().to_string();
            self.buf.drain(..end);
            if !phrase.is_empty() {
                self.emitted += 1;
                out.push(phrase);
            }
        }
        out
    }

    /// The end of the reply: whatever is left.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf).trim().to_string();
        (!rest.is_empty()).then(|| {
            self.emitted += 1;
            rest
        })
    }

    /// Byte index just after the next complete phrase, if any.
    fn next_break(&self) -> Option<usize> {
        let min_clause_words = if self.emitted == 0 {
            self.cfg.first_min_words
        } else {
            self.cfg.clause_min_words
        };
        let b = self.buf.as_bytes();
        for (i, c) in self.buf.char_indices() {
            let after = i + c.len_utf8();
            // A break needs what follows: a space (or a newline).
            let followed = b.get(after).is_some_and(|n| n.is_ascii_whitespace());
            if c == '\n' && !self.buf[..i].trim().is_empty() {
                return Some(after);
            }
            if !followed {
                continue;
            }
            let words = self.buf[..i].split_whitespace().count();
            match c {
                '.' | '!' | '?' => {
                    if c == '.' && self.is_abbreviation(i) {
                        continue;
                    }
                    return Some(after);
                }
                ',' | ';' | ':' if words >= min_clause_words => return Some(after),
                _ => {}
            }
            if after > self.cfg.max_chars {
                // Too long without a break: cut at the last space.
                let cut = self.buf[..after].rfind(' ').filter(|&s| s > 0)?;
                return Some(cut + 1);
            }
        }
        None
    }

    fn is_abbreviation(&self, dot: usize) -> bool {
        let word = self.buf[..dot]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default()
            .to_lowercase();
        ABBREVIATIONS.contains(&word.as_str()) || (word.len() == 1 && word.chars().all(char::is_alphabetic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(deltas: &[&str]) -> Vec<String> {
        let mut s = PhraseSplitter::new(SplitterConfig::default());
        let mut out: Vec<String> = deltas.iter().flat_map(|d| s.push(d)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn the_first_clause_goes_early_and_sentences_follow() {
        assert_eq!(
            split(&[
                "Sure, I can",
                " help with that, of course. Your card",
                " is blocked now. Anything else?"
            ]),
            vec![
                "Sure, I can help with that,",
                "of course.",
                "Your card is blocked now.",
                "Anything else?"
            ]
        );
    }

    #[test]
    fn numbers_and_abbreviations_do_not_break() {
        assert_eq!(
            split(&["The fee is 3.5 percent, e.g. on transfers. Dr. Smith agrees."]),
            vec!["The fee is 3.5 percent,", "e.g. on transfers.", "Dr. Smith agrees."]
        );
    }

    #[test]
    fn a_phrase_waits_for_what_follows_its_punctuation() {
        let mut s = PhraseSplitter::new(SplitterConfig::default());
        assert!(
            s.push("We open at nine.").is_empty(),
            "the period may be a decimal point"
        );
        assert_eq!(s.push(" Bye"), vec!["We open at nine."]);
        assert_eq!(s.finish().as_deref(), Some("Bye"));
    }

    #[test]
    fn long_text_without_breaks_is_cut_at_a_space() {
        let long = "word ".repeat(60);
        let out = split(&[&long]);
        assert!(out.len() >= 2, "{out:?}");
        assert!(out.iter().all(|p| p.len() <= 200), "{out:?}");
    }
}
