//! Reading a CTranslate2 `model.bin` (binary version 6): the spec name, and
//! every variable with its shape, type and raw little-endian data.

use crate::ModelError;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// The element type of a CTranslate2 variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    fn from_code(c: u8) -> Option<DType> {
        Some(match c {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its shape (outermost first; empty for a scalar).
    pub dims: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
    /// Its data, little-endian.
    pub data: Vec<u8>,
}

impl Variable {
    /// The value of an integer scalar.
    pub fn scalar(&self) -> Option<i64> {
        let d = &self.data;
        match self.dtype {
            DType::I8 => d.first().map(|&b| i64::from(b as i8)),
            DType::I16 => Some(i64::from(i16::from_le_bytes([*d.first()?, *d.get(1)?]))),
            DType::I32 => Some(i64::from(i32::from_le_bytes(d.get(..4)?.try_into().ok()?))),
            _ => None,
        }
    }

    /// The values as f32 (from f32, f16 or bf16).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        let d = &self.data;
        Some(match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::Bf16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => return None,
        })
    }
}

/// A CTranslate2 model file.
#[derive(Debug, Clone)]
pub struct Ct2Model {
    /// The spec name (e.g. `WhisperSpec`).
    pub spec: String,
    /// The spec revision.
    pub revision: u32,
    /// Variables by name.
    pub variables: HashMap<String, Variable>,
    /// Other names of variables (alias → target), e.g. a tied projection.
    pub aliases: HashMap<String, String>,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    file: String,
}

impl Reader<'_> {
    fn err(&self, why: &str) -> ModelError {
        ModelError::Extract {
            package: self.file.clone(),
            path: format!("byte {}", self.pos),
            why: why.to_string(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&[u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(self.err("truncated CTranslate2 model"));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, ModelError> {
        let n = usize::from(self.u16()?);
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| self.err("a name is not UTF-8"))
    }
}

impl Ct2Model {
    /// Reads `model.bin`.
    pub fn load(path: &Path) -> Result<Ct2Model, ModelError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| ModelError::Io {
                context: format!("reading {}", path.display()),
                source,
            })?;
        Ct2Model::parse(&bytes, &path.display().to_string())
    }

    /// Parses the bytes of a `model.bin`; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Ct2Model, ModelError> {
        let mut r = Reader {
            data: bytes,
            pos: 0,
            file: file.to_string(),
        };
        let version = r.u32()?;
        if version != 6 {
            return Err(r.err(&format!("binary version {version}; voxline reads version 6")));
        }
        let spec = r.string()?;
        let revision = r.u32()?;
        let count = r.u32()?;
        let mut variables = HashMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = usize::from(r.u8()?);
            let dims = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = r.u8()?;
            let dtype = DType::from_code(code).ok_or_else(|| r.err(&format!("unknown type code {code}")))?;
            let nbytes = r.u32()? as usize;
            let elements: usize = dims.iter().product();
            if elements * dtype.size() != nbytes {
                return Err(r.err(&format!("{name}: {nbytes} bytes for shape {dims:?} of {dtype:?}")));
            }
            let data = r.take(nbytes)?.to_vec();
            variables.insert(name, Variable { dims, dtype, data });
        }
        let count = r.u32()?;
        let mut aliases = HashMap::new();
        for _ in 0..count {
            let alias = r.string()?;
            let target = r.string()?;
            aliases.insert(alias, target);
        }
        Ok(Ct2Model {
            spec,
            revision,
            variables,
            aliases,
        })
    }
}
