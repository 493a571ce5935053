//! Silero VAD (v6, ONNX) through ONNX Runtime (`ort`, loading the
//! `libonnxruntime.so` fetched from PyPI): the probability that a 32 ms
//! window (512 samples at 16 kHz, with the 64 samples before it as context)
//! holds speech. The recurrent state carries over between windows.

use crate::AsrError;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;

/// Samples per VAD window at 16 kHz.
pub const VAD_WINDOW: usize = 512;
/// Samples of context before each window.
const CONTEXT: usize = 64;

/// One stream's voice activity detector.
pub struct SileroVad {
    session: Session,
    state: Vec<f32>,
    context: Vec<f32>,
    input: Vec<f32>,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SileroVad")
    }
}

impl SileroVad {
    /// Loads the model with ONNX Runtime from `runtime_lib`; errors name the file.
    pub fn load(runtime_lib: &Path, model: &Path) -> Result<SileroVad, AsrError> {
        let session = voxline_onnx::session(runtime_lib, model, 1)?;
        Ok(SileroVad {
            session,
            state: vec![0.0; 2 * 128],
            context: vec![0.0; CONTEXT],
            input: Vec::with_capacity(CONTEXT + VAD_WINDOW),
        })
    }

    /// Forgets the stream (a new call or utterance).
    pub fn reset(&mut self) {
        self.state.fill(0.0);
        self.context.fill(0.0);
    }

    /// The speech probability of the next 512 samples (-1..1, 16 kHz).
    pub fn process(&mut self, window: &[f32]) -> Result<f32, AsrError> {
        if window.len() != VAD_WINDOW {
            return Err(AsrError::Decode(format!(
                "VAD window of {} samples, not {VAD_WINDOW}",
                window.len()
            )));
        }
        let err = |e: ort::Error| AsrError::Decode(format!("VAD: {e}"));
        self.input.clear();
        self.input.extend_from_slice(&self.context);
        self.input.extend_from_slice(window);
        let input = Tensor::from_array(([1usize, CONTEXT + VAD_WINDOW], self.input.clone())).map_err(err)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(err)?;
        let sr = Tensor::from_array(([1usize], vec![16_000i64])).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])
            .map_err(err)?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        let p = prob.first().copied().unwrap_or(0.0);
        let (_, next) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
        if next.len() == self.state.len() {
            self.state.copy_from_slice(next);
        }
        self.context.copy_from_slice(&window[VAD_WINDOW - CONTEXT..]);
        Ok(p)
    }
}
