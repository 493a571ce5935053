//! Text lists the benchmarks read (questions, phrases, sentences): one item
//! per line; blank lines and `#` comments are skipped.

use anyhow::Context;
use std::path::Path;

/// The items of `text`.
pub fn items(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The items of the file at `path`; an unreadable file names itself.
pub fn read(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(items(&text).map(String::from).collect())
}
