//! Learn: documents into a domain pack's knowledge. Markdown, plain text,
//! HTML, PDF and DOCX are read into sections by heading ([`document`]),
//! tables as readable lines; sections that repeat what the pack (or the
//! import) already says, word for word or nearly ([`dedupe`]), are dropped;
//! each document becomes `knowledge/<name>.md`, listed in
//! `knowledge/learned.toml`, and a report says what was taken and why the
//! rest was not ([`import`]).

pub mod dedupe;
pub mod document;
mod docx;
pub mod draft;
mod html;
pub mod import;

pub use document::{read_document, Document, Section, FORMATS};
pub use import::{learn, DocReport, Dropped, LearnOptions, LearnReport, MANIFEST};

use std::path::{Path, PathBuf};

/// Why a document or a pack could not be learned from; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A file type learn does not read.
    #[error("{}: .{ext} files are not read (learn reads {})", path.display(), FORMATS.join(", "))]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Its extension.
        ext: String,
    },
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what its name says.
    #[error("{} {why}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong ("is not a DOCX (…)").
        why: String,
    },
    /// The file holds no text to learn.
    #[error("{} {why}", path.display())]
    NoText {
        /// The file.
        path: PathBuf,
        /// Why ("holds no text …").
        why: String,
    },
    /// The pack cannot take the documents.
    #[error("{}: {why}", path.display())]
    Pack {
        /// The pack's file or folder.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Writing the pack's files failed.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl LearnError {
    pub(crate) fn read(path: &Path, source: std::io::Error) -> LearnError {
        LearnError::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, why: String) -> LearnError {
        LearnError::Format {
            path: path.to_path_buf(),
            why,
        }
    }
}
