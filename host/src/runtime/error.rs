//! How a plugin call can fail at the runtime level; the plugin's own WIT errors travel inside
//! `Ok` and are interpreted by the layer above.

use crate::capabilities::PluginLabel;

/// A call that did not complete. Messages name the plugin and are safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The guest trapped: a panic, an `unreachable`, a bad lift of its return value...
    #[error("plugin {plugin} crashed: {reason}")]
    Trap { plugin: PluginLabel, reason: String },
    /// The guest tried to grow its memory past its limit.
    #[error("plugin {plugin} exceeded its memory limit of {limit_mb} MiB")]
    OutOfMemory { plugin: PluginLabel, limit_mb: u32 },
    /// The guest computed for longer than its CPU budget.
    #[error("plugin {plugin} exceeded its CPU budget of {budget_ms} ms")]
    CpuExhausted { plugin: PluginLabel, budget_ms: u128 },
    /// The call, host calls included, outlived its wall-clock limit.
    #[error("plugin {plugin} did not finish within {timeout_ms} ms")]
    Timeout { plugin: PluginLabel, timeout_ms: u128 },
    /// Every concurrency slot stayed taken until the deadline.
    #[error("plugin {plugin} is busy: all {slots} slots stayed in use")]
    Busy { plugin: PluginLabel, slots: u32 },
    /// The guest answered with something the host refuses (too large, malformed).
    #[error("plugin {plugin} returned an invalid result: {reason}")]
    InvalidOutput { plugin: PluginLabel, reason: String },
    /// The engine could not create an instance (e.g. the instance pool is exhausted).
    #[error("plugin {plugin} could not be instantiated: {reason}")]
    Instantiate { plugin: PluginLabel, reason: String },
}

impl Error {
    /// The plugin the error is about.
    pub fn plugin(&self) -> &PluginLabel {
        match self {
            Error::Trap { plugin, .. }
            | Error::OutOfMemory { plugin, .. }
            | Error::CpuExhausted { plugin, .. }
            | Error::Timeout { plugin, .. }
            | Error::Busy { plugin, .. }
            | Error::InvalidOutput { plugin, .. }
            | Error::Instantiate { plugin, .. } => plugin,
        }
    }
}
