//! Domain packs reloaded while the server runs (decision 0082): each agent
//! route watches its pack's folder, and when its files change (and then stay
//! put for one more look) loads it again beside the one serving. A pack that
//! loads and checks is swapped in for the next call (calls up keep theirs);
//! a broken one is refused with its error (file and field) and the old one
//! keeps serving until the files change again.

use crate::handlers::agent_route::AgentRoute;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use voxline_agent::{DomainPack, PackError};

/// How often a pack's folder is looked at.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Folder levels looked into below the pack's own (knowledge/, training/...).
const DEPTH: usize = 3;

/// The pack's files as last seen: path, size and modification time of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackSignature(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl PackSignature {
    /// Reads the signature of the pack in `dir` (hidden files and the
    /// temporary files of a write in progress left out).
    pub fn of(dir: &Path) -> std::io::Result<PackSignature> {
        let mut files = Vec::new();
        walk(dir, DEPTH, &mut files)?;
        files.sort();
        Ok(PackSignature(files))
    }

    /// How many files it covers.
    pub fn files(&self) -> usize {
        self.0.len()
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".tmp") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_dir() {
            if depth > 0 {
                walk(&entry.path(), depth - 1, out)?;
            }
        } else {
            out.push((entry.path(), meta.len(), meta.modified().ok()));
        }
    }
    Ok(())
}

/// Loads and checks the pack in `dir` and, given the embedding model,
/// embeds its knowledge, its tools' examples and its curated wordings.
/// Blocking (reading and embedding take ~1 s): run it off the runtime.
pub fn load_pack(dir: &Path, embedder: Option<Arc<voxline_llm::Embedder>>) -> Result<DomainPack, PackError> {
    let pack = DomainPack::load(dir)?;
    match embedder {
        Some(e) => pack.understand(e),
        None => Ok(pack),
    }
}

/// Watches `route`'s pack until `shutdown`, reloading it when its files
/// change (see the module's doc).
pub async fn watch(route: Arc<AgentRoute>, name: String, shutdown: CancellationToken) {
    let dir = route.pack_dir();
    // A change seen once: reloaded when the next look finds the same files
    // (a copy or an editor's save is not read half-done).
    let mut seen: Option<PackSignature> = None;
    let mut unreadable = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let d = dir.clone();
        let signature = match tokio::task::spawn_blocking(move || PackSignature::of(&d)).await {
            Ok(Ok(s)) => {
                unreadable = false;
                s
            }
            Ok(Err(e)) => {
                if !unreadable {
                    tracing::warn!(route = %name, pack = %dir.display(), error = %e, "cannot read the pack's folder: the loaded pack keeps serving");
                }
                unreadable = true;
                continue;
            }
            Err(_) => continue,
        };
        if route.is_current_or_refused(&signature) {
            seen = None;
            continue;
        }
        if seen.as_ref() != Some(&signature) {
            seen = Some(signature);
            continue;
        }
        seen = None;
        // Errors are logged and kept by `reload` itself.
        let _ = route.reload(&name).await;
    }
}
