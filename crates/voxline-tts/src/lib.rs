//! voxline text-to-speech: Piper (VITS) voices in ONNX through `ort`
//! (ONNX Runtime from the PyPI wheel), phonemes from espeak-ng (FFI), text
//! normalised for the phone, replies cut into phrases and synthesised on
//! worker threads as their text streams in, cancellable.

#![warn(missing_docs)]

pub mod engine;
pub mod espeak;
pub mod trim;
pub mod voice;

pub use engine::{AudioChunk, TtsConfig, TtsEngine, TtsStream};
pub use trim::{without_leading_silence, without_trailing_silence};
pub use voice::{PiperVoice, VoiceConfig};

/// Errors from speech synthesis.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// A voice or its config could not be loaded.
    #[error("loading the voice {path}: {why}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// espeak-ng failed.
    #[error("phonemes: {0}")]
    Phonemes(String),
    /// The voice model failed.
    #[error("synthesis: {0}")]
    Synthesis(String),
    /// The synthesis was cancelled.
    #[error("synthesis cancelled")]
    Cancelled,
    /// The synthesis workers are gone.
    #[error("synthesis workers stopped")]
    Stopped,
}
