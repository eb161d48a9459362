//! On-disk cache of precompiled components, so a restart or a reload of unchanged bytes skips
//! Cranelift (70-120 ms per plugin).
//!
//! Artifacts are keyed by sha256 of the wasm bytes and the engine's compatibility hash (wasmtime
//! version and every setting that affects code generation), so a stale artifact is never loaded.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles components, reusing artifacts from `dir` when present.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// Feeds `Hash` output into sha256, which (unlike `DefaultHasher`) is stable across builds.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is read")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// A cache in `dir` (created on first write), or none at all.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The hex key of `wasm` for `engine`.
    pub fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.write(&Sha256::digest(wasm));
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hex(&hasher.0.finalize())
    }

    /// Compiles `wasm`, or loads its artifact. Returns the component and whether the cache hit.
    ///
    /// A cache that cannot be read or written is skipped with a warning: it only costs time.
    pub fn compile(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, bool)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, wasm)?, false));
        };
        let path = dir.join(format!("{}.cwasm", Self::key(engine, wasm)));
        if path.exists() {
            // SAFETY: the cache directory belongs to this server (it lives in the data dir), the
            // file name binds the artifact to these exact bytes and this engine's settings, and
            // wasmtime checks the artifact's header against the engine before using it.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {e}"),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = write_atomically(dir, &path, &component.serialize()?) {
            tracing::warn!(dir = %dir.display(), "could not write the compile cache: {e}");
        }
        Ok((component, false))
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half an artifact.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
