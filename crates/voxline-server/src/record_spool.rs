//! The write-ahead spool of record writes waiting for the store (decision
//! 0078): while a lane of the record queue cannot write, every write it
//! holds is appended to the lane's file (one JSON line each, synced to
//! disk) before it waits in memory; each write that then lands is counted
//! in a progress file beside it. A node that stops or crashes while the
//! store is down finds its lanes' files at the next start and writes what
//! they hold first. The files are removed once a lane has caught up.
//!
//! Writes can be written twice (a crash between a write landing and its
//! progress being counted): an insert then meets its own row and is
//! refused as a duplicate, an update writes the same values again.

use crate::record_queue::Write;
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// One lane's spool: `lane-N.jsonl` (the writes, in order) and
/// `lane-N.done` (how many of them from the start have landed).
#[derive(Debug)]
pub struct LaneSpool {
    writes: PathBuf,
    progress: PathBuf,
    /// Open for appending while the file holds writes.
    file: Option<tokio::fs::File>,
    /// Writes of the file that landed.
    done: u64,
}

/// A spool file that could not be read back in full.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Reading or creating the folder or a file failed.
    #[error("record spool {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl LaneSpool {
    /// Opens lane `lane`'s spool in `dir` (created when missing) and reads
    /// back the writes it still holds that have not landed. A line that is
    /// not a write (a crash cut it short, the disk lost it) is logged with
    /// its file and line and skipped.
    pub fn open(dir: &Path, lane: usize) -> Result<(LaneSpool, Vec<Write>), SpoolError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let writes = dir.join(format!("lane-{lane}.jsonl"));
        let progress = dir.join(format!("lane-{lane}.done"));
        let done: u64 = match std::fs::read_to_string(&progress) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(file = %progress.display(), "record spool progress unreadable: every write of the lane is written again");
                0
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(&progress)(e)),
        };
        let text = match std::fs::read(&writes) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&writes)(e)),
        };
        let mut left = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if (n as u64) < done || line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Write>(line) {
                Ok(w) => left.push(w),
                Err(e) => tracing::error!(
                    file = %writes.display(),
                    line = n + 1,
                    error = %e,
                    "record spool line unreadable: skipped"
                ),
            }
        }
        let spool = LaneSpool {
            writes,
            progress,
            file: None,
            done: 0,
        };
        if left.is_empty() {
            spool.remove_files();
        } else {
            // Start the files again with what is left, so the progress
            // counts from its first write.
            let mut body = String::new();
            for w in &left {
                body.push_str(&line_of(w)?);
            }
            let tmp = spool.writes.with_extension("jsonl.tmp");
            std::fs::write(&tmp, body).map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &spool.writes).map_err(io_err(&spool.writes))?;
            let _ = std::fs::remove_file(&spool.progress);
        }
        Ok((spool, left))
    }

    /// The file holding the lane's waiting writes.
    pub fn path(&self) -> &Path {
        &self.writes
    }

    /// Appends `write` and syncs it to disk.
    pub async fn append(&mut self, write: &Write) -> Result<(), SpoolError> {
        let line = line_of(write)?;
        let path = self.writes.clone();
        let io_err = |source| SpoolError::Io {
            path: path.clone(),
            source,
        };
        if self.file.is_none() {
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.writes)
                .await
                .map_err(io_err)?;
            self.file = Some(f);
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(line.as_bytes()).await.map_err(io_err)?;
            f.sync_data().await.map_err(io_err)?;
        }
        Ok(())
    }

    /// Counts the oldest waiting write as landed. The count is replaced
    /// (write, rename) but not synced: after a crash a few writes may be
    /// written again, which the store takes as described above.
    pub async fn landed(&mut self) -> Result<(), SpoolError> {
        self.done += 1;
        let tmp = self.progress.with_extension("done.tmp");
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        tokio::fs::write(&tmp, self.done.to_string())
            .await
            .map_err(io_err(&tmp))?;
        tokio::fs::rename(&tmp, &self.progress)
            .await
            .map_err(io_err(&self.progress))
    }

    /// The lane caught up: its files go.
    pub fn clear(&mut self) {
        self.file = None;
        self.done = 0;
        self.remove_files();
    }

    fn remove_files(&self) {
        for p in [&self.writes, &self.progress] {
            if let Err(e) = std::fs::remove_file(p) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %p.display(), error = %e, "record spool file not removed");
                }
            }
        }
    }
}

/// One write as a spool line.
fn line_of(write: &Write) -> Result<String, SpoolError> {
    let mut line = serde_json::to_string(write).map_err(|e| SpoolError::Io {
        path: PathBuf::from("-"),
        source: io::Error::other(e),
    })?;
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("voxline-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn outcome(id: &str, outcome: &str) -> Write {
        Write::Outcome {
            id: id.into(),
            outcome: outcome.into(),
        }
    }

    #[tokio::test]
    async fn what_did_not_land_is_read_back_in_order_and_a_caught_up_lane_leaves_no_file() {
        let d = dir("order");
        let (mut spool, left) = LaneSpool::open(&d, 2).expect("open");
        assert!(left.is_empty());
        for i in 0..5 {
            spool.append(&outcome(&format!("r{i}"), "x")).await.expect("append");
        }
        spool.landed().await.expect("landed");
        spool.landed().await.expect("landed");
        drop(spool);
        // A restart: the three that did not land, in order.
        let (mut spool, left) = LaneSpool::open(&d, 2).expect("reopen");
        let ids: Vec<&str> = left
            .iter()
            .map(|w| match w {
                Write::Outcome { id, .. } => id.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["r2", "r3", "r4"]);
        // Progress now counts from r2.
        spool.landed().await.expect("landed");
        drop(spool);
        let (mut spool, left) = LaneSpool::open(&d, 2).expect("reopen");
        assert_eq!(left.len(), 2);
        spool.clear();
        assert!(!spool.path().exists());
        let (_, left) = LaneSpool::open(&d, 2).expect("reopen");
        assert!(left.is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn a_line_cut_short_by_a_crash_is_skipped_not_fatal() {
        let d = dir("cut");
        let (mut spool, _) = LaneSpool::open(&d, 0).expect("open");
        spool.append(&outcome("a", "x")).await.expect("append");
        spool.append(&outcome("b", "y")).await.expect("append");
        let path = spool.path().to_path_buf();
        drop(spool);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut f, b"{\"Outcome\":{\"id\":\"c\",\"outc").expect("write");
        drop(f);
        std::fs::write(d.join("lane-0.done"), "not a number").expect("progress");
        let (_, left) = LaneSpool::open(&d, 0).expect("reopen");
        assert_eq!(left.len(), 2, "{left:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
