//! Per-call stereo recording: caller on the left, voxline on the right.

use crate::MediaError;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Writes a stereo 16-bit WAV at the call's PCM rate as the call goes. The header is
/// rewritten every second, so a crash leaves a playable file.
pub struct CallRecorder {
    path: PathBuf,
    /// The file until the first frame tells the rate, then its WAV writer.
    file: Option<File>,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    frames_since_flush: usize,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder").field("path", &self.path).finish()
    }
}

impl CallRecorder {
    /// Creates the file (and its directory), never over another: when
    /// `path` exists (two calls with one Call-ID, which a peer may reuse or
    /// collide on) the next free `NAME-2.wav`, `NAME-3.wav`… is taken;
    /// [`path`](Self::path) says which. The WAV header is written with the
    /// first frame, at the call's PCM rate.
    pub fn create(path: &Path) -> Result<CallRecorder, MediaError> {
        let err = |reason: String| MediaError::Wav {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut chosen = path.to_path_buf();
        let mut n = 1;
        let file = loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&chosen) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    chosen = path.with_file_name(format!("{stem}-{n}.{ext}"));
                }
                Err(e) => return Err(err(e.to_string())),
            }
        };
        Ok(CallRecorder {
            path: chosen,
            file: Some(file),
            writer: None,
            frames_since_flush: 0,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one frame at `rate` Hz: `caller` and `agent` have the same length.
    pub fn write_frame(&mut self, caller: &[i16], agent: &[i16], rate: u32) -> Result<(), MediaError> {
        let path = &self.path;
        let err = |e: hound::Error| MediaError::Wav {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(file) = self.file.take() {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            self.writer = Some(hound::WavWriter::new(BufWriter::new(file), spec).map_err(err)?);
        }
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        for (&l, &r) in caller.iter().zip(agent) {
            writer.write_sample(l).map_err(err)?;
            writer.write_sample(r).map_err(err)?;
        }
        self.frames_since_flush += 1;
        if self.frames_since_flush >= 50 {
            self.frames_since_flush = 0;
            writer.flush().map_err(err)?;
        }
        Ok(())
    }

    /// Completes the file.
    pub fn finish(mut self) -> Result<(), MediaError> {
        let path = self.path.display().to_string();
        if self.writer.is_none() {
            // No frame was ever written: leave a valid, empty 8 kHz file.
            self.write_frame(&[], &[], 8000)?;
        }
        match self.writer {
            Some(w) => w.finalize().map_err(|e| MediaError::Wav {
                path,
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_call_with_the_same_call_id_gets_its_own_file() {
        let dir = std::env::temp_dir().join(format!("voxline-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("same-id.wav");
        let mut first = CallRecorder::create(&path).expect("first");
        first.write_frame(&[1; 160], &[2; 160], 8000).expect("frame");
        first.finish().expect("finish");
        let before = std::fs::read(&path).expect("first file");
        let second = CallRecorder::create(&path).expect("second");
        let third = CallRecorder::create(&path).expect("third");
        assert_eq!(second.path(), dir.join("same-id-2.wav"));
        assert_eq!(third.path(), dir.join("same-id-3.wav"));
        assert_eq!(
            std::fs::read(&path).expect("first file again"),
            before,
            "the first recording is untouched"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
