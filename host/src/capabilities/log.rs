//! The `log` capability: guest log lines become host `tracing` events tagged with the plugin.
//! The request id comes from the span the call runs in.

use crate::runtime::HostState;
use crate::runtime::bindings::latest::provider::codexcontinue::plugin::log::{Host, Level};

/// Longest log line kept from a guest; the rest is cut so a plugin cannot flood the log.
const MAX_LINE: usize = 4096;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &self.caps.plugin;
        let message = truncate(&message, MAX_LINE);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin = %plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin = %plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin = %plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin = %plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin = %plugin, "{message}"),
        }
        Ok(())
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
