//! The audio end-of-turn model: smart-turn v3 (ONNX, through `ort`) hears
//! how the caller finished — falling or rising pitch, a drawn-out filler, a
//! cut-off word — and says how likely their turn is complete. It reads the
//! last 8 s of the turn as log-mel features ([`crate::turn_features`]).
//! A few sessions are shared by every call; each inference runs on a
//! blocking thread, so it never holds up the media or the recogniser.

use crate::turn_features::{MelFeatures, N_FRAMES, N_MELS};
use crate::AsrError;
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the model heard at the end of a turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnVerdict {
    /// Probability that the turn is complete, 0..1.
    pub complete: f32,
    /// Features and inference, wall time (without the wait for a session).
    pub took: Duration,
}

/// The loaded model: a few sessions (one inference each at a time) and
/// the feature computation.
pub struct TurnModel {
    path: PathBuf,
    free: flume::Receiver<Session>,
    give_back: flume::Sender<Session>,
    features: MelFeatures,
}

impl std::fmt::Debug for TurnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnModel").field("path", &self.path).finish()
    }
}

impl TurnModel {
    /// Loads `model` into `sessions` sessions of one thread each, on the
    /// ONNX Runtime library `runtime_lib`. An error names the file and why.
    pub fn load(runtime_lib: &Path, model: &Path, sessions: usize) -> Result<Arc<TurnModel>, AsrError> {
        let fail = |why: String| AsrError::Load {
            path: model.display().to_string(),
            why,
        };
        if !model.is_file() {
            return Err(fail("no such file (voxline models fetch brings it)".into()));
        }
        let (give_back, free) = flume::unbounded();
        for _ in 0..sessions.max(1) {
            let session = voxline_onnx::session(runtime_lib, model, 1)?;
            let ok = session.inputs().iter().any(|i| i.name() == "input_features")
                && session.outputs().iter().any(|o| o.name() == "logits");
            if !ok {
                return Err(fail("not a smart-turn v3 model (no input_features → logits)".into()));
            }
            give_back.send(session).map_err(|e| fail(e.to_string()))?;
        }
        Ok(Arc::new(TurnModel {
            path: model.to_path_buf(),
            free,
            give_back,
            features: MelFeatures::new(),
        }))
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Judges the turn `audio` (16 kHz, -1..1, the last 8 s are used) on
    /// the calling thread, waiting for a free session.
    pub fn judge_blocking(&self, audio: &[f32]) -> Result<TurnVerdict, AsrError> {
        let mut session = self.free.recv().map_err(|_| AsrError::Pool("no turn model session"))?;
        let started = Instant::now();
        let result = self.run(&mut session, audio);
        // The receiver lives in `self`: sending back cannot fail.
        let _ = self.give_back.send(session);
        result.map(|complete| TurnVerdict {
            complete,
            took: started.elapsed(),
        })
    }

    /// Judges the turn `audio` on a blocking thread.
    pub async fn judge(self: &Arc<Self>, audio: Arc<[f32]>) -> Result<TurnVerdict, AsrError> {
        let model = self.clone();
        tokio::task::spawn_blocking(move || model.judge_blocking(&audio))
            .await
            .map_err(|e| AsrError::Decode(format!("turn model: {e}")))?
    }

    fn run(&self, session: &mut Session, audio: &[f32]) -> Result<f32, AsrError> {
        let err = |e: ort::Error| AsrError::Decode(format!("turn model: {e}"));
        let features = self.features.compute(audio);
        let input = Tensor::from_array(([1usize, N_MELS, N_FRAMES], features)).map_err(err)?;
        let outputs = session.run(ort::inputs!["input_features" => input]).map_err(err)?;
        let (_, p) = outputs["logits"].try_extract_tensor::<f32>().map_err(err)?;
        let p = p
            .first()
            .copied()
            .ok_or_else(|| AsrError::Decode("turn model: empty output".into()))?;
        Ok(p.clamp(0.0, 1.0))
    }
}
