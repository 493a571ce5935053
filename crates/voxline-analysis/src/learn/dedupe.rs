//! Near-duplicate text: the overlap (Jaccard) of two texts' word triples,
//! after case, punctuation and spacing are set aside. 1.0 is the same words
//! in the same order; a section reworded in a few places stays high.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// A text's fingerprint: the hashes of its word triples (its words, when it
/// has fewer than three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shingles(HashSet<u64>);

impl Shingles {
    /// The fingerprint of `text`.
    pub fn of(text: &str) -> Shingles {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let hash = |ws: &[String]| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            ws.hash(&mut h);
            h.finish()
        };
        let set = if words.len() < 3 {
            words.iter().map(|w| hash(std::slice::from_ref(w))).collect()
        } else {
            words.windows(3).map(hash).collect()
        };
        Shingles(set)
    }

    /// How alike two texts are, 0 to 1.
    pub fn similarity(&self, other: &Shingles) -> f32 {
        if self.0.is_empty() || other.0.is_empty() {
            return 0.0;
        }
        let common = self.0.intersection(&other.0).count();
        common as f32 / (self.0.len() + other.0.len() - common) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_words_are_one_and_a_reworded_sentence_is_lower() {
        let a = Shingles::of("A transfer abroad costs 25 dollars and arrives in 2 working days.");
        let b = Shingles::of("a TRANSFER abroad costs 25 dollars, and arrives in 2 working days");
        assert_eq!(a.similarity(&b), 1.0);
        let c = Shingles::of("A transfer abroad costs 25 dollars and arrives within 3 working days.");
        let s = a.similarity(&c);
        assert!(s > 0.4 && s < 0.8, "{s}");
        let d = Shingles::of("Branches open at 9 on weekdays.");
        assert!(a.similarity(&d) < 0.05);
    }
}
