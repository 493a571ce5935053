//! The process's ONNX Runtime: `ort` loads the shared library fetched from
//! PyPI (`voxline models fetch`) at run time (load-dynamic), once per
//! process, and every ONNX model (Silero VAD, Piper voices) builds its
//! sessions in the one environment.

#![warn(missing_docs)]

pub use ort;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment and the library it came from.
static RUNTIME: OnceLock<(PathBuf, Result<ort::environment::Environment, String>)> = OnceLock::new();

/// The ONNX Runtime environment, loading `lib` on first use. Later calls
/// get the same environment (whatever path they name); an error names the
/// library and why.
pub fn runtime(lib: &Path) -> Result<&'static ort::environment::Environment, String> {
    let (path, env) = RUNTIME.get_or_init(|| {
        let env = ort::init_from(lib)
            .map_err(|e| format!("loading ONNX Runtime {}: {e}", lib.display()))
            .and_then(|b| b.with_name("voxline").build().map_err(|e| e.to_string()));
        (lib.to_path_buf(), env)
    });
    env.as_ref()
        .map_err(|why| format!("{why} (ONNX Runtime library {})", path.display()))
}

/// Why a model could not be loaded: the file at fault (the runtime library
/// or the model) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub path: String,
    /// Why.
    pub why: String,
}

/// A session of `model` on `threads` intra-op threads (at least one), in
/// the environment of the runtime library `lib`.
pub fn session(lib: &Path, model: &Path, threads: usize) -> Result<ort::session::Session, LoadError> {
    let env = runtime(lib).map_err(|why| LoadError {
        path: lib.display().to_string(),
        why,
    })?;
    ort::session::Session::builder(env)
        .and_then(|b| b.with_intra_threads(threads.max(1)).map_err(Into::into))
        .and_then(|mut b| b.commit_from_file(model))
        .map_err(|e| LoadError {
            path: model.display().to_string(),
            why: e.to_string(),
        })
}
