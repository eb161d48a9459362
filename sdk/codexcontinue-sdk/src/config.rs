//! Non-secret configuration: the manifest's `[config]` table with the `[env]` overrides the host
//! has already applied. Secrets never come through here; see [`secret`](crate::secret).

use crate::bindings::provider::codexcontinue::plugin::config as host;

/// The value of `key`, or `None` when the manifest sets none.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// The value of `key`, or `default` when the manifest sets none.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}
