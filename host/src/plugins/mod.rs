//! Plugins on disk: manifests, discovery in the plugins directory, staging and the registry of
//! what is serving.
//!
//! A plugin is `<id>.toml` + `<id>.wasm`, either directly in the plugins directory or in a
//! folder of the same name (`plugins/echo/echo.toml`), which is how first-party plugins sit
//! beside their sources.

mod error;
pub mod manifest;
mod registry;
mod reload;
mod stage;
mod watcher;

use std::path::{Path, PathBuf};

pub use error::{Error, Step};
pub use manifest::{Kind, Manifest};
pub use registry::{Candidate, Failure, Registry, Rollout, Route, Slot, Transition};
pub use reload::{Reloader, Summary};
pub use stage::{Instance, Loader, Plugin, Provider};
pub use watcher::{Watcher, watch};

/// Manifest files in `dir`: `*.toml` at the top level and `<name>/<name>.toml` one level down.
/// Tools' own files (`Cargo.toml`, `rustfmt.toml`...) are skipped: first-party plugin sources
/// share the folder.
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

/// Configuration files of Rust tools that may share the folder with first-party sources.
const NOT_PLUGINS: &[&str] = &["Cargo", "rustfmt", ".rustfmt", "clippy", ".clippy", "rust-toolchain", "deny", "taplo"];

/// Whether `path` could be a plugin manifest: `*.toml`, but not a known tool's configuration.
pub fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
        && path.file_stem().and_then(|s| s.to_str()).is_some_and(|stem| !NOT_PLUGINS.contains(&stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plugin manifests are found at the top and one folder down; tools' files are not.
    #[test]
    fn discovery_skips_tool_configuration() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["echo.toml", "Cargo.toml", "rustfmt.toml", "clippy.toml", "notes.md"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("openai")).unwrap();
        std::fs::write(dir.path().join("openai/openai.toml"), "").unwrap();
        std::fs::write(dir.path().join("openai/Cargo.toml"), "").unwrap();
        let found: Vec<String> = discover(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(found, ["echo.toml", "openai/openai.toml"]);
    }
}
