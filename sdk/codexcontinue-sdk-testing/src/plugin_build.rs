//! Builds a plugin crate for `wasm32-wasip2` from inside its own tests, with cargo, into a
//! target directory of its own, and remembers which crate each component came from so
//! [`TestHost::builder`](crate::TestHost::builder) can find the manifest beside the crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Crate folder -> the component built from it, for this process: a crate is built once however
/// many tests ask, and the builder looks up a component's crate to find its manifest.
static BUILT: Mutex<Vec<Built>> = Mutex::new(Vec::new());

struct Built {
    crate_dir: PathBuf,
    target_dir: PathBuf,
    wasm: PathBuf,
}

/// Why a plugin could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The folder has no `Cargo.toml`.
    #[error("{}: not a cargo crate (no Cargo.toml)", .0.display())]
    NotACrate(PathBuf),
    /// The Rust standard library for `wasm32-wasip2` is not installed.
    #[error("the {WASM_TARGET} target is not installed: run `rustup target add {WASM_TARGET}`")]
    TargetMissing,
    /// cargo could not be run, or its output could not be read.
    #[error("running cargo: {0}")]
    Cargo(String),
    /// cargo ran and failed; `output` is the end of what it printed.
    #[error("building {} for {WASM_TARGET} failed:\n{output}", .crate_dir.display())]
    Failed {
        /// The crate that failed to build.
        crate_dir: PathBuf,
        /// The last lines cargo printed (compiler errors included).
        output: String,
    },
    /// The build succeeded but produced no `.wasm` for this crate.
    #[error(
        "building {} produced no .wasm component: a plugin is a library with `crate-type = [\"cdylib\"]` in its [lib] section",
        .0.display()
    )]
    NoComponent(PathBuf),
}

/// Builds the plugin crate in `crate_dir` (`cargo build --release --target wasm32-wasip2`) and
/// returns the path of its component. Pass `env!("CARGO_MANIFEST_DIR")` from the plugin's own
/// tests. The same as `PluginBuild::new(crate_dir).build()`.
///
/// Blocks while cargo runs; a crate is built once per test process, later calls return the
/// same path at once.
///
/// # Errors
///
/// [`BuildError`]: not a crate, the target missing (with the `rustup` command that adds it),
/// compile errors (with cargo's output), or a crate that is not a `cdylib`.
pub fn build_plugin(crate_dir: impl AsRef<Path>) -> Result<PathBuf, BuildError> {
    PluginBuild::new(crate_dir).build()
}

/// A plugin build with options; [`build_plugin`] is the common case.
#[derive(Debug, Clone)]
pub struct PluginBuild {
    crate_dir: PathBuf,
    target_dir: Option<PathBuf>,
}

impl PluginBuild {
    /// The crate in `crate_dir`, built into `<workspace target dir>/sdk-testing`.
    ///
    /// A target directory of its own keeps the build clear of the lock that the running
    /// `cargo test` may hold on the usual one.
    pub fn new(crate_dir: impl AsRef<Path>) -> Self {
        Self { crate_dir: crate_dir.as_ref().to_path_buf(), target_dir: None }
    }

    /// Builds into `dir` instead (e.g. the target directory an earlier build already filled).
    pub fn target_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.target_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Runs the build and returns the path of the `.wasm` component.
    ///
    /// # Errors
    ///
    /// As [`build_plugin`].
    pub fn build(&self) -> Result<PathBuf, BuildError> {
        let manifest = self.crate_dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(BuildError::NotACrate(self.crate_dir.clone()));
        }
        let crate_dir = self.crate_dir.canonicalize().map_err(|e| BuildError::Cargo(e.to_string()))?;
        let target_dir = match &self.target_dir {
            Some(dir) => dir.clone(),
            None => workspace_target_dir(&crate_dir)?.join("sdk-testing"),
        };
        // Held during the build: concurrent tests wait for the first build and reuse it.
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = built.iter().find(|b| b.crate_dir == crate_dir && b.target_dir == target_dir) {
            return Ok(b.wasm.clone());
        }
        if !wasm_target_installed() {
            return Err(BuildError::TargetMissing);
        }
        let wasm = cargo_build(&crate_dir, &target_dir)?;
        built.push(Built { crate_dir, target_dir, wasm: wasm.clone() });
        Ok(wasm)
    }
}

/// The crate folder `wasm` was built from by [`build_plugin`] in this process, if it was.
pub(crate) fn crate_of(wasm: &Path) -> Option<PathBuf> {
    let built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built.iter().find(|b| b.wasm == wasm).map(|b| b.crate_dir.clone())
}

/// `cargo`: the one running these tests when there is one.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The target directory of the workspace `crate_dir` belongs to, from `cargo metadata`.
fn workspace_target_dir(crate_dir: &Path) -> Result<PathBuf, BuildError> {
    let output = cargo()
        .current_dir(crate_dir)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .map_err(|e| BuildError::Cargo(format!("cargo metadata: {e}")))?;
    if !output.status.success() {
        return Err(BuildError::Failed { crate_dir: crate_dir.to_path_buf(), output: tail(&output.stderr) });
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| BuildError::Cargo(format!("reading cargo metadata: {e}")))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| BuildError::Cargo("cargo metadata names no target directory".into()))
}

/// Whether the `wasm32-wasip2` standard library is installed. When `rustc` cannot be asked,
/// the build goes ahead and reports whatever cargo says.
fn wasm_target_installed() -> bool {
    let Ok(output) = Command::new("rustc").args(["--print", "target-libdir", "--target", WASM_TARGET]).output() else {
        return true;
    };
    if !output.status.success() {
        return true;
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_dir(libdir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Builds and returns the `.wasm` cargo reports for the crate's cdylib.
fn cargo_build(crate_dir: &Path, target_dir: &Path) -> Result<PathBuf, BuildError> {
    let manifest = crate_dir.join("Cargo.toml");
    // Run from the crate so its workspace's .cargo/config.toml applies; the target is named
    // explicitly, whatever that config's default.
    let output = cargo()
        .current_dir(crate_dir)
        .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .map_err(|e| BuildError::Cargo(format!("cargo build: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("may not be installed") || stderr.contains("can't find crate for `core`") {
            return Err(BuildError::TargetMissing);
        }
        return Err(BuildError::Failed { crate_dir: crate_dir.to_path_buf(), output: tail(&output.stderr) });
    }
    component_of(&String::from_utf8_lossy(&output.stdout), &manifest)
        .ok_or_else(|| BuildError::NoComponent(crate_dir.to_path_buf()))
}

/// The `.wasm` file among the cdylib artifacts cargo reported (JSON lines) for `manifest`.
fn component_of(messages: &str, manifest: &Path) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().is_some_and(|p| Path::new(p) == manifest))
        .filter(|m| m["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib")))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}

/// The last lines of cargo's output, enough to show the compiler's errors.
fn tail(output: &[u8]) -> String {
    const LINES: usize = 60;
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the cdylib artifact of the crate asked for counts, not its dependencies' rlibs.
    #[test]
    fn component_is_the_crates_cdylib() {
        let manifest = Path::new("/w/hello/Cargo.toml");
        let messages = [
            r#"{"reason":"compiler-artifact","manifest_path":"/w/sdk/Cargo.toml","target":{"kind":["lib"]},"filenames":["/t/libsdk.rlib"]}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/hello/Cargo.toml","target":{"kind":["cdylib"]},"filenames":["/t/hello.wasm"]}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(component_of(&messages, manifest), Some(PathBuf::from("/t/hello.wasm")));
        assert_eq!(component_of(&messages, Path::new("/w/other/Cargo.toml")), None);
    }
}
