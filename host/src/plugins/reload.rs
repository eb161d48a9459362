//! Keeps the registry in step with the plugins directory: stages new and changed plugins off
//! the request path, unloads removed ones, and skips files whose bytes did not change. Reloads
//! run one at a time so transitions apply in the order the files changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::discover;
use super::registry::{Registry, Rollout};
use super::stage::Loader;

/// What one pass did, by plugin id.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub staged: Vec<String>,
    pub unchanged: Vec<String>,
    pub failed: Vec<String>,
    pub unloaded: Vec<String>,
}

enum Outcome {
    Staged,
    Unchanged,
    Failed,
    Unloaded,
    Absent,
}

/// Reloads plugins from one directory into one registry.
pub struct Reloader {
    loader: Loader,
    registry: Arc<Registry>,
    dir: PathBuf,
    rollout: Rollout,
    gate: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// `rollout` applies to plugins whose manifest has no `[rollout]` of its own.
    pub fn new(loader: Loader, registry: Arc<Registry>, dir: PathBuf, rollout: Rollout) -> Self {
        Self { loader, registry, dir, rollout, gate: tokio::sync::Mutex::new(()) }
    }

    /// The directory being served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Brings every plugin in line with the directory: stages new and changed ones (in
    /// parallel), unloads the ones whose files are gone.
    pub async fn sync(&self) -> std::io::Result<Summary> {
        let mut ids: BTreeSet<String> = discover(&self.dir)?
            .iter()
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
            .collect();
        ids.extend(self.registry.slots().keys().cloned());
        Ok(self.refresh(ids).await)
    }

    /// Re-checks the plugins named `ids`.
    pub async fn refresh(&self, ids: BTreeSet<String>) -> Summary {
        let _one_at_a_time = self.gate.lock().await;
        let outcomes = futures::future::join_all(ids.iter().map(|id| self.refresh_one(id))).await;
        let mut summary = Summary::default();
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Staged => summary.staged.push(id),
                Outcome::Unchanged => summary.unchanged.push(id),
                Outcome::Failed => summary.failed.push(id),
                Outcome::Unloaded => summary.unloaded.push(id),
                Outcome::Absent => {}
            }
        }
        summary
    }

    async fn refresh_one(&self, id: &str) -> Outcome {
        let Some(manifest) = manifest_path(&self.dir, id) else {
            return if self.registry.unload(id) { Outcome::Unloaded } else { Outcome::Absent };
        };
        let fingerprint = fingerprint(&manifest).await;
        if let Some(fingerprint) = &fingerprint
            && self.registry.rejected(&manifest, fingerprint)
        {
            // Rolled back once already; it gets another chance when its files change.
            return Outcome::Failed;
        }
        if let Some(fingerprint) = &fingerprint
            && self.registry.slots().get(id).is_some_and(|slot| {
                slot.stable.fingerprint == *fingerprint
                    || slot.candidate.as_ref().is_some_and(|c| c.plugin.fingerprint == *fingerprint)
            })
        {
            // The files are back to what serves (e.g. a broken copy was replaced by the good
            // one again): whatever failed in between is no longer true.
            self.registry.clear_failure(&manifest);
            return Outcome::Unchanged;
        }
        match self.loader.stage(&manifest).await {
            Ok(plugin) => {
                let rollout = plugin.manifest.rollout.unwrap_or(self.rollout);
                match self.registry.install(plugin, rollout) {
                    true => Outcome::Staged,
                    false => Outcome::Failed,
                }
            }
            Err(error) => {
                self.registry.record_failure(error);
                Outcome::Failed
            }
        }
    }
}

/// `<dir>/<id>.toml`, else `<dir>/<id>/<id>.toml`, if either exists.
pub fn manifest_path(dir: &Path, id: &str) -> Option<PathBuf> {
    [dir.join(format!("{id}.toml")), dir.join(id).join(format!("{id}.toml"))].into_iter().find(|p| p.is_file())
}

/// sha256 over the manifest and its wasm, the identity of a plugin's version on disk.
pub async fn fingerprint(manifest: &Path) -> Option<String> {
    let text = tokio::fs::read(manifest).await.ok()?;
    let wasm = tokio::fs::read(manifest.with_extension("wasm")).await.ok()?;
    Some(fingerprint_of(&text, &wasm))
}

/// The fingerprint of a manifest's bytes and its wasm's bytes.
pub fn fingerprint_of(manifest: &[u8], wasm: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((manifest.len() as u64).to_le_bytes());
    hasher.update(manifest);
    hasher.update(wasm);
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
