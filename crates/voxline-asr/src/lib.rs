//! voxline speech recognition on 16 kHz mono audio: the Whisper engine
//! (whisper.cpp through whisper-rs, a ggml model converted from CTranslate2
//! by `voxline models fetch`), Silero VAD (ONNX through `ort`) with a
//! speech start/end segmenter, a bounded pool of Whisper worker threads
//! shared by all calls, and a streaming recogniser per call (partials while
//! the caller speaks, the final right after they stop), and recorded
//! channels transcribed after the call (`batch`).

#![warn(missing_docs)]

pub mod batch;
pub mod pool;
pub mod segmenter;
pub mod stream;
pub mod turn_features;
pub mod turn_model;
pub mod vad;
pub mod whisper;

pub use batch::{BatchConfig, ChannelTranscriber, Utterance};
pub use pool::{AsrPool, PoolConfig, PoolStats, Transcript};
pub use segmenter::{Segmenter, SegmenterConfig, VadEvent};
pub use stream::{AsrEvent, StreamConfig, StreamingRecognizer};
pub use turn_model::{TurnModel, TurnVerdict};
pub use vad::{SileroVad, VAD_WINDOW};
pub use whisper::{Confidence, DecodeOptions, Doubt, Heard, WhisperModel, Word};

/// The sample rate Whisper listens at.
pub const ASR_RATE: u32 = 16_000;

/// Errors from speech recognition.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    /// A model file could not be loaded.
    #[error("loading the model {path}: {why}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Decoding failed.
    #[error("Whisper decode: {0}")]
    Decode(String),
    /// The decode was cancelled (the call ended or the result was no longer wanted).
    #[error("recognition cancelled")]
    Aborted,
    /// The worker pool is gone (shutting down) or, for an optional job, full.
    #[error("recognition pool: {0}")]
    Pool(&'static str),
}

impl From<voxline_onnx::LoadError> for AsrError {
    fn from(e: voxline_onnx::LoadError) -> AsrError {
        AsrError::Load {
            path: e.path,
            why: e.why,
        }
    }
}
