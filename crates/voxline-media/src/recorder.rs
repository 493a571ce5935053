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
    /// Creates the file (and its directory). The WAV header is written with
    /// the first frame, at the call's PCM rate.
    pub fn create(path: &Path) -> Result<CallRecorder, MediaError> {
        let err = |reason: String| MediaError::Wav {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let file = File::create(path).map_err(|e| err(e.to_string()))?;
        Ok(CallRecorder {
            path: path.to_path_buf(),
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
