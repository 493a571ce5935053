//! Documents into a pack: each document read in full before anything is
//! written (a bad one stops the import, naming its file, and the pack is
//! left as it was); each section compared with the pack's passages and the
//! sections taken before it; the taken ones written as
//! `knowledge/<name>.md`, the documents listed in `knowledge/learned.toml`
//! (learning a document again replaces its file).

use super::dedupe::Shingles;
use super::document::{read_document, Document};
use super::LearnError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use voxline_agent::knowledge::split_markdown;

/// The list of learned documents, in the knowledge folder (not `*.md`, so
/// it is not knowledge itself).
pub const MANIFEST: &str = "learned.toml";

/// How learn judges repeats.
#[derive(Debug, Clone, Copy)]
pub struct LearnOptions {
    /// Word-triple overlap at or above which a section repeats another.
    pub threshold: f32,
    /// Read and judge, write nothing.
    pub dry_run: bool,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            threshold: 0.6,
            dry_run: false,
        }
    }
}

/// A section not taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// Its heading.
    pub heading: String,
    /// The passage or section it repeats or contradicts ("file: title").
    pub like: String,
    /// How alike they are, 0 to 1.
    pub similarity: f32,
    /// Figures of the section the other one does not state (a contradiction
    /// when not empty: the section is left for an expert).
    pub figures: Vec<String>,
}

/// What became of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocReport {
    /// The document.
    pub source: PathBuf,
    /// Its title.
    pub title: String,
    /// The pack file written (`None`: nothing taken).
    pub file: Option<PathBuf>,
    /// Headings of the sections taken.
    pub taken: Vec<String>,
    /// Sections left out as repeats or contradictions.
    pub dropped: Vec<Dropped>,
    /// Characters of text taken.
    pub chars: usize,
    /// Questions drafted from the sections taken ([`super::draft`]).
    pub drafted: usize,
}

/// The whole import.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnReport {
    /// Per document, in the order given.
    pub documents: Vec<DocReport>,
    /// The drafted question set written (`None` on a dry run): the
    /// questions of every document learned into the pack so far.
    pub question_set: Option<(PathBuf, usize)>,
}

/// A passage to compare against: where it is and its fingerprint.
struct Known {
    name: String,
    text: String,
    shingles: Shingles,
}

/// Learns `docs` into the pack at `pack`.
pub fn learn(pack: &Path, docs: &[PathBuf], opts: LearnOptions) -> Result<LearnReport, LearnError> {
    let knowledge = pack.join("knowledge");
    if !knowledge.is_dir() {
        return Err(LearnError::Pack {
            path: pack.to_path_buf(),
            why: "not a domain pack (no knowledge/ folder)".into(),
        });
    }
    let manifest_path = knowledge.join(MANIFEST);
    let mut manifest = read_manifest(&manifest_path)?;
    // Read every document first: a bad one stops the import here.
    let read: Vec<Document> = docs.iter().map(|d| read_document(d)).collect::<Result<_, _>>()?;
    let mut targets: BTreeMap<String, &Path> = BTreeMap::new();
    for d in &read {
        let file = format!("{}.md", slug(&d.source));
        if let Some(other) = targets.insert(file.clone(), &d.source) {
            return Err(LearnError::Pack {
                path: d.source.clone(),
                why: format!(
                    "would be written as knowledge/{file} like {} (rename one)",
                    other.display()
                ),
            });
        }
        let path = knowledge.join(&file);
        if path.exists() && !manifest.contains_key(&file) {
            return Err(LearnError::Pack {
                path,
                why: format!(
                    "exists and was not learned from a document: rename {} or move that file",
                    d.source.display()
                ),
            });
        }
    }
    // The pack's passages, but those of files this import replaces.
    let mut known = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&knowledge)
        .map_err(|e| LearnError::read(&knowledge, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if targets.contains_key(&name) {
            continue;
        }
        let text = std::fs::read_to_string(&f).map_err(|e| LearnError::read(&f, e))?;
        for p in split_markdown(&name, &text) {
            known.push(Known {
                name: format!("{name}: {}", p.title),
                shingles: Shingles::of(&p.text),
                text: p.text,
            });
        }
    }

    let mut reports = Vec::new();
    let mut writes = Vec::new();
    for d in &read {
        let file = format!("{}.md", slug(&d.source));
        let mut md = format!("# {}\n", d.title);
        let mut report = DocReport {
            source: d.source.clone(),
            title: d.title.clone(),
            file: None,
            taken: Vec::new(),
            dropped: Vec::new(),
            chars: 0,
            drafted: 0,
        };
        for s in &d.sections {
            let shingles = Shingles::of(&s.body);
            let best = known
                .iter()
                .map(|k| (k, k.shingles.similarity(&shingles)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((k, similarity)) = best.filter(|(_, sim)| *sim >= opts.threshold) {
                report.dropped.push(Dropped {
                    heading: s.heading.clone(),
                    like: k.name.clone(),
                    similarity,
                    figures: new_figures(&s.body, &k.text),
                });
                continue;
            }
            let heading = if s.heading.is_empty() { &d.title } else { &s.heading };
            md.push_str(&format!("\n## {heading}\n{}\n", s.body));
            report.drafted += super::draft::draft(&file, heading, &s.body).len();
            report.taken.push(heading.clone());
            report.chars += s.body.len();
            known.push(Known {
                name: format!("{file}: {} › {heading}", d.title),
                text: s.body.clone(),
                shingles,
            });
        }
        if !report.taken.is_empty() {
            report.file = Some(knowledge.join(&file));
            writes.push((file, md, d.source.clone()));
        }
        reports.push(report);
    }
    if !opts.dry_run {
        for (file, md, source) in writes {
            let path = knowledge.join(&file);
            write_atomic(&path, &md)?;
            manifest.insert(file, source.display().to_string());
        }
        let mut text = String::from("# Documents `voxline learn` wrote into this folder (file = source).\n");
        for (file, source) in &manifest {
            text.push_str(&format!("{} = {}\n", toml_key(file), toml_string(source)));
        }
        write_atomic(&manifest_path, &text)?;
        let drafts = drafts_of_learned(&knowledge, &manifest)?;
        let set = pack.join(super::draft::QUESTION_SET);
        write_atomic(&set, &super::draft::question_set(&drafts))?;
        return Ok(LearnReport {
            documents: reports,
            question_set: Some((set, drafts.len())),
        });
    }
    Ok(LearnReport {
        documents: reports,
        question_set: None,
    })
}

/// The questions drafted from every learned document's knowledge file.
fn drafts_of_learned(
    knowledge: &Path,
    manifest: &BTreeMap<String, String>,
) -> Result<Vec<super::draft::Draft>, LearnError> {
    let mut out = Vec::new();
    for file in manifest.keys() {
        let path = knowledge.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // A learned file removed by hand since: nothing to draft from.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LearnError::read(&path, e)),
        };
        for p in split_markdown(file, &text) {
            out.extend(super::draft::draft(file, &p.title, &p.text));
        }
    }
    Ok(out)
}

/// The figures (tokens with a digit) of `text` that `other` does not hold.
fn new_figures(text: &str, other: &str) -> Vec<String> {
    let figures = |t: &str| -> Vec<String> {
        t.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
            .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
            .collect()
    };
    let theirs = figures(other);
    let mut out: Vec<String> = figures(text).into_iter().filter(|f| !theirs.contains(f)).collect();
    out.dedup();
    out
}

/// "Fees & Charges 2027.PDF" → "fees-charges-2027".
fn slug(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "document".into()
    } else {
        out
    }
}

fn read_manifest(path: &Path) -> Result<BTreeMap<String, String>, LearnError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| LearnError::Pack {
            path: path.to_path_buf(),
            why: format!("not a list of learned documents: {}", e.message()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(LearnError::read(path, e)),
    }
}

fn toml_key(s: &str) -> String {
    toml_string(s)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn write_atomic(path: &Path, text: &str) -> Result<(), LearnError> {
    let tmp = path.with_extension("learn-tmp");
    let err = |source| LearnError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_figures() {
        assert_eq!(slug(Path::new("/x/Fees & Charges 2027.PDF")), "fees-charges-2027");
        assert_eq!(slug(Path::new("/x/---.txt")), "document");
        assert_eq!(
            new_figures(
                "A transfer costs 25 dollars, 2 days.",
                "A transfer costs 20 dollars, 2 days."
            ),
            vec!["25".to_string()]
        );
    }
}
