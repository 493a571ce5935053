//! voxline speech recognition. This first part holds the Whisper engine
//! (whisper.cpp through whisper-rs) on 16 kHz mono audio: loading a ggml
//! model (converted from CTranslate2 by `voxline models fetch`) and
//! decoding an utterance. Voice activity detection, streaming partials and
//! the worker pool build on it.

#![warn(missing_docs)]

pub mod segmenter;
pub mod vad;
pub mod whisper;

pub use segmenter::{Segmenter, SegmenterConfig, VadEvent};
pub use vad::{SileroVad, VAD_WINDOW};
pub use whisper::{DecodeOptions, WhisperModel};

/// The sample rate Whisper listens at.
pub const ASR_RATE: u32 = 16_000;

/// Errors from speech recognition.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    /// A model file could not be loaded.
    #[error("loading the Whisper model {path}: {why}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Decoding failed.
    #[error("Whisper decode: {0}")]
    Decode(String),
}
