//! Host bindings generated from the frozen WIT folders, one module per released version.
//!
//! Only `latest` carries host logic; an older version, when one exists, gets a module here whose
//! types convert into `latest` and whose host impls delegate to it (see `wit/PENDING.md`).

/// `codexcontinue:plugin@0.1.0` (`wit/v0.1.0`).
pub mod v0_1_0 {
    /// The `provider-plugin` world.
    pub mod provider {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.0",
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
            path: "../wit/v0.1.0",
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

    /// The semver this module implements.
    pub const VERSION: semver::Version = semver::Version::new(0, 1, 0);
}

pub use v0_1_0 as latest;

/// The WIT versions this host loads, newest last.
pub const SUPPORTED: &[semver::Version] = &[v0_1_0::VERSION];
