//! English number words, both ways: a number said in words (cardinal,
//! ordinal, year, digit by digit) and the value of a number word.

/// The words for 0 to 19.
pub const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
/// The words for the tens (index 2 = "twenty").
pub const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
/// A number in words ("one thousand two hundred and five" style without
/// "and": "one thousand two hundred five").
pub fn cardinal(n: u64) -> String {
    fn below_thousand(n: u64, out: &mut Vec<String>) {
        let (h, rest) = (n / 100, n % 100);
        if h > 0 {
            out.push(format!("{} hundred", ONES[h as usize]));
        }
        if rest >= 20 {
            let (t, u) = (rest / 10, rest % 10);
            out.push(if u > 0 {
                format!("{}-{}", TENS[t as usize], ONES[u as usize])
            } else {
                TENS[t as usize].to_string()
            });
        } else if rest > 0 {
            out.push(ONES[rest as usize].to_string());
        }
    }
    if n == 0 {
        return "zero".into();
    }
    let mut out = Vec::new();
    let mut rest = n;
    for (scale, name) in [
        (1_000_000_000_000u64, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ] {
        if rest >= scale {
            below_thousand((rest / scale).min(999), &mut out);
            out.push(name.into());
            rest %= scale;
        }
    }
    below_thousand(rest, &mut out);
    out.join(" ")
}

/// An ordinal in words ("twenty-first").
pub fn ordinal(n: u64) -> String {
    let words = cardinal(n);
    let (head, last) = match words.rfind([' ', '-']) {
        Some(i) => (&words[..=i], &words[i + 1..]),
        None => ("", words.as_str()),
    };
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".into(),
        "three" => "third".into(),
        "five" => "fifth".into(),
        "eight" => "eighth".into(),
        "nine" => "ninth".into(),
        "twelve" => "twelfth".into(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

/// A year as people say it ("nineteen ninety-nine", "twenty twenty-six",
/// "two thousand five").
pub fn year(n: u64) -> String {
    match n {
        2000..=2009 => cardinal(n),
        1000..=9999 if n % 100 == 0 => format!("{} hundred", cardinal(n / 100)),
        1000..=9999 => {
            let (hi, lo) = (n / 100, n % 100);
            let lo = if lo < 10 {
                format!("oh {}", ONES[lo as usize])
            } else {
                cardinal(lo)
            };
            format!("{} {lo}", cardinal(hi))
        }
        _ => cardinal(n),
    }
}

/// Each digit of `s` as a word ("42" → "four two"); other characters are skipped.
pub fn digits_one_by_one(s: &str) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| ONES[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of a number word below a hundred, if it is one.
pub fn word_value(word: &str) -> Option<u64> {
    if let Some(i) = ONES.iter().position(|u| *u == word) {
        return Some(i as u64);
    }
    if let Some(i) = TENS.iter().position(|t| !t.is_empty() && *t == word) {
        return Some(i as u64 * 10);
    }
    let (tens, unit) = word.split_once('-')?;
    match (word_value(tens), word_value(unit)) {
        (Some(t), Some(u)) if t >= 20 && t % 10 == 0 && (1..10).contains(&u) => Some(t + u),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_values_meet() {
        for n in [0u64, 7, 13, 20, 21, 45, 99] {
            let w = cardinal(n);
            assert_eq!(word_value(&w), Some(n), "{w}");
        }
        assert_eq!(word_value("hundred"), None);
        assert_eq!(word_value("twenty-zero"), None);
        assert_eq!(word_value("five-twenty"), None);
        assert_eq!(digits_one_by_one("4-0 2"), "four zero two");
    }
}
