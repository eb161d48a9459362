//! Host bindings generated from the frozen WIT folders, one module per released version.
//!
//! Only `latest` carries host logic. An older version has a module (`v0_1_0`) whose bindings
//! reuse latest's host interfaces where they did not change, whose types convert into latest's
//! with `From`, and whose remaining host impls delegate to latest. [`SUPPORTED`] is the one list
//! that decides which versions load; the runtime builds one linker per entry and dispatches on it.

use std::fmt;

use wasmtime::component::Linker;

use super::state::HostState;

pub mod v0_1_0;

/// `codexcontinue:plugin@0.2.0` (`wit/v0.2.0`): the latest version, the one with host logic.
pub mod v0_2_0 {
    /// The `provider-plugin` world.
    pub mod provider {
        wasmtime::component::bindgen!({
            path: "../wit/v0.2.0",
            world: "provider-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "codexcontinue:plugin/http-client.response": crate::capabilities::http::Response,
                "codexcontinue:plugin/streaming.sink": crate::runtime::stream::Sink,
            },
        });
    }

    /// The `memory-plugin` world. Interfaces it shares with the provider world (`types`, `log`,
    /// `config`) are the provider module's, so one host impl serves both worlds.
    pub mod memory {
        wasmtime::component::bindgen!({
            path: "../wit/v0.2.0",
            world: "memory-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            // Rows and replies are compared in tests.
            additional_derives: [PartialEq],
            with: {
                "codexcontinue:plugin/types": super::provider::codexcontinue::plugin::types,
                "codexcontinue:plugin/log": super::provider::codexcontinue::plugin::log,
                "codexcontinue:plugin/config": super::provider::codexcontinue::plugin::config,
                "codexcontinue:plugin/redis.connection": crate::capabilities::redis::Connection,
                "codexcontinue:plugin/postgres.connection": crate::capabilities::postgres::Connection,
            },
        });
    }

    use wasmtime::component::{HasSelf, Linker};

    use crate::runtime::state::HostState;

    /// Adds every import of the provider world to `linker`.
    pub(crate) fn link_provider(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        provider::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
    }

    /// Adds every import of the memory world to `linker`.
    pub(crate) fn link_memory(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        memory::MemoryPlugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
    }
}

pub use v0_2_0 as latest;

/// A WIT version this host loads. Each variant has a bindings module above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wit {
    V0_1_0,
    V0_2_0,
}

/// The WIT versions this host loads, oldest first; the last is `latest`. Staging refuses any
/// other version, the runtime builds one linker per entry, and plugins dispatch on the variant.
pub const SUPPORTED: &[Wit] = &[Wit::V0_1_0, Wit::V0_2_0];

impl Wit {
    /// The newest supported version.
    pub const LATEST: Wit = Wit::V0_2_0;

    /// The package version this variant binds.
    pub const fn version(self) -> semver::Version {
        match self {
            Wit::V0_1_0 => semver::Version::new(0, 1, 0),
            Wit::V0_2_0 => semver::Version::new(0, 2, 0),
        }
    }

    /// The supported version equal to `version`, if any.
    pub fn find(version: &semver::Version) -> Option<Wit> {
        SUPPORTED.iter().copied().find(|wit| wit.version() == *version)
    }

    /// Position in [`SUPPORTED`], used to index per-version tables.
    pub(crate) fn index(self) -> usize {
        SUPPORTED.iter().position(|wit| *wit == self).expect("every variant is in SUPPORTED")
    }

    /// A linker with every import of the provider world at this version, plus WASI.
    pub(crate) fn provider_linker(self, linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        match self {
            Wit::V0_1_0 => v0_1_0::link_provider(linker)?,
            Wit::V0_2_0 => v0_2_0::link_provider(linker)?,
        }
        // A wasip2 std guest imports wasi:cli/io even if it calls nothing; the context grants
        // nothing (see `HostState::new`).
        wasmtime_wasi::p2::add_to_linker_async(linker)
    }

    /// A linker with every import of the memory world at this version, plus WASI.
    pub(crate) fn memory_linker(self, linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        match self {
            Wit::V0_1_0 => v0_1_0::link_memory(linker)?,
            Wit::V0_2_0 => v0_2_0::link_memory(linker)?,
        }
        wasmtime_wasi::p2::add_to_linker_async(linker)
    }
}

impl fmt::Display for Wit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.version().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SUPPORTED` ends with `latest`, and every entry finds itself by version.
    #[test]
    fn supported_is_ordered_and_ends_with_latest() {
        assert_eq!(SUPPORTED.last(), Some(&Wit::LATEST));
        for (i, wit) in SUPPORTED.iter().enumerate() {
            assert_eq!(Wit::find(&wit.version()), Some(*wit));
            assert_eq!(wit.index(), i);
        }
        assert!(SUPPORTED.windows(2).all(|w| w[0].version() < w[1].version()));
        assert_eq!(Wit::find(&semver::Version::new(0, 3, 0)), None);
    }
}
