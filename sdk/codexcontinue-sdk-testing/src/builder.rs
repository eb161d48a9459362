//! How a [`TestHost`] is set up: which component, which manifest, which environment and limits;
//! then staging it exactly as the server stages a plugin file.
//!
//! The host stages `<id>.toml` + `<id>.wasm` from a folder, so the builder writes the manifest
//! (edited if limits were overridden) and a copy of the component into a temporary folder and
//! hands that to the host's own [`Loader`]; errors are rewritten to name the files you gave.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use codexcontinue::config::Env;
use codexcontinue::plugins::{Loader, Manifest, Step};
use codexcontinue::runtime::{PoolConfig, Runtime, RuntimeConfig};
use tracing::instrument::WithSubscriber;

use crate::capture::Capture;
use crate::{StageError, TestHost, plugin_build};

/// The manifest's `[limits]`, with the runtime defaults for what it leaves out. Changing a field
/// in [`TestHostBuilder::limits`] overrides it for the test, within the ranges the server
/// accepts (a value out of range fails staging as it would on the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in MiB (1 to 512).
    pub memory_mb: u32,
    /// Wall clock for a whole call, host calls included, in milliseconds.
    pub timeout_ms: u64,
    /// Time the guest may spend computing per call, in milliseconds.
    pub cpu_ms: u64,
    /// Calls in flight at once; more wait for a slot until their deadline.
    pub max_concurrency: u32,
}

impl From<&codexcontinue::runtime::Limits> for Limits {
    fn from(l: &codexcontinue::runtime::Limits) -> Self {
        Self {
            memory_mb: l.memory_mb,
            timeout_ms: l.timeout.as_millis() as u64,
            cpu_ms: l.cpu.as_millis() as u64,
            max_concurrency: l.max_concurrency,
        }
    }
}

/// One `.limits(...)` edit.
type LimitsEdit = Box<dyn FnOnce(&mut Limits) + Send>;

/// Where the manifest comes from.
enum ManifestSource {
    /// `<stem>.toml` beside the component, or beside the crate it was built from.
    Beside,
    File(PathBuf),
    Text(String),
}

/// Sets up a [`TestHost`]; made by [`TestHost::builder`], finished by [`start`](Self::start).
pub struct TestHostBuilder {
    wasm: PathBuf,
    manifest: ManifestSource,
    env: Vec<(String, String)>,
    limits: Vec<LimitsEdit>,
    cache_dir: Option<PathBuf>,
}

impl TestHostBuilder {
    pub(crate) fn new(wasm: &Path) -> Self {
        Self {
            wasm: wasm.to_path_buf(),
            manifest: ManifestSource::Beside,
            env: Vec::new(),
            limits: Vec::new(),
            cache_dir: default_cache_dir(),
        }
    }

    /// Reads the manifest from `path` instead of looking for it beside the component. The file
    /// name must still be `<id>.toml`, as on the server.
    pub fn manifest(mut self, path: impl AsRef<Path>) -> Self {
        self.manifest = ManifestSource::File(path.as_ref().to_path_buf());
        self
    }

    /// Uses `text` as the manifest, as if it were a file named after its `id`.
    pub fn manifest_text(mut self, text: impl Into<String>) -> Self {
        self.manifest = ManifestSource::Text(text.into());
        self
    }

    /// Sets a variable in the environment the host reads secrets and `[env]` overrides from.
    /// The host sees only what is set here, never the test process's environment. An endpoint
    /// override (such as `OPENAI_BASE_URL`) allows exactly that origin, as in production.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Overrides the manifest's `[limits]`: `edit` gets the manifest's limits (defaults filled
    /// in) and changes what the test needs, e.g. `|l| l.cpu_ms = 100`. May be called repeatedly.
    pub fn limits(mut self, edit: impl FnOnce(&mut Limits) + Send + 'static) -> Self {
        self.limits.push(Box::new(edit));
        self
    }

    /// Keeps compiled components in `dir`, keyed by the component's bytes and the engine's
    /// settings. The default is a `codexcontinue-sdk-testing/cache` folder in the cargo target
    /// directory the test binary runs from (`target/` or `target/<triple>/`), else no cache.
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Compiles the component on every start, without a cache.
    pub fn no_cache(mut self) -> Self {
        self.cache_dir = None;
        self
    }

    /// Stages the plugin as the server does (read, manifest, compile, version, link,
    /// self-check: `info()` for a provider, `init()` for a memory plugin) and returns a host
    /// ready to call it.
    ///
    /// # Errors
    ///
    /// The [`StageError`] the server would show for this plugin, naming the file, the step and
    /// the reason; also a `read` error when the component or its manifest cannot be found.
    pub async fn start(self) -> Result<TestHost, StageError> {
        let read_error =
            |file: &Path, reason: String| StageError { file: file.to_path_buf(), step: Step::Read, reason };
        if !self.wasm.is_file() {
            return Err(read_error(
                &self.wasm,
                "the component does not exist; build it with `build_plugin(env!(\"CARGO_MANIFEST_DIR\"))` or \
                 `cargo build --release --target wasm32-wasip2`"
                    .into(),
            ));
        }
        // `shown` is the manifest path errors name; `stem` the file name the host stages it as.
        let (shown, text) = match &self.manifest {
            ManifestSource::Beside => {
                let path = manifest_beside(&self.wasm).map_err(|reason| read_error(&self.wasm, reason))?;
                let text = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e.to_string()))?;
                (path, text)
            }
            ManifestSource::File(path) => {
                (path.clone(), std::fs::read_to_string(path).map_err(|e| read_error(path, e.to_string()))?)
            }
            ManifestSource::Text(text) => (PathBuf::from(format!("{}.toml", id_in(text))), text.clone()),
        };
        let stem = shown.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_string();
        let pool = PoolConfig::default();
        let text = match self.limits.is_empty() {
            true => text,
            false => with_limits(&text, &stem, pool.max_memory_mb, self.limits),
        };

        let dir = tempfile::tempdir().map_err(|e| read_error(&shown, format!("creating a temporary folder: {e}")))?;
        let staged = dir.path().join(format!("{stem}.toml"));
        std::fs::write(&staged, &text).map_err(|e| read_error(&shown, e.to_string()))?;
        std::fs::copy(&self.wasm, staged.with_extension("wasm")).map_err(|e| read_error(&self.wasm, e.to_string()))?;

        let max_memory_mb = pool.max_memory_mb;
        let runtime = Runtime::new(RuntimeConfig { pool, cache_dir: self.cache_dir }).map_err(|e| StageError {
            file: shown.clone(),
            step: Step::Compile,
            reason: format!("creating the engine: {e:#}"),
        })?;
        let env: Env = self.env.into_iter().collect();
        let loader = Loader::new(runtime, Arc::new(env), max_memory_mb);
        let capture = Capture::new();
        let plugin = loader.stage(&staged).with_subscriber(capture.dispatch().clone()).await.map_err(|e| {
            let staged_prefix = format!("{}/", dir.path().display());
            let shown_prefix = match shown.parent() {
                Some(p) if !p.as_os_str().is_empty() => format!("{}/", p.display()),
                _ => String::new(),
            };
            StageError { file: shown.clone(), step: e.step, reason: e.reason.replace(&staged_prefix, &shown_prefix) }
        })?;
        Ok(TestHost::new(plugin, capture))
    }
}

/// The manifest for `wasm`: `<stem>.toml` beside it, or beside the crate [`build_plugin`] built
/// it from (with `_` in the stem also tried as `-`, since cargo names `hello-provider`'s
/// component `hello_provider.wasm`).
///
/// [`build_plugin`]: crate::build_plugin
fn manifest_beside(wasm: &Path) -> Result<PathBuf, String> {
    let stem = wasm.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let names = [format!("{stem}.toml"), format!("{}.toml", stem.replace('_', "-"))];
    let folders = [wasm.parent().map(Path::to_path_buf), plugin_build::crate_of(wasm)];
    let candidates: Vec<PathBuf> =
        folders.iter().flatten().flat_map(|dir| names.iter().map(move |name| dir.join(name))).collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        format!(
            "no manifest found for this component (looked for {}); name it with `.manifest(path)` or give it with \
             `.manifest_text(text)`",
            tried.join(", ")
        )
    })
}

/// The `id` a manifest's text declares, or `plugin` when it cannot be read (staging then says
/// what is wrong with it).
fn id_in(text: &str) -> String {
    let table: Option<toml::Table> = toml::from_str(text).ok();
    table.and_then(|t| t.get("id").and_then(|v| v.as_str()).map(str::to_string)).unwrap_or_else(|| "plugin".into())
}

/// The manifest `text` with its `[limits]` replaced by the manifest's limits after `edits`.
/// A manifest the host would refuse is returned unchanged, so staging reports it as it is.
fn with_limits(text: &str, stem: &str, max_memory_mb: u32, edits: Vec<LimitsEdit>) -> String {
    let Ok(manifest) = Manifest::parse(Path::new(&format!("{stem}.toml")), text, max_memory_mb) else {
        return text.to_string();
    };
    let Ok(mut table) = toml::from_str::<toml::Table>(text) else { return text.to_string() };
    let mut limits = Limits::from(&manifest.limits());
    for edit in edits {
        edit(&mut limits);
    }
    let mut section = toml::Table::new();
    section.insert("memory_mb".into(), i64::from(limits.memory_mb).into());
    section.insert("timeout_ms".into(), i64::try_from(limits.timeout_ms).unwrap_or(i64::MAX).into());
    section.insert("cpu_ms".into(), i64::try_from(limits.cpu_ms).unwrap_or(i64::MAX).into());
    section.insert("max_concurrency".into(), i64::from(limits.max_concurrency).into());
    table.insert("limits".into(), section.into());
    toml::to_string(&table).unwrap_or_else(|_| text.to_string())
}

/// `<target dir>/codexcontinue-sdk-testing/cache`, where the target dir is the nearest ancestor
/// of the running test binary that cargo marked with `CACHEDIR.TAG` (`target/<triple>/` when
/// tests are built with `--target`). Compiled artifacts are loaded
/// without re-checking their code, so the cache lives only where the test binary itself does.
fn default_cache_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file())?;
    Some(target.join("codexcontinue-sdk-testing").join("cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "id = \"demo\"\nversion = \"0.1.0\"\nkind = \"provider\"\nwit = \"0.2.0\"\n\n[limits]\n\
                            cpu_ms = 500\n\n[config]\ngreeting = \"hi\"\n";

    /// Overridden limits replace the table; the rest of the manifest and the unchanged limits
    /// (defaults filled in) stay as they were.
    #[test]
    fn limits_are_overridden_in_the_manifest() {
        let edits: Vec<LimitsEdit> = vec![Box::new(|l| l.timeout_ms = 2000)];
        let edited = with_limits(MANIFEST, "demo", 512, edits);
        let manifest = Manifest::parse(Path::new("demo.toml"), &edited, 512).unwrap();
        let limits = Limits::from(&manifest.limits());
        let defaults = codexcontinue::runtime::Limits::default();
        assert_eq!(
            limits,
            Limits {
                timeout_ms: 2000,
                cpu_ms: 500,
                memory_mb: defaults.memory_mb,
                max_concurrency: defaults.max_concurrency
            }
        );
        assert_eq!(manifest.config["greeting"], "hi");
    }

    /// A manifest the host refuses is left alone, so staging names its real fault.
    #[test]
    fn broken_manifests_are_not_rewritten() {
        let broken = format!("colour = \"red\"\n{MANIFEST}");
        let edits: Vec<LimitsEdit> = vec![Box::new(|l| l.cpu_ms = 1)];
        assert_eq!(with_limits(&broken, "demo", 512, edits), broken);
    }

    /// The id comes from the text; unreadable text stages as `plugin.toml`.
    #[test]
    fn id_of_manifest_text() {
        assert_eq!(id_in(MANIFEST), "demo");
        assert_eq!(id_in("not toml ["), "plugin");
    }
}
