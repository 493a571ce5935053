//! Text normalised for speaking on the phone: what a person would say
//! for money, times, dates, percentages, ordinals and numbers, and long
//! digit strings (account, card and phone numbers) read digit by digit in
//! groups. English rules; for other languages the text goes to espeak-ng
//! as it is (espeak-ng reads numbers in its own languages).

use crate::numbers::{cardinal, digits_one_by_one, ordinal, year};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Digit strings this long or longer are read digit by digit.
const DIGIT_BY_DIGIT: usize = 5;

/// A token's kind, for the rules below.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// Normalises English text for speaking.
pub fn normalize_english(text: &str) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        // Leading/trailing punctuation is kept around the spoken form.
        let start = tok
            .find(|c: char| c.is_alphanumeric() || "$£€+".contains(c))
            .unwrap_or(tok.len());
        let end = tok
            .rfind(|c: char| c.is_alphanumeric() || c == '%')
            .map_or(start, |e| e + tok[e..].chars().next().map_or(1, char::len_utf8));
        let (pre, core, post) = if start < end {
            (&tok[..start], &tok[start..end], &tok[end..])
        } else {
            (tok, "", "")
        };
        // "3:30 pm", "9 am": the meridiem joins the time.
        let next = tokens
            .get(i + 1)
            .map(|t| t.trim_end_matches(['.', ',', ';', '!', '?']).to_lowercase());
        let meridiem = next
            .as_deref()
            .filter(|n| matches!(*n, "am" | "pm" | "a.m" | "p.m"))
            .map(|n| if n.starts_with('a') { "a m" } else { "p m" });
        let (spoken, used_next) = speak_token(core, meridiem);
        let post = if used_next {
            // Keep the punctuation that followed the meridiem.
            let n = tokens[i + 1];
            &n[n.trim_end_matches(['.', ',', ';', '!', '?']).len()..]
        } else {
            post
        };
        out.push(format!("{pre}{spoken}{post}"));
        i += if used_next { 2 } else { 1 };
    }
    out.join(" ")
}

/// The spoken form of one token (no surrounding punctuation), and whether
/// it took the meridiem that followed it.
fn speak_token(core: &str, meridiem: Option<&str>) -> (String, bool) {
    if core.is_empty() || !core.chars().any(|c| c.is_ascii_digit()) {
        return (core.to_string(), false);
    }
    let lower = core.to_lowercase();
    // Money: $12.50, £3, €1,200.
    if let Some((sym, amount)) = ["$", "£", "€"]
        .iter()
        .find_map(|s| core.strip_prefix(s).map(|a| (*s, a)))
    {
        if let Some(words) = money(sym, amount) {
            return (words, false);
        }
    }
    // Percentages.
    if let Some(num) = core.strip_suffix('%') {
        if let Some(words) = number(num) {
            return (format!("{words} percent"), false);
        }
    }
    // Times: 3:30, 15:45, 9am, 10:00pm.
    let (clock, attached) = match ["am", "pm"].iter().find(|m| lower.ends_with(*m)) {
        Some(m) => (&core[..core.len() - 2], Some(if *m == "am" { "a m" } else { "p m" })),
        None => (core, None),
    };
    if let Some(words) = time(clock) {
        return match (attached, meridiem) {
            (Some(m), _) => (format!("{words} {m}"), false),
            (None, Some(m)) => (format!("{words} {m}"), true),
            (None, None) => (words, false),
        };
    }
    if attached.is_some() && is_digits(clock) {
        if let Ok(h) = clock.parse::<u64>() {
            if (1..=12).contains(&h) {
                return (format!("{} {}", cardinal(h), attached.unwrap_or_default()), false);
            }
        }
    }
    if is_digits(core) && meridiem.is_some() {
        if let Ok(h) = core.parse::<u64>() {
            if (1..=12).contains(&h) {
                return (format!("{} {}", cardinal(h), meridiem.unwrap_or_default()), true);
            }
        }
    }
    // Dates: 2026-11-29 and 11/29/2026.
    if let Some(words) = date(core) {
        return (words, false);
    }
    // Ordinals: 1st, 22nd, 3rd, 4th.
    for suffix in ["st", "nd", "rd", "th"] {
        if let Some(n) = lower.strip_suffix(suffix).filter(|n| is_digits(n)) {
            if let Ok(v) = n.parse::<u64>() {
                return (ordinal(v), false);
            }
        }
    }
    // Phone and account numbers: +1 555-123-4567, 4111-1111, 12345678.
    let digit_count = core.chars().filter(char::is_ascii_digit).count();
    let phone_like = core.chars().all(|c| c.is_ascii_digit() || "-+().".contains(c))
        && (core.contains('-') || core.starts_with('+'));
    if (is_digits(core) && digit_count >= DIGIT_BY_DIGIT) || (phone_like && digit_count >= 4) {
        let groups: Vec<String> = core
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .map(digits_one_by_one)
            .collect();
        return (groups.join(", "), false);
    }
    // Plain numbers, with thousands commas or decimals.
    if let Some(words) = number(core) {
        return (words, false);
    }
    (core.to_string(), false)
}

/// "1,200" → "one thousand two hundred"; "3.5" → "three point five";
/// "1999" → "nineteen ninety-nine" (four digits from 1100 to 2099 read as
/// a year).
fn number(s: &str) -> Option<String> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if is_digits(f) => (i, Some(f)),
        Some(_) => return None,
        None => (s, None),
    };
    let plain: String = int.chars().filter(|&c| c != ',').collect();
    if !is_digits(&plain) || (int.contains(',') && !valid_thousands(int)) {
        return None;
    }
    let n: u64 = plain.parse().ok()?;
    let mut words = if frac.is_none() && !int.contains(',') && plain.len() == 4 && (1100..=2099).contains(&n) {
        year(n)
    } else {
        cardinal(n)
    };
    if let Some(f) = frac {
        words.push_str(" point ");
        words.push_str(&digits_one_by_one(f));
    }
    Some(words)
}

fn valid_thousands(s: &str) -> bool {
    let mut parts = s.split(',');
    let first = parts.next().unwrap_or_default();
    (1..=3).contains(&first.len()) && is_digits(first) && parts.all(|p| p.len() == 3 && is_digits(p))
}

fn money(sym: &str, amount: &str) -> Option<String> {
    let (unit, units, sub, subs) = match sym {
        "$" => ("dollar", "dollars", "cent", "cents"),
        "£" => ("pound", "pounds", "penny", "pence"),
        _ => ("euro", "euros", "cent", "cents"),
    };
    let (int, frac) = match amount.split_once('.') {
        Some((i, f)) if f.len() == 2 && is_digits(f) => (i, Some(f)),
        Some(_) => return None,
        None => (amount, None),
    };
    let plain: String = int.chars().filter(|&c| c != ',').collect();
    if !is_digits(&plain) || (int.contains(',') && !valid_thousands(int)) {
        return None;
    }
    let whole: u64 = plain.parse().ok()?;
    let cents: u64 = frac.map_or(Ok(0), str::parse).ok()?;
    let name = |n: u64, one: &str, many: &str| format!("{} {}", cardinal(n), if n == 1 { one } else { many });
    Some(match (whole, cents) {
        (w, 0) => name(w, unit, units),
        (0, c) => name(c, sub, subs),
        (w, c) => format!("{} and {}", name(w, unit, units), name(c, sub, subs)),
    })
}

fn time(s: &str) -> Option<String> {
    let (h, m) = s.split_once(':')?;
    if !(1..=2).contains(&h.len()) || m.len() != 2 || !is_digits(h) || !is_digits(m) {
        return None;
    }
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(match m {
        0 => format!("{} o'clock", cardinal(h)),
        1..=9 => format!("{} oh {}", cardinal(h), cardinal(m)),
        _ => format!("{} {}", cardinal(h), cardinal(m)),
    })
}

fn date(s: &str) -> Option<String> {
    let (y, m, d) = if let Some((y, rest)) = s.split_once('-') {
        let (m, d) = rest.split_once('-')?;
        (y, m, d)
    } else {
        let mut p = s.split('/');
        let (m, d, y) = (p.next()?, p.next()?, p.next()?);
        if p.next().is_some() {
            return None;
        }
        (y, m, d)
    };
    if y.len() != 4 || !is_digits(y) || !is_digits(m) || !is_digits(d) || m.len() > 2 || d.len() > 2 {
        return None;
    }
    let (y, m, d): (u64, usize, u64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(format!("{} {}, {}", MONTHS[m - 1], ordinal(d), year(y)))
}

/// Normalises `text` for language `lang` ("en", "en-us"...); other
/// languages pass through unchanged.
pub fn normalize(text: &str, lang: &str) -> String {
    if lang.starts_with("en") {
        normalize_english(text)
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_words() {
        assert_eq!(cardinal(0), "zero");
        assert_eq!(cardinal(21), "twenty-one");
        assert_eq!(cardinal(1205), "one thousand two hundred five");
        assert_eq!(cardinal(3_000_042), "three million forty-two");
        assert_eq!(ordinal(1), "first");
        assert_eq!(ordinal(22), "twenty-second");
        assert_eq!(ordinal(30), "thirtieth");
        assert_eq!(ordinal(112), "one hundred twelfth");
        assert_eq!(year(1999), "nineteen ninety-nine");
        assert_eq!(year(2026), "twenty twenty-six");
        assert_eq!(year(2005), "two thousand five");
        assert_eq!(year(1905), "nineteen oh five");
    }

    #[test]
    fn phone_text_reads_naturally() {
        let n = normalize_english;
        assert_eq!(n("It costs $12.50."), "It costs twelve dollars and fifty cents.");
        assert_eq!(n("A fee of $1 or £3"), "A fee of one dollar or three pounds");
        assert_eq!(n("$1,200 today"), "one thousand two hundred dollars today");
        assert_eq!(n("Rates rose 2.5%."), "Rates rose two point five percent.");
        assert_eq!(n("We open at 9am"), "We open at nine a m");
        assert_eq!(n("until 5:30 pm, daily"), "until five thirty p m, daily");
        assert_eq!(n("at 14:05"), "at fourteen oh five");
        assert_eq!(n("on 2026-11-29."), "on November twenty-ninth, twenty twenty-six.");
        assert_eq!(n("by 12/3/2026"), "by December third, twenty twenty-six");
        assert_eq!(n("the 3rd floor"), "the third floor");
        assert_eq!(
            n("Call 555-123-4567."),
            "Call five five five, one two three, four five six seven."
        );
        assert_eq!(n("Account 12345678"), "Account one two three four five six seven eight");
        assert_eq!(
            n("in 1999 we had 42 branches"),
            "in nineteen ninety-nine we had forty-two branches"
        );
        assert_eq!(n("(about 3)"), "(about three)");
        assert_eq!(n("no numbers here"), "no numbers here");
    }
}
