//! Sentence embeddings: a small BERT encoder (all-MiniLM-L6-v2 by default)
//! that turns a question or a knowledge sentence into a unit vector, so
//! that texts meaning the same thing lie close together whatever words
//! they use. Runs on candle's CPU backend; the tokenizer comes from the
//! model folder's `tokenizer.json`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Errors from the embedding model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file could not be read or did not hold a usable model.
    #[error("loading the embedding model {path}: {why}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Tokenising or running the encoder failed.
    #[error("embedding: {0}")]
    Run(String),
}

/// The longest input in tokens; longer texts are cut (knowledge sentences
/// and spoken questions are far shorter).
const MAX_TOKENS: usize = 128;

/// A loaded sentence-embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dir", &self.dir).finish()
    }
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from
    /// `dir`; an error names the file and why.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let file = |name: &str| dir.join(name);
        let fail = |p: &Path, why: String| EmbedError::Load {
            path: p.display().to_string(),
            why,
        };
        let config_path = file("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| fail(&config_path, e.to_string()))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| fail(&config_path, e.to_string()))?;
        let tokenizer_path = file("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| fail(&tokenizer_path, e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| fail(&tokenizer_path, e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let weights = file("model.safetensors");
        if !weights.is_file() {
            return Err(fail(
                &weights,
                "no such file (voxline models fetch puts the default model there)".into(),
            ));
        }
        // SAFETY: the file is memory-mapped read-only; voxline never writes
        // model files while running.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
            .map_err(|e| fail(&weights, e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| fail(&weights, e.to_string()))?;
        Ok(Embedder {
            model,
            tokenizer,
            dir: dir.to_path_buf(),
        })
    }

    /// The unit-length embedding of each text (mean of the token vectors,
    /// padding left out), in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let run = |e: candle_core::Error| EmbedError::Run(e.to_string());
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Run(e.to_string()))?;
        let rows = encodings.len();
        let width = encodings.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for e in &encodings {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
        }
        let device = &self.model.device;
        let ids = Tensor::from_vec(ids, (rows, width), device).map_err(run)?;
        let mask = Tensor::from_vec(mask, (rows, width), device).map_err(run)?;
        let types = ids.zeros_like().map_err(run)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(run)?;
        // Mean over the real tokens: sum(hidden * mask) / sum(mask).
        let mask = mask.to_dtype(DType::F32).map_err(run)?.unsqueeze(2).map_err(run)?;
        let summed = hidden.broadcast_mul(&mask).map_err(run)?.sum(1).map_err(run)?;
        let counts = mask.sum(1).map_err(run)?.clamp(1e-9, f32::MAX).map_err(run)?;
        let mean = summed.broadcast_div(&counts).map_err(run)?;
        let norm = mean
            .sqr()
            .map_err(run)?
            .sum_keepdim(1)
            .map_err(run)?
            .sqrt()
            .map_err(run)?
            .clamp(1e-12, f32::MAX)
            .map_err(run)?;
        let unit = mean.broadcast_div(&norm).map_err(run)?;
        unit.to_vec2::<f32>().map_err(run)
    }
}

/// The cosine similarity of two unit vectors (their dot product).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir() -> Option<PathBuf> {
        let files = voxline_models::fetched_for_test(&["minilm-l6-v2/model.safetensors"])?;
        files[0].parent().map(Path::to_path_buf)
    }

    #[test]
    fn texts_that_mean_the_same_lie_closer_than_texts_that_do_not() {
        let Some(dir) = model_dir() else { return };
        let e = Embedder::load(&dir).unwrap();
        let v = e
            .embed(&[
                "What is the most cash a machine will give me in one day?",
                "You can withdraw up to 1,000 dollars a day from our ATMs.",
                "Contactless payments are accepted up to 100 dollars per payment.",
                "",
            ])
            .unwrap();
        assert_eq!(v.len(), 4);
        for row in &v {
            assert_eq!(row.len(), 384);
        }
        let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let near = similarity(&v[0], &v[1]);
        let far = similarity(&v[0], &v[2]);
        assert!(near > far + 0.1, "near {near} far {far}");
        // Batching does not change a text's vector (padding is masked out).
        let alone = e
            .embed(&["You can withdraw up to 1,000 dollars a day from our ATMs."])
            .unwrap();
        assert!(similarity(&alone[0], &v[1]) > 0.9999);
    }

    #[test]
    fn a_missing_model_names_the_file() {
        let dir = std::env::temp_dir().join(format!("voxline-embed-missing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{ not json").unwrap();
        let e = Embedder::load(&dir).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
