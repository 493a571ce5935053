//! DOCX: the paragraphs and tables of `word/document.xml` (zip, quick-xml);
//! paragraphs styled `Title` or `HeadingN` are the title and headings, the
//! title can also come from `docProps/core.xml`.

use super::document::{Outline, Section};
use quick_xml::events::Event;
use quick_xml::Reader;
use std::io::{Cursor, Read};

/// The document's title and sections, or why the file is not a DOCX.
pub(crate) fn read(bytes: &[u8]) -> Result<(Option<String>, Vec<Section>), String> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("is not a DOCX (not a zip archive: {e})"))?;
    let body = part(&mut zip, "word/document.xml")?
        .ok_or_else(|| "is not a DOCX (no word/document.xml inside)".to_string())?;
    let core_title = part(&mut zip, "docProps/core.xml")?.and_then(|x| core_title(&x));
    let (title, sections) = document(&body).map_err(|e| format!("is not a readable DOCX: {e}"))?;
    Ok((core_title.or(title), sections))
}

/// A part of the package as text (capped at 64 MiB), `None` when missing.
fn part(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<String>, String> {
    let Ok(f) = zip.by_name(name) else { return Ok(None) };
    let mut text = String::new();
    f.take(64 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("is not a readable DOCX ({name}: {e})"))?;
    Ok(Some(text))
}

fn core_title(xml: &str) -> Option<String> {
    let mut r = Reader::from_str(xml);
    let mut inside = false;
    let mut title = String::new();
    loop {
        match r.read_event().ok()? {
            Event::Start(e) if e.name().as_ref() == b"dc:title" => inside = true,
            Event::End(e) if e.name().as_ref() == b"dc:title" => break,
            Event::Text(t) if inside => title.push_str(&t.decode().ok()?),
            Event::GeneralRef(g) if inside => title.push_str(&entity(&g)?),
            Event::Eof => break,
            _ => {}
        }
    }
    let title = title.trim().to_string();
    (!title.is_empty()).then_some(title)
}

/// `&amp;` and its kind as text.
fn entity(g: &quick_xml::events::BytesRef) -> Option<String> {
    if let Ok(Some(c)) = g.resolve_char_ref() {
        return Some(c.to_string());
    }
    Some(
        match g.decode().ok()?.as_ref() {
            "amp" => "&",
            "lt" => "<",
            "gt" => ">",
            "quot" => "\"",
            "apos" => "'",
            _ => "",
        }
        .to_string(),
    )
}

fn document(xml: &str) -> Result<(Option<String>, Vec<Section>), quick_xml::Error> {
    let mut r = Reader::from_str(xml);
    let mut out = Outline::default();
    let mut style: Option<String> = None;
    let mut para = String::new();
    let mut in_text = false;
    // Tables: depth, the rows so far, the row and cell being read.
    let mut depth = 0usize;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    loop {
        match r.read_event()? {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"w:pStyle" => {
                style = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"w:val")
                    .and_then(|a| {
                        a.normalized_value(quick_xml::XmlVersion::default())
                            .ok()
                            .map(|v| v.into_owned())
                    });
            }
            Event::Start(e) => match e.name().as_ref() {
                b"w:t" => in_text = true,
                b"w:p" => {
                    style = None;
                    para.clear();
                }
                b"w:tbl" => depth += 1,
                b"w:tr" if depth == 1 => row.clear(),
                b"w:tc" if depth == 1 => cell.clear(),
                _ => {}
            },
            Event::Empty(e) => {
                if matches!(e.name().as_ref(), b"w:tab" | b"w:br" | b"w:cr") {
                    para.push(' ');
                }
            }
            Event::Text(t) if in_text => para.push_str(&t.decode().map_err(quick_xml::Error::Encoding)?),
            Event::GeneralRef(g) if in_text => para.push_str(&entity(&g).unwrap_or_default()),
            Event::End(e) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => {
                    let text = para.trim();
                    if depth > 0 {
                        if !cell.is_empty() && !text.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(text);
                    } else if !text.is_empty() {
                        match heading_level(style.as_deref()) {
                            Some(level) => out.heading(level, text),
                            None => out.paragraph(text),
                        }
                    }
                    para.clear();
                }
                b"w:tc" if depth == 1 => row.push(std::mem::take(&mut cell)),
                b"w:tr" if depth == 1 => rows.push(std::mem::take(&mut row)),
                b"w:tbl" => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        out.table(&rows);
                        rows.clear();
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out.finish())
}

/// `Title` is level 1, `Heading1`…`Heading9` (or `heading 1`) their level.
fn heading_level(style: Option<&str>) -> Option<usize> {
    let s = style?.to_ascii_lowercase().replace(' ', "");
    if s == "title" {
        return Some(1);
    }
    s.strip_prefix("heading")?
        .parse::<usize>()
        .ok()
        .filter(|l| (1..=9).contains(l))
}
