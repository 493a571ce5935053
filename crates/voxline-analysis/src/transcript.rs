//! The call as the scorer reads it: who said what and when, from the call
//! store (the agent's own calls), from a recording transcribed channel by
//! channel, or from a transcript JSON file.

use crate::scorecard::Speaker;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One thing said: a sentence or a recogniser's segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Who said it.
    pub speaker: Speaker,
    /// When it started, ms from the call's start.
    pub start_ms: u64,
    /// When it ended, ms from the call's start.
    pub end_ms: u64,
    /// The words.
    pub text: String,
    /// Each word with its times, when a recogniser gave them (empty in a
    /// script or the agent's own records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<TimedWord>,
}

/// A word and when it was said, ms from the call's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedWord {
    /// The word as written.
    pub text: String,
    /// When it started.
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
}

/// A call for unit tests: `lines` said one after another, one every
/// `every_ms`, each lasting most of it.
#[cfg(test)]
pub(crate) fn call_of(lines: &[(Speaker, &str)], every_ms: u64) -> CallTranscript {
    let lines = lines
        .iter()
        .enumerate()
        .map(|(i, (s, t))| Line {
            speaker: *s,
            start_ms: i as u64 * every_ms,
            end_ms: i as u64 * every_ms + every_ms * 5 / 6,
            text: t.to_string(),
            words: Vec::new(),
        })
        .collect();
    CallTranscript::new(lines, None)
}

impl Line {
    /// How long it lasted, ms.
    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// A two-sided call's transcript, its lines in order of their start.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallTranscript {
    /// The lines, ordered by start.
    pub lines: Vec<Line>,
    /// The call's length, ms (at least the last line's end).
    pub duration_ms: u64,
}

/// A transcript JSON file that cannot be read: which file, which field, why.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {why}", file.display(), field.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
pub struct TranscriptError {
    /// The file.
    pub file: std::path::PathBuf,
    /// The field (`lines[2].end_ms`), when one is to blame.
    pub field: Option<String>,
    /// Why.
    pub why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptFile {
    lines: Vec<Line>,
    duration_ms: Option<u64>,
}

impl CallTranscript {
    /// A transcript of `lines` (put in order of their start) lasting
    /// `duration_ms` (or to the last line's end).
    pub fn new(mut lines: Vec<Line>, duration_ms: Option<u64>) -> CallTranscript {
        lines.sort_by_key(|l| (l.start_ms, l.end_ms));
        let last_end = lines.iter().map(|l| l.end_ms).max().unwrap_or(0);
        CallTranscript {
            duration_ms: duration_ms.unwrap_or(0).max(last_end),
            lines,
        }
    }

    /// Reads a transcript JSON file: `{"lines": [{"speaker": "agent" |
    /// "customer", "start_ms", "end_ms", "text"}…], "duration_ms"?}`.
    pub fn read_json(path: &Path) -> Result<CallTranscript, TranscriptError> {
        let err = |field: Option<String>, why: String| TranscriptError {
            file: path.to_path_buf(),
            field,
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(None, format!("reading: {e}")))?;
        let mut de = serde_json::Deserializer::from_str(&text);
        let file: TranscriptFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            err((field != ".").then_some(field), e.into_inner().to_string())
        })?;
        for (i, l) in file.lines.iter().enumerate() {
            if l.end_ms < l.start_ms {
                return Err(err(
                    Some(format!("lines[{i}].end_ms")),
                    format!("ends ({}) before it starts ({})", l.end_ms, l.start_ms),
                ));
            }
        }
        Ok(CallTranscript::new(file.lines, file.duration_ms))
    }

    /// The lines `who` said, with their index in [`CallTranscript::lines`].
    pub fn by(&self, who: Speaker) -> impl Iterator<Item = (usize, &Line)> {
        self.lines.iter().enumerate().filter(move |(_, l)| l.speaker == who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("voxline-analysis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_transcript_file_reads_in_order() {
        let path = write(
            "ok.json",
            r#"{"lines": [
                {"speaker": "customer", "start_ms": 4000, "end_ms": 5000, "text": "My card."},
                {"speaker": "agent", "start_ms": 0, "end_ms": 3000, "text": "Hello."}
            ], "duration_ms": 9000}"#,
        );
        let t = CallTranscript::read_json(&path).expect("reads");
        assert_eq!(t.lines[0].speaker, Speaker::Agent);
        assert_eq!(t.duration_ms, 9000);
        assert_eq!(t.by(Speaker::Customer).map(|(i, _)| i).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn a_missing_or_bad_field_is_named() {
        let path = write(
            "missing.json",
            r#"{"lines": [{"speaker": "agent", "start_ms": 0, "text": "Hello."}]}"#,
        );
        let e = CallTranscript::read_json(&path).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("lines[0]"), "{e}");
        assert!(e.why.contains("end_ms"), "{e}");
        assert!(e.to_string().contains("missing.json"), "{e}");
        let path = write(
            "speaker.json",
            r#"{"lines": [{"speaker": "bot", "start_ms": 0, "end_ms": 10, "text": "x"}]}"#,
        );
        let e = CallTranscript::read_json(&path).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("lines[0].speaker"), "{e}");
        let path = write(
            "backwards.json",
            r#"{"lines": [{"speaker": "agent", "start_ms": 50, "end_ms": 10, "text": "x"}]}"#,
        );
        let e = CallTranscript::read_json(&path).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("lines[0].end_ms"), "{e}");
    }
}
