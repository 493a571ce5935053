//! Per-call stereo recording: caller on the left, voxline on the right.

use crate::MediaError;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Writes a stereo 8 kHz 16-bit WAV as the call goes. The header is
/// rewritten every second, so a crash leaves a playable file.
pub struct CallRecorder {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    frames_since_flush: usize,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder").field("path", &self.path).finish()
    }
}

impl CallRecorder {
    /// Creates the file (and its directory).
    pub fn create(path: &Path) -> Result<CallRecorder, MediaError> {
        let err = |reason: String| MediaError::Wav {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| err(e.to_string()))?;
        Ok(CallRecorder {
            path: path.to_path_buf(),
            writer,
            frames_since_flush: 0,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one frame: `caller` and `agent` have the same length.
    pub fn write_frame(&mut self, caller: &[i16], agent: &[i16]) -> Result<(), MediaError> {
        let err = |e: hound::Error| MediaError::Wav {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        };
        for (&l, &r) in caller.iter().zip(agent) {
            self.writer.write_sample(l).map_err(err)?;
            self.writer.write_sample(r).map_err(err)?;
        }
        self.frames_since_flush += 1;
        if self.frames_since_flush >= 50 {
            self.frames_since_flush = 0;
            self.writer.flush().map_err(err)?;
        }
        Ok(())
    }

    /// Completes the file.
    pub fn finish(self) -> Result<(), MediaError> {
        let path = self.path.display().to_string();
        self.writer.finalize().map_err(|e| MediaError::Wav {
            path,
            reason: e.to_string(),
        })
    }
}
