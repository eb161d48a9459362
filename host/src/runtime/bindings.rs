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

    /// The semver this module implements.
    pub const VERSION: semver::Version = semver::Version::new(0, 1, 0);
}

pub use v0_1_0 as latest;

/// The WIT versions this host loads, newest last.
pub const SUPPORTED: &[semver::Version] = &[v0_1_0::VERSION];
