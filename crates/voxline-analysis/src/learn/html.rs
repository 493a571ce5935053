//! HTML: headings, paragraphs, list items and tables in document order
//! (scraper's html5ever parse, so broken markup reads as a browser reads
//! it); scripts, styles, navigation, headers and footers left out.

use super::document::{Outline, Section};
use scraper::{ElementRef, Html, Node};

/// The document's title (its `<title>` unless a first `<h1>` names it) and
/// sections.
pub(crate) fn read(text: &str) -> (Option<String>, Vec<Section>) {
    let html = Html::parse_document(text);
    let mut out = Outline::default();
    let mut loose = String::new();
    walk(html.root_element(), &mut out, &mut loose);
    if !loose.trim().is_empty() {
        out.paragraph(&loose);
    }
    let (title, sections) = out.finish();
    let head_title = scraper::Selector::parse("title")
        .ok()
        .and_then(|s| html.select(&s).next().map(|t| words(t)));
    (title.or(head_title.filter(|t| !t.is_empty())), sections)
}

fn words(e: ElementRef) -> String {
    e.text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn walk(e: ElementRef, out: &mut Outline, loose: &mut String) {
    for child in e.children() {
        match child.value() {
            Node::Text(t) => {
                loose.push_str(t);
                loose.push(' ');
            }
            Node::Element(_) => {
                let Some(el) = ElementRef::wrap(child) else { continue };
                let name = el.value().name();
                let flush = |out: &mut Outline, loose: &mut String| {
                    if !loose.trim().is_empty() {
                        out.paragraph(loose);
                    }
                    loose.clear();
                };
                match name {
                    "script" | "style" | "nav" | "header" | "footer" | "noscript" | "template" | "head" => {}
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        flush(out, loose);
                        let level = usize::from(name.as_bytes()[1] - b'0');
                        out.heading(level, &words(el));
                    }
                    "p" | "li" | "dt" | "dd" | "blockquote" | "pre" | "figcaption" | "address" => {
                        flush(out, loose);
                        out.paragraph(&words(el));
                    }
                    "table" => {
                        flush(out, loose);
                        out.table(&rows(el));
                    }
                    "br" => loose.push(' '),
                    _ => walk(el, out, loose),
                }
            }
            _ => {}
        }
    }
}

/// A table's rows of cell texts, in order (a nested table's cells stay
/// in its cell).
fn rows(table: ElementRef) -> Vec<Vec<String>> {
    fn collect(e: ElementRef, rows: &mut Vec<Vec<String>>) {
        for child in e.children().filter_map(ElementRef::wrap) {
            match child.value().name() {
                "tr" => rows.push(
                    child
                        .children()
                        .filter_map(ElementRef::wrap)
                        .filter(|c| matches!(c.value().name(), "td" | "th"))
                        .map(words)
                        .collect(),
                ),
                "thead" | "tbody" | "tfoot" => collect(child, rows),
                _ => {}
            }
        }
    }
    let mut rows = Vec::new();
    collect(table, &mut rows);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_and_tables_in_order_without_the_page_chrome() {
        let (title, sections) = read(
            "<html><head><title>Harbor Energy</title><style>p{}</style></head><body>\
             <nav><a href=/>Home</a></nav><h1>Tariffs</h1><p>All prices include tax.</p>\
             <h2>Green tariff</h2><p>Power from <b>wind</b> and sun.</p>\
             <table><tr><th>Plan</th><th>Price per kWh</th></tr><tr><td>Green</td><td>32 cents</td></tr></table>\
             <ul><li>No exit fee</li></ul><script>var x;</script><footer>© 2026</footer></body></html>",
        );
        assert_eq!(title.as_deref(), Some("Tariffs"));
        assert_eq!(sections[0].body, "All prices include tax.");
        assert_eq!(sections[1].heading, "Green tariff");
        assert_eq!(
            sections[1].body,
            "Power from wind and sun.\n\nPlan: Green; Price per kWh: 32 cents.\n\nNo exit fee"
        );
        assert!(!format!("{sections:?}").contains("var x") && !format!("{sections:?}").contains("Home"));
    }
}
