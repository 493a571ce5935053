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
}
