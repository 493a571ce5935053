//! `learn` on documents the demo bank pack has never seen (written for
//! this test in tests/fixtures/learn: Markdown, HTML, plain text, a DOCX
//! and a PDF made by make.py), into a copy of the pack's knowledge.

use std::path::{Path, PathBuf};
use voxline_agent::knowledge::Knowledge;
use voxline_analysis::learn::{learn, LearnError, LearnOptions, MANIFEST};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/learn")
        .join(name)
}

/// A fresh pack folder holding a copy of the demo bank's knowledge.
fn pack(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voxline-learn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let knowledge = dir.join("knowledge");
    std::fs::create_dir_all(&knowledge).expect("pack folder");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank/knowledge");
    for f in std::fs::read_dir(&demo).expect("demo knowledge") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, knowledge.join(f.file_name().expect("name"))).expect("copy");
    }
    dir
}

fn knowledge_files(pack: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(pack.join("knowledge"))
        .expect("knowledge")
        .map(|f| {
            let p = f.expect("entry").path();
            (
                p.file_name().expect("name").to_string_lossy().to_string(),
                std::fs::read_to_string(&p).expect("text"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn five_formats_become_knowledge_with_repeats_and_contradictions_left_out() {
    let dir = pack("formats");
    let docs: Vec<PathBuf> = [
        "mortgages.md",
        "branch-services.html",
        "travel-money.txt",
        "savings-accounts.docx",
        "personal-loans.pdf",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let started = std::time::Instant::now();
    let report = learn(&dir, &docs, LearnOptions::default()).expect("learned");
    eprintln!(
        "learned 5 documents in {:.3} s: {report:#?}",
        started.elapsed().as_secs_f64()
    );
    let by = |name: &str| {
        report
            .documents
            .iter()
            .find(|d| d.source.ends_with(name))
            .unwrap_or_else(|| panic!("no report for {name}"))
    };

    // Markdown: two sections taken, the contactless limit (50 where the
    // pack says 100) left out as a contradiction.
    let md = by("mortgages.md");
    assert_eq!(md.taken, ["Fixed-rate mortgage", "Overpayments"]);
    assert_eq!(md.dropped.len(), 1, "{md:?}");
    assert_eq!(md.dropped[0].heading, "Contactless payments");
    assert!(md.dropped[0].like.starts_with("cards.md"), "{md:?}");
    assert_eq!(md.dropped[0].figures, ["50"]);

    // HTML: the page's chrome gone, the table as lines, the card section
    // that repeats the pack word for word left out (no new figure).
    let html = by("branch-services.html");
    assert_eq!(html.title, "Branch services");
    assert_eq!(html.taken, ["Branch services", "Safe deposit boxes", "Coin counting"]);
    assert_eq!(html.dropped.len(), 1);
    assert!(html.dropped[0].figures.is_empty() && html.dropped[0].similarity > 0.99);

    let txt = by("travel-money.txt");
    assert_eq!(txt.taken, ["Foreign currency", "Using your card abroad"]);
    let docx = by("savings-accounts.docx");
    assert_eq!(docx.title, "Savings accounts");
    assert_eq!(docx.taken, ["Easy Saver", "Fixed Saver", "Fixed Saver › Rates by term"]);
    let pdf = by("personal-loans.pdf");
    assert!(pdf.chars > 150, "{pdf:?}");

    let files = knowledge_files(&dir);
    let text = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no {name} in {files:?}"))
    };
    let html_md = text("branch-services.md");
    assert!(
        html_md.contains("Box size: Small; Yearly rent: 60 dollars."),
        "{html_md}"
    );
    assert!(
        !html_md.contains("analytics") && !html_md.contains("All rights"),
        "{html_md}"
    );
    assert!(text("mortgages.md").contains("Fixed term: 5 years; Rate: 4.2 percent."));
    assert!(!text("mortgages.md").contains("50 dollars"));
    let docx_md = text("savings-accounts.md");
    assert!(docx_md.contains("Term: 12 months; Rate: 3.4 percent."), "{docx_md}");
    let pdf_md = text("personal-loans.md");
    assert!(pdf_md.contains("7.9 percent"), "{pdf_md}");
    assert!(pdf_md.contains("one month of interest"), "{pdf_md}");
    assert!(text("travel-money.md").contains("no commission on orders over 500 dollars"));
    let manifest = text(MANIFEST);
    assert!(manifest.contains("\"savings-accounts.md\" = "), "{manifest}");

    // The pack still indexes, and finds a learned fact.
    let k = Knowledge::load(&dir.join("knowledge")).expect("the pack's knowledge loads");
    let hits = k.search("how much is a large safe deposit box", 3, 0.0);
    assert!(
        hits.first().is_some_and(|h| h.passage.text.contains("140 dollars")),
        "{hits:?}"
    );

    // The drafted question set: one question per stated figure, with the
    // figure it must hold and the section it comes from, valid TOML.
    let (set_path, drafted) = report.question_set.clone().expect("a question set written");
    assert_eq!(set_path, dir.join("eval-learned.toml"));
    let set_text = std::fs::read_to_string(&set_path).expect("eval-learned.toml");
    let set: toml::Value = toml::from_str(&set_text).expect("valid TOML");
    let cases = set["case"].as_array().expect("cases");
    assert_eq!(cases.len(), drafted);
    let case = |ask: &str| {
        cases
            .iter()
            .find(|c| c["ask"].as_str() == Some(ask))
            .unwrap_or_else(|| panic!("no {ask:?} in {set_text}"))
    };
    assert_eq!(
        case("How much does the Easy Saver account pay?")["contains"][0].as_str(),
        Some("2.1")
    );
    assert_eq!(
        case("What is the smallest deposit for Fixed Saver?")["contains"][0].as_str(),
        Some("1000")
    );
    assert_eq!(
        case("How much do card payments abroad cost?")["contains"][0].as_str(),
        Some("2.75")
    );
    assert!(
        set_text.contains("# savings-accounts.md › Savings accounts › Easy Saver"),
        "{set_text}"
    );
    assert_eq!(
        report.documents.iter().map(|d| d.drafted).sum::<usize>(),
        drafted,
        "{report:?}"
    );

    // Learning the same documents again replaces their files: nothing is
    // a repeat of itself.
    let again = learn(&dir, &docs, LearnOptions::default()).expect("learned again");
    assert_eq!(again.documents[0].taken, md.taken);
    assert_eq!(knowledge_files(&dir), files);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_documents_are_named_and_the_pack_is_left_as_it_was() {
    let dir = pack("bad");
    let before = knowledge_files(&dir);
    let try_with = |bad: &str| {
        let docs = vec![fixture("mortgages.md"), fixture(bad)];
        let e = learn(&dir, &docs, LearnOptions::default()).expect_err(bad);
        assert_eq!(knowledge_files(&dir), before, "the pack changed on {bad}");
        e
    };
    let e = try_with("scanned-letter.pdf");
    assert!(matches!(e, LearnError::NoText { .. }), "{e:?}");
    assert!(e.to_string().contains("scanned-letter.pdf holds no text"), "{e}");
    let e = try_with("not-really.docx");
    assert!(e.to_string().contains("not-really.docx is not a DOCX"), "{e}");
    let e = try_with("make.py");
    assert!(e.to_string().contains("make.py: .py files are not read"), "{e}");
    let e = try_with("no-such-file.txt");
    assert!(e.to_string().contains("no-such-file.txt: No such file"), "{e}");
    // A hand-written file in the way of a learned one.
    std::fs::write(
        dir.join("knowledge/mortgages.md"),
        "# Mine\n\n## Kept\nAn expert wrote this.\n",
    )
    .expect("write");
    let e = learn(&dir, &[fixture("mortgages.md")], LearnOptions::default()).expect_err("in the way");
    assert!(
        e.to_string().contains("exists and was not learned from a document"),
        "{e}"
    );
    // Not a pack.
    let e = learn(
        &dir.join("knowledge"),
        &[fixture("mortgages.md")],
        LearnOptions::default(),
    )
    .expect_err("not a pack");
    assert!(e.to_string().contains("not a domain pack"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
