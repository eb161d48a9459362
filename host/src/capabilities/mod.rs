//! What the host offers guests, one file per capability: `http` (with `hosts` allow-lists and
//! `secrets` placeholders, whose values `mask` hides in everything a plugin hands back), `redis` and `postgres` (with `dial` checking their addresses), `log`
//! and `config`; `grants` decides which environment variables a plugin may read. Each capability's state is built from the manifest when a plugin loads ("parse
//! at load") and checked on every call ("check at call").

pub mod config;
pub mod dial;
pub mod grants;
pub mod hosts;
pub mod http;
pub mod log;
pub mod mask;
pub mod postgres;
pub mod redis;
pub mod resolve;
pub mod secrets;

use std::collections::BTreeMap;
use std::fmt;

use crate::runtime::HostState;
use crate::runtime::bindings::latest::provider::codexcontinue::plugin::types;

pub use http::HttpCapability;
pub use postgres::PostgresCapability;
pub use redis::RedisCapability;

/// A plugin's id and version, as it appears in logs and errors (`echo@0.1.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLabel {
    pub id: String,
    pub version: String,
}

impl fmt::Display for PluginLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// Everything one plugin was granted; shared by all its calls.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub plugin: PluginLabel,
    pub config: BTreeMap<String, String>,
    pub http: HttpCapability,
    pub redis: RedisCapability,
    pub postgres: PostgresCapability,
    /// What was granted and why, for operators (`plugins inspect`, `/status`).
    pub grants: grants::GrantReport,
}

impl types::Host for HostState {}
