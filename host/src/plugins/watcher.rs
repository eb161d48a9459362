//! Turns file-system events in the plugins directory into debounced reloads of the plugins they
//! touch. It never compiles or swaps anything itself (see `reload.rs`). Editors' temporary files
//! are ignored; a rename-and-replace or a copy in several writes settles into one reload.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::reload::Reloader;

/// Quiet time after the last event before reloading: long enough to let a copy finish or an
/// editor swap its files, short enough to keep file-to-serving well under 250 ms.
const SETTLE: Duration = Duration::from_millis(50);
/// Longest a burst of events may postpone a reload.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Watches a plugins directory while alive; dropping it stops the watch.
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `reloader`'s directory.
pub fn watch(reloader: Arc<Reloader>) -> notify::Result<Watcher> {
    let dir = std::fs::canonicalize(reloader.dir())
        .map_err(|e| notify::Error::io(e).add_path(reloader.dir().to_path_buf()))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let root = dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) => {
            for id in event.paths.iter().filter_map(|p| plugin_of(&root, p)) {
                let _ = tx.send(id);
            }
        }
        Err(e) => tracing::warn!("plugin watcher: {e}"),
    })?;
    watcher.watch(&dir, RecursiveMode::Recursive)?;
    tracing::info!(dir = %dir.display(), "watching for plugin changes");
    let task = tokio::spawn(debounce(rx, reloader));
    Ok(Watcher { _watcher: watcher, task })
}

async fn debounce(mut rx: mpsc::UnboundedReceiver<String>, reloader: Arc<Reloader>) {
    while let Some(first) = rx.recv().await {
        let mut ids = BTreeSet::from([first]);
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let settle = (tokio::time::Instant::now() + SETTLE).min(deadline);
            match tokio::time::timeout_at(settle, rx.recv()).await {
                Ok(Some(id)) => {
                    ids.insert(id);
                }
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let summary = reloader.refresh(ids).await;
        tracing::debug!(?summary, "plugins reloaded after file changes");
    }
}

/// The plugin id a changed path belongs to: `<id>.toml`/`<id>.wasm` at the top, the same one
/// level down in `<id>/`, or the `<id>/` folder itself.
fn plugin_of(root: &Path, path: &Path) -> Option<String> {
    let relative: PathBuf = path.strip_prefix(root).ok()?.to_path_buf();
    let parts: Vec<&str> = relative
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let plugin_file = |name: &str| {
        let (stem, extension) = name.rsplit_once('.')?;
        let plugin = matches!(extension, "toml" | "wasm")
            && is_id(stem)
            && super::is_manifest(Path::new(&format!("{stem}.toml")));
        plugin.then(|| stem.to_string())
    };
    match parts.as_slice() {
        [name] if is_id(name) => Some(name.to_string()),
        [name] => plugin_file(name),
        [folder, name] => plugin_file(name).filter(|stem| stem == folder),
        _ => None,
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plugin files map to their id; temporaries, build output and unrelated files do not.
    #[test]
    fn paths_map_to_plugin_ids() {
        let root = Path::new("/p");
        let id = |p: &str| plugin_of(root, Path::new(p));
        assert_eq!(id("/p/echo.toml").as_deref(), Some("echo"));
        assert_eq!(id("/p/echo.wasm").as_deref(), Some("echo"));
        assert_eq!(id("/p/echo/echo.wasm").as_deref(), Some("echo"));
        assert_eq!(id("/p/echo").as_deref(), Some("echo"));
        for ignored in [
            "/p/Cargo.toml",
            "/p/.echo.toml.swp",
            "/p/echo.toml~",
            "/p/echo/src/lib.rs",
            "/p/target/wasm32-wasip2/release/echo.wasm",
            "/p/echo/other.toml",
            "/elsewhere/echo.toml",
        ] {
            assert_eq!(id(ignored), None, "{ignored}");
        }
    }
}
