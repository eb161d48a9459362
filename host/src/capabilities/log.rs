//! The `log` capability: guest log lines become host `tracing` events tagged with the plugin,
//! with the plugin's secret values masked (a guest may log what a vendor echoed back). The
//! request id comes from the span the call runs in.

use crate::runtime::HostState;
use crate::runtime::bindings::latest::provider::codexcontinue::plugin::log::{Host, Level};

/// Longest log line kept from a guest; the rest is cut so a plugin cannot flood the log.
const MAX_LINE: usize = 4096;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &self.caps.plugin;
        // Masked before the cut, so a cut cannot leave the start of a value unmasked.
        let masked = self.caps.http.secrets().masker().mask(&message);
        let message = truncate(&masked, MAX_LINE);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::capabilities::dial::Dialer;
    use crate::capabilities::hosts::AllowedHosts;
    use crate::capabilities::secrets::Secrets;
    use crate::capabilities::{Capabilities, HttpCapability, PluginLabel, PostgresCapability, RedisCapability};
    use crate::runtime::Limits;

    const KEY: &str = "sk-test-0123456789";

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A guest's log line that quotes the key is logged with the key masked.
    #[tokio::test]
    async fn masks_secret_values() {
        let plugin = PluginLabel { id: "echoer".into(), version: "0.1.0".into() };
        let hosts = AllowedHosts::parse(&["https://api.example.com"]).unwrap();
        let secrets = Secrets::new(BTreeMap::from([("ECHOER_KEY".to_string(), hosts.clone())]), |_| Some(KEY.into()));
        let dialer = Dialer::new(plugin.clone(), hosts.clone());
        let caps = Capabilities {
            http: HttpCapability::new(&plugin, hosts, secrets).unwrap(),
            plugin,
            config: BTreeMap::new(),
            redis: RedisCapability::new(dialer.clone()),
            postgres: PostgresCapability::new(dialer),
            grants: Default::default(),
        };
        let mut state = HostState::new(Arc::new(caps), &Limits::default());
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        state.log(Level::Warn, format!("vendor said: Bearer {KEY}")).await.unwrap();
        let logged = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("vendor said: Bearer [redacted:ECHOER_KEY]"), "{logged}");
        assert!(!logged.contains(KEY), "{logged}");
    }
}
