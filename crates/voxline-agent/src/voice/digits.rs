//! Digit collection: an entry of a known length the agent asked for (ended
//! early by `#`), and the keys a caller types ahead before being asked,
//! which answer the next prompt (and spare the caller hearing it).

/// Keys typed ahead kept at most.
const TYPE_AHEAD_MAX: usize = 32;

/// The caller's DTMF keys on one call.
#[derive(Debug, Default, Clone)]
pub struct DigitCollector {
    /// The length of the entry being collected.
    collecting: Option<usize>,
    digits: String,
    /// Keys pressed before the agent asked for them (since the caller last spoke).
    typed_ahead: String,
    /// The entry asked for last may be written in clear.
    keep: bool,
}

impl DigitCollector {
    /// An entry is being collected.
    pub fn is_collecting(&self) -> bool {
        self.collecting.is_some()
    }

    /// Starts collecting `length` digits (`keep`: the pack lets them be
    /// written in clear). Keys typed ahead count: returns the entry when
    /// they complete it (the rest of them is dropped).
    pub fn start(&mut self, length: usize, keep: bool) -> Option<String> {
        self.collecting = Some(length);
        self.keep = keep;
        self.digits.clear();
        for d in std::mem::take(&mut self.typed_ahead).chars() {
            if let Some(done) = collect_digit(&mut self.digits, d, length) {
                self.collecting = None;
                return Some(done);
            }
        }
        None
    }

    /// A key: the entry when it completes one. A key while nothing is
    /// collected is kept as typed ahead.
    pub fn key(&mut self, digit: char) -> Option<String> {
        match self.collecting {
            Some(length) => {
                let done = collect_digit(&mut self.digits, digit, length);
                if done.is_some() {
                    self.collecting = None;
                }
                done
            }
            None => {
                if self.typed_ahead.len() < TYPE_AHEAD_MAX {
                    self.typed_ahead.push(digit);
                }
                None
            }
        }
    }

    /// An entry as transcripts and logs show it: in clear when the pack
    /// keeps it, else only how many digits ("4 digits").
    pub fn shown(&self, entry: &str) -> String {
        if self.keep {
            return entry.to_string();
        }
        match entry.chars().filter(|c| *c != '#').count() {
            1 => "1 digit".into(),
            n => format!("{n} digits"),
        }
    }

    /// The caller spoke: keys typed ahead no longer answer anything.
    pub fn caller_spoke(&mut self) {
        self.typed_ahead.clear();
    }

    /// The entry timed out: collecting stops; returns what was keyed of it
    /// (`None` when nothing was being collected).
    pub fn timed_out(&mut self) -> Option<String> {
        self.collecting.take().map(|_| std::mem::take(&mut self.digits))
    }

    /// Whether the keys typed ahead already give an entry of `length` in
    /// full (not a short one ended by `#`): its prompt need not be said.
    pub fn answers_prompt(&self, length: usize) -> bool {
        let mut digits = String::new();
        self.typed_ahead
            .chars()
            .find_map(|d| collect_digit(&mut digits, d, length))
            .is_some_and(|entry| entry.len() == length)
    }
}

/// Adds a keyed digit to those being collected; returns them once `#` ends
/// them or `length` are there.
fn collect_digit(digits: &mut String, digit: char, length: usize) -> Option<String> {
    if digit != '#' {
        digits.push(digit);
    }
    (digit == '#' || digits.len() >= length).then(|| std::mem::take(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_end_at_their_length_or_the_hash_key() {
        let mut c = DigitCollector::default();
        assert_eq!(c.start(4, false), None);
        assert_eq!(c.key('4'), None);
        assert_eq!(c.key('3'), None);
        assert_eq!(c.key('#'), Some("43".into()));
        assert!(!c.is_collecting());
        assert_eq!(c.start(4, false), None);
        for d in "123".chars() {
            assert_eq!(c.key(d), None);
        }
        assert_eq!(c.key('4'), Some("1234".into()));
    }

    #[test]
    fn keys_typed_ahead_answer_the_next_prompt_until_the_caller_speaks() {
        let mut c = DigitCollector::default();
        for d in "43217".chars() {
            assert_eq!(c.key(d), None, "nothing asked yet");
        }
        assert!(c.answers_prompt(4) && !c.answers_prompt(6));
        assert_eq!(c.start(4, false), Some("4321".into()), "typed ahead completes it");
        assert!(!c.answers_prompt(4), "the keys were used (the rest dropped)");
        c.key('4');
        c.key('3');
        c.key('#');
        assert!(!c.answers_prompt(4), "a short entry does not answer it");
        c.caller_spoke();
        assert_eq!(c.start(2, false), None, "speech forgot the keys");
        assert_eq!(c.key('9'), None);
        assert_eq!(c.timed_out(), Some("9".into()));
        assert_eq!(c.timed_out(), None, "nothing collected any more");
    }

    #[test]
    fn an_entry_shows_as_its_length_unless_the_pack_keeps_it() {
        let mut c = DigitCollector::default();
        c.start(8, false);
        assert_eq!(c.shown("12345678"), "8 digits");
        assert_eq!(c.shown("1#"), "1 digit");
        c.start(5, true);
        assert_eq!(c.shown("04217"), "04217");
    }

    #[test]
    fn type_ahead_is_bounded() {
        let mut c = DigitCollector::default();
        for _ in 0..100 {
            c.key('1');
        }
        assert_eq!(c.start(TYPE_AHEAD_MAX + 1, false), None, "only 32 keys were kept");
    }
}
