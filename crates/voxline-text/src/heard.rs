//! English transcript normalisation for scoring (after the rules of
//! Whisper's `EnglishTextNormalizer`: lower case, bracketed asides and
//! hesitations removed, common contractions expanded, British spellings
//! made American, spelled-out numbers written as digits, punctuation
//! dropped), and the word error rate between two texts.
//!
//! Covered: the rules that change scores on telephone speech (cardinals
//! below a million, "and" inside numbers, `%`, ordinary contractions, a
//! short list of British spellings). Not covered: currency amounts,
//! ordinals, decimals and Whisper's full 1,700-word spelling table.

use crate::numbers::word_value;

/// Hesitations Whisper's normaliser removes.
const FILLERS: &[&str] = &["hmm", "mm", "mhm", "mmm", "uh", "um", "uhm", "er", "ah"];

/// Contractions expanded (after lower-casing, before punctuation goes).
const CONTRACTIONS: &[(&str, &str)] = &[
    ("won't", "will not"),
    ("can't", "can not"),
    ("cannot", "can not"),
    ("let's", "let us"),
    ("ain't", "aint"),
    ("y'all", "you all"),
    ("n't", " not"),
    ("'re", " are"),
    ("'ll", " will"),
    ("'ve", " have"),
    ("'m", " am"),
    ("'d", " would"),
];

/// British → American spellings.
const SPELLINGS: &[(&str, &str)] = &[
    ("colour", "color"),
    ("favour", "favor"),
    ("favourite", "favorite"),
    ("honour", "honor"),
    ("behaviour", "behavior"),
    ("centre", "center"),
    ("metre", "meter"),
    ("theatre", "theater"),
    ("cheque", "check"),
    ("organise", "organize"),
    ("realise", "realize"),
    ("recognise", "recognize"),
    ("apologise", "apologize"),
    ("cancelled", "canceled"),
    ("travelled", "traveled"),
    ("grey", "gray"),
    ("licence", "license"),
    ("programme", "program"),
    ("okay", "ok"),
];

/// Normalises an English transcript for scoring.
pub fn normalize_english(text: &str) -> String {
    let mut s = remove_bracketed(&text.to_lowercase());
    s = s.replace(['\u{2019}', '\u{2018}'], "'");
    for (from, to) in CONTRACTIONS {
        s = s.replace(from, to);
    }
    s = s.replace('%', " percent ");
    // Digits keep their decimal point and thousands commas ("1,000" → "1000").
    let chars: Vec<char> = s.chars().collect();
    let mut cleaned = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits =
            i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() {
            cleaned.push(c);
        } else if c == ',' && between_digits {
        } else if c == '.' && between_digits {
            cleaned.push('.');
        } else if c == '\'' {
            // "americans'" / "o'clock": the apostrophe goes, the word stays.
        } else {
            cleaned.push(' ');
        }
    }
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .filter(|w| !FILLERS.contains(w))
        .map(|w| SPELLINGS.iter().find(|(b, _)| *b == w).map_or(w, |(_, a)| a))
        .collect();
    numbers_to_digits(&words).join(" ")
}

fn remove_bracketed(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '[' | '(' | '<' => depth += 1,
            ']' | ')' | '>' if depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Rewrites runs of number words as digits: "twenty one" → "21", "two
/// hundred and five" → "205"; "one two three" stays three numbers.
fn numbers_to_digits(words: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let Some(first) = word_value(words[i]) else {
            out.push(words[i].to_string());
            i += 1;
            continue;
        };
        // total = completed thousands; current = the part below a thousand.
        let (mut total, mut current) = (0u64, first);
        let mut last_small = first;
        let mut j = i + 1;
        while j < words.len() {
            let w = words[j];
            if w == "hundred" && current > 0 && current < 10 {
                current *= 100;
                last_small = 100;
            } else if w == "thousand" && current > 0 {
                total += current * 1000;
                current = 0;
                last_small = 1000;
            } else if w == "and" && last_small >= 100 && words.get(j + 1).and_then(|n| word_value(n)).is_some() {
            } else if let Some(n) = word_value(w) {
                // A unit may follow a ten ("twenty one") or a hundred/thousand.
                let follows_ten = (20..100).contains(&last_small) && last_small % 10 == 0 && (1..10).contains(&n);
                let follows_big = last_small >= 100 && n < 100;
                if !(follows_ten || follows_big) {
                    break;
                }
                current += n;
                last_small = n;
            } else {
                break;
            }
            j += 1;
        }
        out.push((total + current).to_string());
        i = j;
    }
    out
}

/// Word errors (substitutions + deletions + insertions) of `hypothesis`
/// against `reference`, and the reference's word count, both normalised.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalize_english(reference);
    let h = normalize_english(hypothesis);
    let rw: Vec<&str> = r.split_whitespace().collect();
    let hw: Vec<&str> = h.split_whitespace().collect();
    (strsim::generic_levenshtein(&rw, &hw), rw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_case_and_asides_go() {
        assert_eq!(
            normalize_english("And so, my fellow Americans: [MUSIC] ask not!"),
            "and so my fellow americans ask not"
        );
    }

    #[test]
    fn spelled_and_written_numbers_meet() {
        assert_eq!(
            normalize_english("One two three, four five six seven eight nine ten."),
            "1 2 3 4 5 6 7 8 9 10"
        );
        assert_eq!(
            normalize_english("1, 2, 3, 4, 5, 6, 7, 8, 9, 10."),
            "1 2 3 4 5 6 7 8 9 10"
        );
        assert_eq!(normalize_english("twenty-one"), "21");
        assert_eq!(normalize_english("two hundred and five dollars"), "205 dollars");
        assert_eq!(normalize_english("three thousand four hundred"), "3400");
        assert_eq!(normalize_english("1,000 calls"), "1000 calls");
        assert_eq!(normalize_english("fifty percent"), "50 percent");
        assert_eq!(normalize_english("50%"), "50 percent");
    }

    #[test]
    fn contractions_spellings_and_fillers() {
        assert_eq!(
            normalize_english("Um, I can't see the colour."),
            "i can not see the color"
        );
        assert_eq!(normalize_english("We're here, aren't we?"), "we are here are not we");
    }

    #[test]
    fn word_error_counts() {
        assert_eq!(word_errors("the quick brown fox", "The quick brown fox."), (0, 4));
        assert_eq!(word_errors("the quick brown fox", "a quick fox jumps"), (3, 4));
        assert_eq!(word_errors("one two", ""), (2, 2));
    }
}
