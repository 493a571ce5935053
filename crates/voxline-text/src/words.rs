//! Whole-word phrase matching: text as padded lower-case words, and
//! whether it holds a phrase as whole words.

/// Lower-case words separated by single spaces, padded with spaces for
/// whole-word `contains`.
pub fn words(text: &str) -> String {
    let s: String = text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect();
    format!(" {} ", s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Whether `text` (from [`words`]) holds any of `phrases` as whole words.
pub fn has_phrase(text: &str, phrases: &[impl AsRef<str>]) -> bool {
    phrases.iter().any(|p| {
        let p = words(p.as_ref());
        !p.trim().is_empty() && text.contains(&p)
    })
}

/// Each index of `tokens` where the words of `phrase` (single spaces)
/// start, in order: for rules that look at the words around a phrase (a
/// denial before it, a person after it).
pub fn phrase_starts<'a>(tokens: &'a [&str], phrase: &str) -> impl Iterator<Item = usize> + 'a {
    let phrase: Vec<String> = phrase.split_whitespace().map(str::to_owned).collect();
    let n = phrase.len();
    (0..tokens.len().saturating_sub(n.saturating_sub(1)))
        .filter(move |&i| n > 0 && tokens[i..i + n].iter().zip(&phrase).all(|(t, p)| *t == p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        let t = words("I'd like to BLOCK my card, please!");
        assert_eq!(t, " i'd like to block my card please ");
        assert!(has_phrase(&t, &["block my card"]));
        assert!(!has_phrase(&t, &["lock"]));
        assert!(!has_phrase(&t, &[""]));
    }

    #[test]
    fn phrase_starts_are_every_whole_word_occurrence() {
        let t = words("no risk, no risk at all");
        let toks: Vec<&str> = t.split_whitespace().collect();
        assert_eq!(phrase_starts(&toks, "no risk").collect::<Vec<_>>(), [0, 2]);
        assert_eq!(phrase_starts(&toks, "at all").collect::<Vec<_>>(), [4]);
        assert_eq!(phrase_starts(&toks, "all at").count(), 0);
        assert_eq!(phrase_starts(&toks, "").count(), 0);
        assert_eq!(phrase_starts(&[], "no").count(), 0);
    }
}
