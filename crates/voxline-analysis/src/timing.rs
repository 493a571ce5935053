//! The items measured on the clock: dead air, one side talking over the
//! other, each side's share of the talking and its speaking rate. Each
//! finding points at the lines it comes from.

use crate::scorecard::Speaker;
use crate::transcript::CallTranscript;

/// A stretch with nobody speaking between two lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The line it follows (the one that ended last before it).
    pub after: usize,
    /// The line that ends it.
    pub before: usize,
    /// When it started, ms.
    pub start_ms: u64,
    /// How long it lasted, ms.
    pub ms: u64,
}

/// The gaps between lines longer than `min_ms`, in order (the silence
/// before the first line and after the last is the recording's, not the
/// call's).
pub fn gaps(call: &CallTranscript, min_ms: u64) -> Vec<Gap> {
    let mut out = Vec::new();
    // The line that reaches furthest so far: a gap starts at its end.
    let mut reach: Option<(usize, u64)> = None;
    for (i, line) in call.lines.iter().enumerate() {
        if let Some((after, end)) = reach {
            if line.start_ms > end && line.start_ms - end > min_ms {
                out.push(Gap {
                    after,
                    before: i,
                    start_ms: end,
                    ms: line.start_ms - end,
                });
            }
        }
        if reach.is_none_or(|(_, end)| line.end_ms > end) {
            reach = Some((i, line.end_ms));
        }
    }
    out
}

/// One side starting to talk while the other speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// The line that started over the other.
    pub line: usize,
    /// The line it was said over.
    pub over: usize,
    /// When it started, ms.
    pub start_ms: u64,
    /// How long both spoke, ms.
    pub ms: u64,
}

/// Where `who` started a line while the other side was speaking and both
/// spoke for more than `min_ms`.
pub fn overlaps(call: &CallTranscript, who: Speaker, min_ms: u64) -> Vec<Overlap> {
    let mut out = Vec::new();
    for (i, line) in call.by(who) {
        let other = call
            .by(who.other())
            .filter(|(_, o)| o.start_ms < line.start_ms && line.start_ms < o.end_ms)
            .map(|(j, o)| (j, o.end_ms.min(line.end_ms) - line.start_ms))
            .max_by_key(|&(_, ms)| ms);
        if let Some((over, ms)) = other.filter(|&(_, ms)| ms > min_ms) {
            out.push(Overlap {
                line: i,
                over,
                start_ms: line.start_ms,
                ms,
            });
        }
    }
    out
}

/// How long `who` spoke, ms (their lines' union: a recogniser's segments
/// may overlap).
pub fn talk_ms(call: &CallTranscript, who: Speaker) -> u64 {
    let mut total = 0;
    let mut covered_to = 0;
    for (_, l) in call.by(who) {
        let start = l.start_ms.max(covered_to);
        if l.end_ms > start {
            total += l.end_ms - start;
        }
        covered_to = covered_to.max(l.end_ms);
    }
    total
}

/// `who`'s share of the talking time, 0–1; `None` when nobody spoke.
pub fn talk_ratio(call: &CallTranscript, who: Speaker) -> Option<f64> {
    let mine = talk_ms(call, who);
    let all = mine + talk_ms(call, who.other());
    (all > 0).then(|| mine as f64 / all as f64)
}

/// `who`'s words per minute of their own talking time; `None` when they
/// said too little to tell (under 10 words or 5 s).
pub fn words_per_minute(call: &CallTranscript, who: Speaker) -> Option<f64> {
    let words: usize = call.by(who).map(|(_, l)| l.text.split_whitespace().count()).sum();
    let ms = talk_ms(call, who);
    (words >= 10 && ms >= 5_000).then(|| words as f64 * 60_000.0 / ms as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Line;

    fn line(speaker: Speaker, start_ms: u64, end_ms: u64, text: &str) -> Line {
        Line {
            speaker,
            start_ms,
            end_ms,
            text: text.into(),
            words: Vec::new(),
        }
    }

    fn call(lines: Vec<Line>) -> CallTranscript {
        CallTranscript::new(lines, None)
    }

    use Speaker::{Agent, Customer};

    #[test]
    fn gaps_run_from_the_furthest_end_so_far() {
        let c = call(vec![
            line(Agent, 0, 5000, "a long line"),
            line(Customer, 1000, 2000, "inside it"),
            line(Customer, 14000, 15000, "after nine seconds"),
            line(Agent, 15500, 16000, "soon after"),
        ]);
        let g = gaps(&c, 8000);
        assert_eq!(
            g,
            vec![Gap {
                after: 0,
                before: 2,
                start_ms: 5000,
                ms: 9000
            }]
        );
        assert_eq!(gaps(&c, 400).len(), 2);
    }

    #[test]
    fn only_the_side_that_starts_over_the_other_talks_over_it() {
        let c = call(vec![
            line(Customer, 0, 6000, "a long question"),
            line(Agent, 4000, 8000, "the agent cuts in"),
            line(Customer, 7500, 7900, "short"),
        ]);
        let agent = overlaps(&c, Agent, 700);
        assert_eq!(
            agent,
            vec![Overlap {
                line: 1,
                over: 0,
                start_ms: 4000,
                ms: 2000
            }]
        );
        // The customer's 400 ms over the agent is under the threshold.
        assert!(overlaps(&c, Customer, 700).is_empty());
        assert_eq!(overlaps(&c, Customer, 300).len(), 1);
    }

    #[test]
    fn talk_ratio_and_rate_count_each_side_once() {
        let c = call(vec![
            line(
                Agent,
                0,
                6000,
                "one two three four five six seven eight nine ten eleven twelve",
            ),
            line(
                Agent,
                3000,
                9000,
                "thirteen fourteen fifteen sixteen seventeen eighteen",
            ),
            line(Customer, 10000, 13000, "okay then"),
        ]);
        assert_eq!(talk_ms(&c, Agent), 9000);
        let r = talk_ratio(&c, Agent).expect("ratio");
        assert!((r - 0.75).abs() < 1e-9, "{r}");
        let wpm = words_per_minute(&c, Agent).expect("rate");
        assert!((wpm - 120.0).abs() < 1e-9, "{wpm}");
        assert_eq!(words_per_minute(&c, Customer), None, "two words: too few to tell");
        assert_eq!(talk_ratio(&call(vec![]), Agent), None);
    }
}
