//! The plugin runtime: one wasmtime `Engine` per process, compilation with an on-disk cache,
//! pre-instantiation per plugin and guarded calls (limits, timeouts, error classification).
//!
//! It knows nothing of manifests or HTTP: `plugins` hands it bytes, capabilities and limits, and
//! gets back a [`ProviderPlugin`] or a [`MemoryPlugin`] to call. Each world has its own linker.

pub mod bindings;
mod cache;
mod call;
mod engine;
mod error;
mod limits;
mod memory;
mod provider;
mod state;
mod stderr;
mod stream;
pub mod types;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

pub use bindings::Wit;
pub use cache::CompileCache;
pub use engine::{EPOCH_TICK, PoolConfig};
pub use error::Error;
pub use limits::Limits;
pub use memory::{MemoryPlugin, StoreResult};
pub use provider::{CallResult, ProviderPlugin};
pub use state::HostState;
pub use stream::{STREAM_BUFFER, Sink};

use crate::capabilities::Capabilities;

/// The latest `memory-store` types, used by the store adapter.
pub mod memory_types {
    pub use super::bindings::latest::memory::exports::codexcontinue::plugin::memory_store::*;
}

/// The kind of plugin a component is, from the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldKind {
    Provider,
    Memory,
}

impl WorldKind {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WorldKind::Provider => "provider",
            WorldKind::Memory => "memory",
        }
    }
}

/// What a compiled component says about itself before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentFacts {
    pub kind: WorldKind,
    /// The `codexcontinue:plugin` version of its exports, supported or not.
    pub wit: semver::Version,
}

/// Runtime settings.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub pool: PoolConfig,
    /// Where precompiled artifacts are kept; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

/// One linker per world for one WIT version.
struct Linkers {
    provider: Linker<HostState>,
    memory: Linker<HostState>,
}

/// The engine, its linkers and the compile cache. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    /// Indexed like [`bindings::SUPPORTED`].
    linkers: Arc<[Linkers]>,
    cache: CompileCache,
    _ticker: Arc<engine::EpochTicker>,
}

impl Runtime {
    /// Builds the engine, links every capability and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Self> {
        let engine = engine::new_engine(&config.pool)?;
        let linkers = bindings::SUPPORTED
            .iter()
            .map(|wit| {
                let mut provider = Linker::new(&engine);
                wit.provider_linker(&mut provider)?;
                let mut memory = Linker::new(&engine);
                wit.memory_linker(&mut memory)?;
                Ok(Linkers { provider, memory })
            })
            .collect::<wasmtime::Result<Vec<_>>>()?;
        let ticker = engine::EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linkers: linkers.into(),
            cache: CompileCache::new(config.cache_dir),
            _ticker: Arc::new(ticker),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `wasm` (or loads it from the cache). CPU-heavy: call it off the async workers.
    /// Returns the component and whether the cache was hit.
    pub fn compile(&self, wasm: &[u8]) -> wasmtime::Result<(Component, bool)> {
        self.cache.compile(&self.engine, wasm)
    }

    /// The names of what a component imports and exports (interfaces and functions).
    pub fn interfaces(&self, component: &Component) -> (Vec<String>, Vec<String>) {
        let ty = component.component_type();
        let imports = ty.imports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let exports = ty.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        (imports, exports)
    }

    /// Reads the plugin kind and WIT version from the interface the component exports.
    pub fn facts(&self, component: &Component) -> Option<ComponentFacts> {
        let ty = component.component_type();
        ty.exports(&self.engine).find_map(|(name, _)| {
            let (interface, version) = name.strip_prefix("codexcontinue:plugin/")?.split_once('@')?;
            let kind = match interface {
                "provider" => WorldKind::Provider,
                "memory-store" => WorldKind::Memory,
                _ => return None,
            };
            Some(ComponentFacts { kind, wit: version.parse().ok()? })
        })
    }

    /// Resolves a provider component's imports against the host (once, off the request path).
    /// Fails if the component imports something the host does not offer.
    pub fn provider(
        &self,
        component: &Component,
        wit: &semver::Version,
        caps: Capabilities,
        limits: Limits,
    ) -> wasmtime::Result<ProviderPlugin> {
        let wit = supported(wit)?;
        let pre = self.linkers[wit.index()].provider.instantiate_pre(component)?;
        let pre = match wit {
            Wit::V0_1_0 => provider::ProviderPre::V0_1_0(bindings::v0_1_0::provider::ProviderPluginPre::new(pre)?),
            Wit::V0_2_0 => provider::ProviderPre::V0_2_0(bindings::v0_2_0::provider::ProviderPluginPre::new(pre)?),
        };
        let guard = call::Guard::new(self.clone(), Arc::new(caps), limits);
        Ok(ProviderPlugin::new(pre, guard))
    }

    /// Resolves a memory component's imports against the host, like [`Runtime::provider`].
    pub fn memory(
        &self,
        component: &Component,
        wit: &semver::Version,
        caps: Capabilities,
        limits: Limits,
    ) -> wasmtime::Result<MemoryPlugin> {
        let wit = supported(wit)?;
        let pre = self.linkers[wit.index()].memory.instantiate_pre(component)?;
        let pre = match wit {
            Wit::V0_1_0 => memory::MemoryPre::V0_1_0(bindings::v0_1_0::memory::MemoryPluginPre::new(pre)?),
            Wit::V0_2_0 => memory::MemoryPre::V0_2_0(bindings::v0_2_0::memory::MemoryPluginPre::new(pre)?),
        };
        let guard = call::Guard::new(self.clone(), Arc::new(caps), limits);
        Ok(MemoryPlugin::new(pre, guard))
    }
}

/// The supported version `wit` names, or an error naming it.
fn supported(wit: &semver::Version) -> wasmtime::Result<Wit> {
    Wit::find(wit).ok_or_else(|| wasmtime::format_err!("WIT version {wit} is not supported by this host"))
}
