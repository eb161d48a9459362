//! Configuration: CLI flag > environment (`.env` loaded) > `codexcontinue.toml` > default.
//!
//! The CLI and environment layers are clap's (`env = "CODEXCONTINUE_*"`); this file defines the
//! toml layer, the merged [`Config`] and the environment snapshot plugins read secrets from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::ApiKeys;
use crate::capabilities::grants::OperatorGrants;
use crate::plugins::Rollout;

/// Which store holds conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// sled in `<data-dir>/store` (the default).
    Sled,
    /// sled in a temporary file: nothing survives a restart.
    Memory,
    /// A memory plugin by id.
    Plugin(String),
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sled" => Ok(Self::Sled),
            "memory" => Ok(Self::Memory),
            "" => Err("the store name is empty".into()),
            id => Ok(Self::Plugin(id.to_string())),
        }
    }
}

/// Limits on what clients may send (`[limits]`), and how much per API key (per user when keys
/// are off); see `limits` for how the rates are counted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLimits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Longest chat message, in characters (413 beyond).
    pub max_message_chars: usize,
    /// Chat turns per key in any 60 s; 0 = unlimited.
    pub requests_per_minute: u32,
    /// Tokens (prompt and completion) per key in any 60 s; 0 = unlimited.
    pub tokens_per_minute: u32,
    /// Streamed replies in flight per key; 0 = unlimited.
    pub concurrent_streams: u32,
    /// `redis://host:port/db`: count the limits there, so every host shares one budget;
    /// in-process when unset.
    pub shared: Option<String>,
    /// Prefix of the keys written to `shared`.
    pub shared_prefix: String,
}

impl Default for RequestLimits {
    fn default() -> Self {
        // Coding agents send ~35k-character system prompts, whole files and long tool results;
        // 256k characters is ~64k tokens. Bodies hold whole conversations (and images).
        // Rates are off by default: a single-user server has nobody to ration.
        Self {
            max_body_bytes: 32 << 20,
            max_message_chars: 262_144,
            requests_per_minute: 0,
            tokens_per_minute: 0,
            concurrent_streams: 0,
            shared: None,
            shared_prefix: "codexcontinue:limits:".into(),
        }
    }
}

/// How history goes into a prompt (`[memory]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Most recent messages considered for the short-term window.
    pub window_messages: usize,
    /// Token budget for the prompt (system + memory + history + new message); the model's
    /// context window minus the reply reserve lowers it further.
    pub max_prompt_tokens: usize,
    /// Tokens kept free for the reply when the request does not say (`max_tokens`).
    pub reply_tokens: usize,
    /// Earlier messages recalled into the long-term section, at most.
    pub recall: usize,
    /// Also recall from the user's other sessions.
    pub recall_across_sessions: bool,
    /// Keep facts the user states ("remember that …", "we decided …") and bring the current ones
    /// into every chat; "forget …" removes them.
    pub facts: bool,
    /// Also ask the chat's model, in the background every few turns, for the facts in what was
    /// said (one more model call per three turns or so).
    pub facts_from_model: bool,
    /// Keep a rolling summary of long sessions (written in the background by their provider).
    pub summaries: bool,
    /// Embed messages for recall (in the background, with the session's provider, when it
    /// offers embeddings); without, recall ranks by BM25.
    pub embeddings: bool,
    /// Give coding agents memory of their own sessions: Claude Code's `X-Claude-Code-Session-Id`
    /// and Codex's `session-id` headers name the session when `X-Session-Id` does not.
    pub agent_sessions: bool,
    /// Text all of a user's workspaces may hold, in MiB (UTF-8 bytes of the files as chunked).
    pub workspace_quota_mb: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        // gpt-3.5-turbo has a 16k context; keep the prompt well under it, leaving room to reply.
        Self {
            window_messages: 40,
            max_prompt_tokens: 12_000,
            reply_tokens: 1_024,
            recall: 4,
            recall_across_sessions: true,
            facts: true,
            facts_from_model: false,
            summaries: true,
            embeddings: true,
            agent_sessions: true,
            workspace_quota_mb: 100,
        }
    }
}

/// The `codexcontinue.toml` file. Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub plugins_dir: Option<PathBuf>,
    pub store: Option<String>,
    #[serde(default)]
    pub providers: ProvidersConfig,
    pub limits: Option<RequestLimits>,
    pub memory: Option<MemoryConfig>,
    /// Reload plugins when their files change.
    pub watch: Option<bool>,
    /// How new plugin versions are rolled out (a manifest's own `[rollout]` wins).
    pub rollout: Option<Rollout>,
    pub edge: Option<EdgeConfig>,
    /// `[plugins.<id>]`: what the operator grants each plugin.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginGrants>,
}

/// The `[providers]` table: which provider answers, and how failures are retried and routed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// Provider used when a request names none.
    pub default: Option<String>,
    /// Model used with the default provider when a request names none.
    pub model: Option<String>,
    /// Retries of one provider after a rate limit, an outage or a timeout (0 = none).
    pub retries: u32,
    /// First retry delay in ms; each later one doubles, with jitter, up to `max_backoff_ms`. A
    /// vendor's `Retry-After` replaces the computed delay.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Longest a chat may take in total, retries and fallbacks included.
    pub deadline_ms: u64,
    /// Provider id -> providers to try, in order, when it is down (`openai = ["azure-openai", "ollama"]`).
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// Model names clients send -> the model to use, `provider/model` or a model of the default
    /// provider. Keys are exact names or patterns with `*` (`"claude-*" = "openai/gpt-4.1"`).
    pub aliases: BTreeMap<String, String>,
    /// Ask every configured provider for its models at startup and every few minutes, so a
    /// request for a model only another provider lists goes to that provider.
    pub discover_models: bool,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        // Two retries ride out a blip or one rate-limit window without making a user wait long.
        Self {
            default: None,
            model: None,
            retries: 2,
            backoff_ms: 250,
            max_backoff_ms: 4_000,
            deadline_ms: 300_000,
            fallbacks: BTreeMap::new(),
            aliases: BTreeMap::new(),
            discover_models: true,
        }
    }
}

impl FileConfig {
    /// Reads `path`; a missing file is an empty config, a malformed one an error naming it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }
}

/// The merged configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub store: StoreKind,
    pub providers: ProvidersConfig,
    pub limits: RequestLimits,
    pub memory: MemoryConfig,
    /// Where compiled plugins are cached; defaults to `<data-dir>/cache`.
    pub cache_dir: Option<PathBuf>,
    pub watch: bool,
    pub rollout: Rollout,
    /// Bearer token for `/admin/*` (from `CODEXCONTINUE_ADMIN_TOKEN`); the admin API is off
    /// without one.
    pub admin_token: Option<String>,
    /// Client API keys (from `CODEXCONTINUE_API_KEYS`); empty means no authentication.
    pub api_keys: ApiKeys,
    pub edge: EdgeConfig,
    /// Environment variables granted to plugins beyond their own, by plugin id.
    pub plugin_grants: OperatorGrants,
}

impl Config {
    /// The compile cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| self.data_dir.join("cache"))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            plugins_dir: PathBuf::from("plugins"),
            store: StoreKind::Sled,
            providers: ProvidersConfig::default(),
            limits: RequestLimits::default(),
            memory: MemoryConfig::default(),
            cache_dir: None,
            watch: true,
            rollout: Rollout::default(),
            admin_token: None,
            api_keys: ApiKeys::default(),
            edge: EdgeConfig::default(),
            plugin_grants: OperatorGrants::new(),
        }
    }
}

// ---- The network edge (`[edge]`) and plugin grants (`[plugins.<id>]`): who may call, how long
// and how many connections; which environment variables each plugin may read. ----

/// What the listener accepts (`[edge]`); see `edge` for how each part is enforced.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Host names (optionally `name:port`) requests may be addressed to. Empty: the loopback
    /// names when bound to loopback, any host (with a startup warning) otherwise.
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`https://app.example`) that may call cross-origin; CORS is off without.
    pub cors_origins: Vec<String>,
    /// Longest wait for a complete request head, from accept or from the end of the previous
    /// response (so it is also the keep-alive idle timeout on HTTP/1.1).
    pub header_timeout_ms: u64,
    /// Longest a request body may take to arrive, in total.
    pub body_timeout_ms: u64,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, how long requests and streams in flight may take to finish.
    pub shutdown_grace_ms: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        // 15 s for a request head is generous for any real client and short for a slow-loris;
        // 60 s covers a 1 MiB body on a slow link. 1,024 connections fit the usual fd limit;
        // 30 s of grace lets a typical streamed reply finish.
        Self {
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            header_timeout_ms: 15_000,
            body_timeout_ms: 60_000,
            max_connections: 1024,
            shutdown_grace_ms: 30_000,
        }
    }
}

/// `[plugins.<id>]` in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrants {
    /// Environment variables outside the plugin's namespace it may read (never another vendor's
    /// or the host's).
    #[serde(default)]
    pub grant_env: Vec<String>,
}

/// The operator's grants from `[plugins.*]`, by plugin id.
pub fn operator_grants(file: &FileConfig) -> OperatorGrants {
    file.plugins.iter().map(|(id, p)| (id.clone(), p.grant_env.clone())).collect()
}

// ---- End of the edge block. ----

/// A snapshot of the environment (after `.env`), from which plugins' secrets and overrides are
/// read. Its `Debug` lists names only.
#[derive(Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The process environment, with `.env` from the working directory loaded first (values
    /// already set in the environment win).
    pub fn capture() -> Self {
        let _ = dotenvy::dotenv();
        Self(std::env::vars().collect())
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}
