//! What the model-backed tests share: finding fetched files and the JFK clip.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

/// Files under the models folder, or None (skip) when one is missing.
pub fn fetched(paths: &[&str]) -> Option<Vec<PathBuf>> {
    voxline_models::fetched_for_test(paths)
}

/// The ONNX Runtime library, as the manifest places it.
pub const ONNX_RUNTIME: &str = "onnxruntime/libonnxruntime.so.1.31.1";
/// The JFK sample, as the manifest places it.
pub const JFK_WAV: &str = "test-audio/jfk.wav";

/// A 16 kHz mono 16-bit WAV as samples in -1..1.
pub fn read_16k(path: &PathBuf) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).expect("open WAV");
    assert_eq!(reader.spec().sample_rate, 16_000);
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect()
}
