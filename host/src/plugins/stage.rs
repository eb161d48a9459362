//! Staging: turns a manifest path into a plugin ready to serve, through named steps (read,
//! manifest, compile, version, link, self-check). It never touches the registry; the caller
//! installs what succeeds, so a plugin that fails a step never replaces a working one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::error::{Error, Step};
use super::manifest::{Kind, Manifest};
use crate::capabilities::dial::Dialer;
use crate::capabilities::grants::{self, EgressGrant, EnvGrant, GrantReport, OperatorGrants, SecretGrant};
use crate::capabilities::hosts::HostPattern;
use crate::capabilities::secrets::Secrets;
use crate::capabilities::{Capabilities, HttpCapability, PluginLabel, PostgresCapability, RedisCapability};
use crate::config::Env;
use crate::runtime::types::ProviderInfo;
use crate::runtime::{MemoryPlugin, ProviderPlugin, Runtime, bindings};

/// A plugin that passed every step.
pub struct Plugin {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    /// sha256 of the wasm bytes, hex.
    pub digest: String,
    /// sha256 of manifest and wasm together: what a reload compares to skip unchanged files.
    pub fingerprint: String,
    pub loaded_at: OffsetDateTime,
    /// Time spent staging (compile or cache load, link, self-check).
    pub load_time: Duration,
    /// Whether the compiled artifact came from the cache.
    pub cached: bool,
    pub instance: Instance,
}

/// The callable part, by kind.
pub enum Instance {
    Provider(Provider),
    /// A memory plugin whose `init()` (connect, migrate) succeeded.
    Memory(MemoryPlugin),
}

/// A staged provider and what it said about itself.
pub struct Provider {
    pub plugin: ProviderPlugin,
    pub info: ProviderInfo,
    /// What must still be set for it to work: declared secrets without a value, and
    /// `required_config` keys without one (named by the environment variable that sets them).
    pub missing: Vec<String>,
}

impl Plugin {
    /// `id@version`.
    pub fn label(&self) -> PluginLabel {
        PluginLabel { id: self.manifest.id.clone(), version: self.manifest.version.to_string() }
    }

    /// What the plugin was granted.
    pub fn capabilities(&self) -> &Arc<Capabilities> {
        match &self.instance {
            Instance::Provider(p) => p.plugin.capabilities(),
            Instance::Memory(m) => m.capabilities(),
        }
    }

    /// The provider, if this is one.
    pub fn provider(&self) -> Option<&Provider> {
        match &self.instance {
            Instance::Provider(p) => Some(p),
            Instance::Memory(_) => None,
        }
    }

    /// The memory plugin, if this is one.
    pub fn memory(&self) -> Option<&MemoryPlugin> {
        match &self.instance {
            Instance::Memory(m) => Some(m),
            Instance::Provider(_) => None,
        }
    }
}

/// Stages plugins with one runtime, HTTP client and environment.
#[derive(Clone)]
pub struct Loader {
    runtime: Runtime,
    env: Arc<Env>,
    max_memory_mb: u32,
    /// Which memory plugins run `init()` (connect, migrate) as their self-check: all of them,
    /// or only the one serving as the store.
    init_memory: Option<Option<String>>,
    /// Variables the operator granted, by plugin id.
    grants: Arc<OperatorGrants>,
}

impl Loader {
    pub fn new(runtime: Runtime, env: Arc<Env>, max_memory_mb: u32) -> Self {
        Self { runtime, env, max_memory_mb, init_memory: None, grants: Arc::default() }
    }

    /// The variables the operator granted, by plugin id (`[plugins.<id>] grant_env`).
    pub fn with_grants(mut self, grants: OperatorGrants) -> Self {
        self.grants = Arc::new(grants);
        self
    }

    /// Runs `init()` only for the memory plugin that is the store (`None`: for none). A server
    /// must not connect to, let alone migrate, databases of memory plugins it does not use just
    /// because their files are in the plugins directory.
    pub fn init_memory_only(mut self, store: Option<String>) -> Self {
        self.init_memory = Some(store);
        self
    }

    /// The runtime plugins are staged on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Runs every step for the manifest at `manifest_path` and its `.wasm` sibling.
    pub async fn stage(&self, manifest_path: &Path) -> Result<Plugin, Error> {
        let fail = |step, reason: String| Error { file: manifest_path.to_path_buf(), step, reason };
        let started = Instant::now();

        let text = tokio::fs::read_to_string(manifest_path).await.map_err(|e| fail(Step::Read, e.to_string()))?;
        let manifest =
            Manifest::parse(manifest_path, &text, self.max_memory_mb).map_err(|e| fail(Step::Manifest, e.message))?;
        let wasm_path = manifest_path.with_extension("wasm");
        let wasm = tokio::fs::read(&wasm_path).await.map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (build it with `cargo xtask build-plugins`)"
            } else {
                ""
            };
            fail(Step::Read, format!("{}: {e}{hint}", wasm_path.display()))
        })?;
        let digest = hex(&Sha256::digest(&wasm));
        let fingerprint = super::reload::fingerprint_of(text.as_bytes(), &wasm);

        let runtime = self.runtime.clone();
        let (component, cached) = tokio::task::spawn_blocking(move || runtime.compile(&wasm))
            .await
            .map_err(|e| fail(Step::Compile, e.to_string()))?
            .map_err(|e| fail(Step::Compile, format!("{e:#}")))?;

        let facts = self
            .runtime
            .facts(&component)
            .ok_or_else(|| fail(Step::Version, "the component exports no codexcontinue:plugin interface".into()))?;
        if facts.kind != manifest.kind.world() {
            return Err(fail(
                Step::Version,
                format!(
                    "the manifest says kind = {:?} but the component is a {} plugin",
                    manifest.kind,
                    facts.kind.as_str()
                ),
            ));
        }
        if facts.wit != manifest.wit {
            return Err(fail(
                Step::Version,
                format!(
                    "the manifest says wit = \"{}\" but the component was built against {}",
                    manifest.wit, facts.wit
                ),
            ));
        }
        if bindings::Wit::find(&facts.wit).is_none() {
            let supported: Vec<_> = bindings::SUPPORTED.iter().map(ToString::to_string).collect();
            return Err(fail(
                Step::Version,
                format!("WIT {} is not supported; this host loads {}", facts.wit, supported.join(", ")),
            ));
        }

        let label = PluginLabel { id: manifest.id.clone(), version: manifest.version.to_string() };
        let caps = self.capabilities(&manifest, label).map_err(|reason| fail(Step::Manifest, reason))?;
        let instance = match manifest.kind {
            Kind::Provider => {
                let mut missing: Vec<String> = caps.http.secrets().missing().into_iter().map(String::from).collect();
                missing.extend(
                    manifest
                        .required_config
                        .iter()
                        .filter(|key| caps.config.get(*key).is_none_or(|v| v.is_empty()))
                        .map(|key| manifest.env.get(key).cloned().unwrap_or_else(|| format!("config.{key}"))),
                );
                let plugin = self
                    .runtime
                    .provider(&component, &facts.wit, caps, manifest.limits())
                    .map_err(|e| fail(Step::Link, format!("{e:#}")))?;
                let info = plugin.info().await.map_err(|e| fail(Step::SelfCheck, e.to_string()))?;
                Instance::Provider(Provider { plugin, info, missing })
            }
            Kind::Memory => {
                let plugin = self
                    .runtime
                    .memory(&component, &facts.wit, caps, manifest.limits())
                    .map_err(|e| fail(Step::Link, format!("{e:#}")))?;
                let in_use =
                    self.init_memory.as_ref().is_none_or(|store| store.as_deref() == Some(manifest.id.as_str()));
                if in_use {
                    match plugin.init().await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(fail(Step::SelfCheck, format!("init() failed: {e:?}"))),
                        Err(e) => return Err(fail(Step::SelfCheck, e.to_string())),
                    }
                }
                Instance::Memory(plugin)
            }
        };

        Ok(Plugin {
            manifest,
            manifest_path: manifest_path.to_path_buf(),
            digest,
            fingerprint,
            loaded_at: OffsetDateTime::now_utc(),
            load_time: started.elapsed(),
            cached,
            instance,
        })
    }

    /// Builds the plugin's grants: config with environment overrides applied, secrets read from
    /// the environment, and the allow-list widened by any URL an override points at.
    fn capabilities(&self, manifest: &Manifest, plugin: PluginLabel) -> Result<Capabilities, String> {
        let mut report = self.check_grants(manifest)?;
        let mut allowed = manifest.allowed_hosts().map_err(|e| e.to_string())?;
        report.egress =
            allowed.iter().map(|p| EgressGrant { origin: p.to_string(), from: "manifest".into() }).collect();
        let bindings = manifest
            .secrets
            .iter()
            .map(|(name, hosts)| {
                Ok((name.clone(), crate::capabilities::hosts::AllowedHosts::parse(hosts).map_err(|e| e.to_string())?))
            })
            .collect::<Result<_, String>>()?;
        let mut secrets = Secrets::new(bindings, |name| self.env.get(name).map(str::to_string));

        let mut config = manifest.config.clone();
        for (key, var) in &manifest.env {
            let Some(value) = self.env.get(var) else { continue };
            // An operator pointing a provider elsewhere (OPENAI_BASE_URL=http://127.0.0.1:8000/v1)
            // allows exactly that origin, and lets the provider's keys go there. Only endpoint
            // keys do: a model name must never widen where keys may go.
            if is_endpoint_key(key)
                && let Some(pattern) = origin_pattern(value)
            {
                report.egress.push(EgressGrant { origin: pattern.to_string(), from: var.clone() });
                allowed.push_operator(pattern.clone());
                secrets.bind_all_to(&pattern);
            }
            config.insert(key.clone(), value.to_string());
        }
        report.secrets = secrets
            .bindings()
            .map(|(name, hosts, set)| SecretGrant {
                name: name.to_string(),
                origins: hosts.iter().map(ToString::to_string).collect(),
                set,
            })
            .collect();
        let dialer = Dialer::new(plugin.clone(), allowed.clone());
        let http = HttpCapability::new(&plugin, allowed, secrets)?;
        Ok(Capabilities {
            plugin,
            config,
            http,
            redis: RedisCapability::new(dialer.clone()),
            postgres: PostgresCapability::new(dialer),
            grants: report,
        })
    }

    /// Every variable the manifest reads must be its vendor's, in its namespace, or granted by
    /// the operator; otherwise the plugin is refused with the grant that would let it load.
    fn check_grants(&self, manifest: &Manifest) -> Result<GrantReport, String> {
        let id = manifest.id.as_str();
        let granted = self.grants.get(id).map(Vec::as_slice).unwrap_or_default();
        let reads = manifest
            .env
            .iter()
            .map(|(key, var)| (var, format!("config.{key}")))
            .chain(manifest.secrets.keys().map(|name| (name, "secret".to_string())));
        let mut report = GrantReport::default();
        let mut missing = Vec::new();
        for (var, read_as) in reads {
            match grants::check(id, var, granted) {
                Ok(granted_by) => report.env.push(EnvGrant {
                    variable: var.clone(),
                    read_as,
                    granted_by,
                    set: self.env.get(var).is_some(),
                }),
                Err(grants::Refusal::NotGranted { .. }) => missing.push(format!("{var:?}")),
                Err(refusal) => return Err(refusal.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "the plugin reads {} outside its namespace ({}*) without the operator's grant; to allow it, add \
                 `[plugins.{id}]` with `grant_env = [{}]` to codexcontinue.toml",
                missing.join(", "),
                grants::namespace(id),
                missing.join(", ")
            ));
        }
        Ok(report)
    }
}

/// Whether a config key holds an endpoint, by the naming convention manifests follow:
/// `base_url`, `endpoint`, `host`, or a name ending in `_url`, `_endpoint` or `_host`.
fn is_endpoint_key(key: &str) -> bool {
    matches!(key, "base_url" | "endpoint" | "host") || ["_url", "_endpoint", "_host"].iter().any(|s| key.ends_with(s))
}

/// The origin an endpoint value points at, as an allow-list entry. A bare `host:port` (as
/// `OLLAMA_HOST` is often written) means `http://host:port`. Database addresses
/// (`redis://`, `rediss://`, `postgres://`, `postgresql://`) widen too; their credentials are
/// not part of the origin.
fn origin_pattern(value: &str) -> Option<HostPattern> {
    let url = match value.contains("://") {
        true => reqwest::Url::parse(value).ok()?,
        false => reqwest::Url::parse(&format!("http://{value}")).ok()?,
    };
    if !matches!(url.scheme(), "http" | "https" | "redis" | "rediss" | "postgres" | "postgresql") {
        return None;
    }
    crate::capabilities::hosts::origin(&url).parse().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Database addresses in endpoint keys widen the allow-list to their origin, without their
    /// credentials; other schemes and non-endpoint keys do not widen.
    #[test]
    fn database_endpoints_widen_to_their_origin() {
        assert!(is_endpoint_key("redis_url") && is_endpoint_key("database_url") && is_endpoint_key("base_url"));
        assert!(!is_endpoint_key("url") && !is_endpoint_key("schema") && !is_endpoint_key("prefix"));
        let origin = |v: &str| origin_pattern(v).map(|p| p.to_string());
        assert_eq!(
            origin("postgres://app:secret@db.internal:6432/app").as_deref(),
            Some("postgres://db.internal:6432")
        );
        assert_eq!(origin("postgresql://db.internal/app").as_deref(), Some("postgres://db.internal:5432"));
        assert_eq!(origin("redis://:pw@cache.internal/1").as_deref(), Some("redis://cache.internal:6379"));
        assert_eq!(origin("rediss://cache.internal:6380").as_deref(), Some("rediss://cache.internal:6380"));
        assert_eq!(origin("127.0.0.1:11434").as_deref(), Some("http://127.0.0.1:11434"));
        assert_eq!(origin("ftp://files.example"), None);
    }
}
