//! A document as learn reads it: a title and sections (a heading and its
//! text), from Markdown, plain text, HTML, PDF or DOCX. Tables become one
//! line per row ("Header: cell; Header: cell."), which reads well to the
//! model and aloud.

use super::{docx, html, LearnError};
use std::path::{Path, PathBuf};

/// One section of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Its heading (a sub-heading as "Parent › Child").
    pub heading: String,
    /// Its text, paragraphs separated by blank lines.
    pub body: String,
}

/// A document read for learning.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file it came from.
    pub source: PathBuf,
    /// Its title (its first heading, its metadata, else its file name).
    pub title: String,
    /// Its sections, in order.
    pub sections: Vec<Section>,
}

/// The formats learn reads, by file extension.
pub const FORMATS: &[&str] = &["md", "markdown", "txt", "html", "htm", "pdf", "docx"];

/// Reads `path` by its extension.
pub fn read_document(path: &Path) -> Result<Document, LearnError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let read = || std::fs::read(path).map_err(|e| LearnError::read(path, e));
    let text =
        |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| LearnError::format(path, "is not UTF-8 text".into()));
    let fallback = title_from_name(path);
    let (title, sections) = match ext.as_str() {
        "md" | "markdown" => markdown(&text(read()?)?),
        "txt" => plain(&text(read()?)?),
        "html" | "htm" => html::read(&String::from_utf8_lossy(&read()?)),
        "docx" => docx::read(&read()?).map_err(|why| LearnError::format(path, why))?,
        "pdf" => plain(&pdf_text(path, &read()?)?),
        _ => {
            return Err(LearnError::Unsupported {
                path: path.to_path_buf(),
                ext,
            })
        }
    };
    let sections: Vec<Section> = sections
        .into_iter()
        .map(|s| Section {
            heading: s.heading.trim().to_string(),
            body: s.body.trim().to_string(),
        })
        .collect();
    if sections.iter().all(|s| s.body.is_empty()) {
        let why = if ext == "pdf" {
            "holds no text (a scanned PDF needs text recognition first)"
        } else {
            "holds no text"
        };
        return Err(LearnError::NoText {
            path: path.to_path_buf(),
            why: why.into(),
        });
    }
    Ok(Document {
        source: path.to_path_buf(),
        title: title.filter(|t| !t.trim().is_empty()).unwrap_or(fallback),
        sections,
    })
}

/// The text of a PDF (pdf-extract); a file it cannot read, or that makes
/// it fail, is an error naming the file, never a crash.
fn pdf_text(path: &Path, bytes: &[u8]) -> Result<String, LearnError> {
    let got = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    match got {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(LearnError::format(path, format!("is not a readable PDF: {e}"))),
        Err(_) => Err(LearnError::format(
            path,
            "is not a readable PDF (its content could not be parsed)".into(),
        )),
    }
}

/// "fees-and-charges_2027.txt" → "Fees and charges 2027".
fn title_from_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
        .unwrap_or_default();
    let mut chars = stem.trim().chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => "Document".into(),
    }
}

/// Builds sections from headings (level, text) and text blocks in order;
/// headings below level 2 are named under their parent.
#[derive(Default)]
pub(crate) struct Outline {
    title: Option<String>,
    stack: Vec<(usize, String)>,
    sections: Vec<Section>,
    body: String,
}

impl Outline {
    /// A heading of `level` (1 = the title when it comes first).
    pub(crate) fn heading(&mut self, level: usize, text: &str) {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return;
        }
        self.close();
        if level <= 1 && self.title.is_none() && self.sections.is_empty() && self.stack.is_empty() {
            self.title = Some(text);
            return;
        }
        self.stack.retain(|(l, _)| *l < level);
        self.stack.push((level, text));
    }

    /// A paragraph (or a table's row line) of the current section.
    pub(crate) fn paragraph(&mut self, text: &str) {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return;
        }
        if !self.body.is_empty() {
            self.body.push_str("\n\n");
        }
        self.body.push_str(&text);
    }

    /// A table: its first row as headers, the others as lines.
    pub(crate) fn table(&mut self, rows: &[Vec<String>]) {
        for line in table_lines(rows) {
            self.paragraph(&line);
        }
    }

    fn close(&mut self) {
        let body = std::mem::take(&mut self.body);
        if body.trim().is_empty() {
            return;
        }
        let heading = if self.stack.is_empty() {
            self.title.clone().unwrap_or_default()
        } else {
            self.stack
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" › ")
        };
        self.sections.push(Section { heading, body });
    }

    /// The title and the sections.
    pub(crate) fn finish(mut self) -> (Option<String>, Vec<Section>) {
        self.close();
        (self.title, self.sections)
    }
}

/// A table's rows as readable lines: "Header: cell; Header: cell." (the
/// first row names the columns; a row as long as a header row that repeats
/// it is left out).
pub(crate) fn table_lines(rows: &[Vec<String>]) -> Vec<String> {
    let clean = |c: &String| c.split_whitespace().collect::<Vec<_>>().join(" ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(clean).collect::<Vec<_>>())
        .filter(|r| r.iter().any(|c| !c.is_empty()))
        .collect();
    let Some((header, rest)) = rows.split_first() else {
        return Vec::new();
    };
    if rest.is_empty() {
        return vec![sentence(&header.join("; "))];
    }
    rest.iter()
        .filter(|r| *r != header)
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.is_empty())
                .map(|(i, c)| match header.get(i).filter(|h| !h.is_empty()) {
                    Some(h) => format!("{h}: {c}"),
                    None => c.clone(),
                })
                .collect();
            sentence(&cells.join("; "))
        })
        .collect()
}

fn sentence(s: &str) -> String {
    let s = s.trim();
    if s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// Markdown: `#` headings, paragraphs, pipe tables.
fn markdown(text: &str) -> (Option<String>, Vec<Section>) {
    let mut out = Outline::default();
    let mut para = String::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush = |out: &mut Outline, para: &mut String, table: &mut Vec<Vec<String>>| {
        if !table.is_empty() {
            out.table(table);
            table.clear();
        }
        if !para.trim().is_empty() {
            out.paragraph(para);
        }
        para.clear();
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('#') {
            flush(&mut out, &mut para, &mut table);
            let level = 1 + h.chars().take_while(|&c| c == '#').count();
            out.heading(level, h.trim_start_matches('#'));
        } else if t.starts_with('|') && t.ends_with('|') && t.len() > 1 {
            if !para.trim().is_empty() {
                out.paragraph(&para);
                para.clear();
            }
            let cells: Vec<String> = t[1..t.len() - 1].split('|').map(|c| c.trim().to_string()).collect();
            // The |---|:--:| line under the header.
            if !cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
            {
                table.push(cells);
            }
        } else if t.is_empty() {
            flush(&mut out, &mut para, &mut table);
        } else {
            if !table.is_empty() {
                out.table(&table);
                table.clear();
            }
            let item = t.trim_start_matches(['-', '*', '+']).trim_start();
            if item.len() != t.len() {
                // A list item is a line of its own.
                flush(&mut out, &mut para, &mut table);
                out.paragraph(&sentence(item));
                continue;
            }
            para.push_str(t);
            para.push(' ');
        }
    }
    flush(&mut out, &mut para, &mut table);
    out.finish()
}

/// Plain text (and a PDF's text): paragraphs at blank lines; a paragraph of
/// one short line without end punctuation is a heading. Lines broken
/// inside a paragraph (a PDF's layout) are joined, hyphenated words too.
fn plain(text: &str) -> (Option<String>, Vec<Section>) {
    let mut out = Outline::default();
    let text = text.replace('\r', "").replace('\u{c}', "\n\n");
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        if lines.len() == 1 && is_heading_line(lines[0]) {
            let level = if lines[0].chars().any(char::is_lowercase) { 2 } else { 1 };
            out.heading(level, lines[0]);
            continue;
        }
        let mut para = String::new();
        for l in lines {
            if para.ends_with('-') && l.starts_with(char::is_lowercase) {
                para.pop();
            } else if !para.is_empty() {
                para.push(' ');
            }
            para.push_str(l);
        }
        out.paragraph(&para);
    }
    out.finish()
}

/// A short line (≤ 8 words) that starts like a title and does not end like
/// a sentence.
fn is_heading_line(line: &str) -> bool {
    let words = line.split_whitespace().count();
    (1..=8).contains(&words)
        && !line.ends_with(['.', ',', ';', ':', '?', '!'])
        && line.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_sections_keep_their_parents_and_tables_read_as_lines() {
        let (title, sections) = markdown(
            "# Fees\n\nIntro line.\n\n## Transfers\n### Abroad\nA transfer abroad costs 25 dollars.\n\n| Account | Monthly fee |\n|---|---:|\n| Everyday | 5 dollars |\n| Student | none |\n\n- Free in branch\n",
        );
        assert_eq!(title.as_deref(), Some("Fees"));
        assert_eq!(
            sections[0],
            Section {
                heading: "Fees".into(),
                body: "Intro line.".into()
            }
        );
        assert_eq!(sections[1].heading, "Transfers › Abroad");
        assert_eq!(
            sections[1].body,
            "A transfer abroad costs 25 dollars.\n\nAccount: Everyday; Monthly fee: 5 dollars.\n\nAccount: Student; Monthly fee: none.\n\nFree in branch."
        );
    }

    #[test]
    fn plain_text_finds_headings_and_joins_broken_lines() {
        let (title, sections) = plain(
            "OPENING HOURS\n\nWeekdays\n\nBranches open at 9 in the morn-\ning and close at\n5 in the afternoon.\n\nSaturdays\n\nOnly the Downtown branch opens on Saturdays.\n",
        );
        assert_eq!(title.as_deref(), Some("OPENING HOURS"));
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].heading, "Weekdays");
        assert_eq!(
            sections[0].body,
            "Branches open at 9 in the morning and close at 5 in the afternoon."
        );
        assert_eq!(sections[1].heading, "Saturdays");
    }

    #[test]
    fn a_table_of_one_row_is_a_line_and_empty_rows_are_dropped() {
        assert_eq!(table_lines(&[vec!["a".into(), "b".into()]]), vec!["a; b.".to_string()]);
        let rows = vec![
            vec!["Card".into(), "Limit".into()],
            vec![String::new(), String::new()],
            vec!["Debit".into(), "3,000 dollars".into()],
        ];
        assert_eq!(
            table_lines(&rows),
            vec!["Card: Debit; Limit: 3,000 dollars.".to_string()]
        );
    }
}
