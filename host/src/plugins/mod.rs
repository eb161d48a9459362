//! Plugins on disk: manifests, discovery in the plugins directory, staging and the registry of
//! what is serving.
//!
//! A plugin is `<id>.toml` + `<id>.wasm`, either directly in the plugins directory or in a
//! folder of the same name (`plugins/echo/echo.toml`), which is how first-party plugins sit
//! beside their sources.

mod error;
pub mod manifest;
mod registry;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Error, Step};
pub use manifest::{Kind, Manifest};
pub use registry::{Failure, Registry};
pub use stage::{Instance, Loader, Plugin, Provider};

/// Manifest files in `dir`: `*.toml` at the top level and `<name>/<name>.toml` one level down.
/// `Cargo.toml` is skipped: first-party plugin sources share the folder.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                let nested = path.join(format!("{name}.toml"));
                if nested.is_file() {
                    found.push(nested);
                }
            }
        } else if is_manifest(&path) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml") && path.file_name().is_some_and(|n| n != "Cargo.toml")
}

/// Stages every plugin in `dir` concurrently and installs those that pass. Failures are
/// recorded in the registry and logged; they never stop the others.
pub async fn load_all(loader: &Loader, registry: &Arc<Registry>, dir: &Path) -> std::io::Result<()> {
    let manifests = discover(dir)?;
    let staged = futures::future::join_all(manifests.iter().map(|path| loader.stage(path))).await;
    for result in staged {
        match result {
            Ok(plugin) => {
                tracing::info!(
                    plugin = %plugin.label(),
                    kind = ?plugin.manifest.kind,
                    load_ms = plugin.load_time.as_millis() as u64,
                    cached = plugin.cached,
                    "plugin loaded{}",
                    if plugin.manifest.demo { " (offline demo)" } else { "" }
                );
                registry.install(plugin);
            }
            Err(error) => {
                tracing::error!("plugin not loaded: {error}");
                registry.record_failure(error);
            }
        }
    }
    Ok(())
}
