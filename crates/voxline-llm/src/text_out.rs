//! Turning generated token bytes into text deltas: whole UTF-8 characters
//! only, and stop strings cut out (text that might begin a stop string is
//! held back until it is clear it does not).

/// Joins token pieces into valid UTF-8, holding back an incomplete
/// character until its last byte arrives.
#[derive(Debug, Default)]
pub struct Utf8Joiner {
    pending: Vec<u8>,
}

impl Utf8Joiner {
    /// Adds the bytes of one token; returns the text now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    // The first `good` bytes were just checked: lossless.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..good]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for more.
                        None => {
                            self.pending.drain(..good);
                            return out;
                        }
                        // Invalid bytes: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..good + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

/// What [`StopFilter::push`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Text safe to pass on (may be empty).
    Text(String),
    /// A stop string was reached: pass on this text, then end the reply.
    Stop(String),
}

/// Cuts a reply at the first of its stop strings.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    /// A filter for these stop strings (empty strings are ignored).
    pub fn new(stops: &[String]) -> StopFilter {
        StopFilter {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds generated text.
    pub fn push(&mut self, text: &str) -> Filtered {
        if self.stops.is_empty() {
            return Filtered::Text(text.to_string());
        }
        self.held.push_str(text);
        let first = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min();
        if let Some(at) = first {
            let out = self.held[..at].to_string();
            self.held.clear();
            return Filtered::Stop(out);
        }
        // Hold back the longest tail that could still grow into a stop string.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        Filtered::Text(out)
    }

    /// The held-back text, when the reply ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of `stop`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && stop.as_bytes().starts_with(&text.as_bytes()[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_tokens_waits_for_its_last_byte() {
        let mut j = Utf8Joiner::default();
        let euro = "€".as_bytes();
        assert_eq!(j.push(b"5 "), "5 ");
        assert_eq!(j.push(&euro[..2]), "");
        assert_eq!(j.push(&euro[2..]), "€");
        assert_eq!(j.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(j.push(&euro[..1]), "");
        assert_eq!(j.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_strings_cut_the_reply_even_across_deltas() {
        let mut f = StopFilter::new(&["\nUser:".to_string(), "END".to_string()]);
        assert_eq!(f.push("Hello"), Filtered::Text("Hello".into()));
        assert_eq!(f.push(" there\nUs"), Filtered::Text(" there".into()));
        assert_eq!(f.push("ually"), Filtered::Text("\nUsually".into()));
        assert_eq!(f.push(" E"), Filtered::Text(" ".into()));
        assert_eq!(f.push("ND and more"), Filtered::Stop("".into()));
        let mut f = StopFilter::new(&["stop".to_string()]);
        assert_eq!(f.push("go sto"), Filtered::Text("go ".into()));
        assert_eq!(f.finish(), "sto");
        let mut none = StopFilter::new(&[]);
        assert_eq!(none.push("anything"), Filtered::Text("anything".into()));
    }
}
