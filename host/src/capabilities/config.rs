//! The `config` capability: the non-secret values of the manifest's `[config]` table, with the
//! environment overrides the manifest declares already applied at load.

use crate::runtime::HostState;
use crate::runtime::bindings::latest::provider::codexcontinue::plugin::config::Host;

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.caps.config.get(&key).cloned())
    }
}
