//! CodexContinue: a self-hosted, memory-augmented LLM backend whose providers and memory
//! backends are WebAssembly components.
//!
//! Layout (data flows down this list, never up):
//! - `edge`: the accept loop and what it refuses before the API sees a request (host and
//!   origin checks, CORS, timeouts, the connection cap, graceful shutdown).
//! - `api`: HTTP routes, request/response types, the one error-to-HTTP mapping.
//! - `memory`: sessions, history and prompt building; the only user of `store`.
//! - `limits`: requests, tokens and streams per API key, counted in-process or in Redis.
//! - `providers`: picks the provider for a request and normalises replies (secrets masked).
//! - `plugins`: manifests, discovery, staging and the registry of what is serving.
//! - `runtime`: wasmtime engine, compile cache, guarded plugin calls.
//! - `capabilities`: what guests may call (http with allow-lists and secrets, log, config).
//! - `store`: the `Store` trait, the sled backend and the adapter over memory plugins.
//! - `scaffold`: `plugins new`, which writes a new plugin crate from `host/templates/`.
//! - `config`, `tokens`, `random`, `metrics`, `telemetry`: configuration layers, token counting,
//!   jitter, Prometheus metrics, OpenTelemetry traces.

pub mod api;
pub mod auth;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod edge;
pub mod ids;
pub mod inspect;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod plugins;
pub mod providers;
pub mod random;
pub mod runtime;
pub mod scaffold;
pub mod store;
pub mod telemetry;
pub mod tokens;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::{Config, Env, StoreKind};
use crate::plugins::{Loader, Registry, Reloader};
use crate::providers::Providers;
use crate::runtime::{PoolConfig, Runtime, RuntimeConfig};
use crate::store::{PluginStore, SledStore, Store};

/// Builds everything the API needs: runtime, plugins, store, memory and providers.
pub async fn start(config: Config, env: Env) -> anyhow::Result<api::AppState> {
    let capture_content = telemetry::capture_content(&env);
    metrics::handle();
    let pool = PoolConfig::default();
    let max_memory_mb = pool.max_memory_mb;
    let runtime = Runtime::new(RuntimeConfig { pool, cache_dir: Some(config.cache_dir()) })
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let store_plugin = match &config.store {
        StoreKind::Plugin(id) => Some(id.clone()),
        _ => None,
    };
    let loader = Loader::new(runtime, Arc::new(env), max_memory_mb)
        .init_memory_only(store_plugin)
        .with_grants(config.plugin_grants.clone());
    let registry = Arc::new(Registry::default());
    let reloader = Arc::new(Reloader::new(loader, registry.clone(), config.plugins_dir.clone(), config.rollout));
    if let Err(e) = reloader.sync().await {
        tracing::error!("cannot read the plugins directory {}: {e}", config.plugins_dir.display());
    }

    let store: Arc<dyn Store> = match &config.store {
        StoreKind::Sled => Arc::new(SledStore::open(&config.data_dir.join("store")).context("opening the sled store")?),
        StoreKind::Memory => Arc::new(SledStore::temporary().context("creating the in-memory store")?),
        StoreKind::Plugin(id) => {
            // Fail at start rather than on the first request: the plugin must be loaded (its
            // `init()` connected and migrated). Later reloads are followed call by call.
            match registry.get(id) {
                Some(p) if p.memory().is_some() => Arc::new(PluginStore::new(id.clone(), registry.clone())),
                Some(p) => anyhow::bail!(
                    "store {id:?}: plugin {} is a {} plugin, not a memory plugin",
                    p.label(),
                    p.manifest.kind.world().as_str()
                ),
                None => {
                    let why = registry
                        .failures()
                        .into_values()
                        .find(|f| f.error.file.file_stem().is_some_and(|s| s == id.as_str()))
                        .map(|f| format!(": {}", f.error))
                        .unwrap_or_else(|| format!(": no {id}.toml in {}", config.plugins_dir.display()));
                    anyhow::bail!("store {id:?}: the memory plugin is not loaded{why}")
                }
            }
        }
    };
    let memory = Arc::new(memory::Memory::new(store, config.memory));
    let providers = Arc::new(Providers::new(registry.clone(), config.providers.clone()));
    if config.providers.discover_models {
        providers.discover_models();
    }
    match providers.default_provider() {
        Ok(p) if p.manifest.demo => tracing::warn!(
            "default provider: {} (offline demo) - no provider key found; set OPENAI_API_KEY (or another provider's key) to talk to a real model",
            p.manifest.id
        ),
        Ok(p) => tracing::info!("default provider: {}", p.manifest.id),
        Err(e) => tracing::error!("no default provider: {e}"),
    }
    tracing::info!(store = memory.store_name(), "store ready");
    let conversation = conversation::Conversation::new(memory.clone(), providers.clone(), config.limits.clone())
        .capturing_content(capture_content);
    // A stream cannot outlive its provider deadline; a minute more covers writing it out.
    let stream_ttl = std::time::Duration::from_millis(config.providers.deadline_ms) + limits::MINUTE;
    let limiter = limits::Limiter::new(&config.limits, stream_ttl).await.context("[limits] shared")?.map(Arc::new);
    Ok(api::AppState {
        config: Arc::new(config),
        conversation,
        memory,
        providers,
        registry,
        reloader,
        limiter,
        started: Instant::now(),
    })
}

/// Serves the API on `listener` until `shutdown` completes, then lets requests and streams in
/// flight finish within the configured grace period.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    env: Env,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    // Checked before plugins compile, so a typo in the edge settings fails at once.
    let policy = edge::Policy::new(&config.edge, addr).map_err(anyhow::Error::msg)?;
    let state = start(config, env).await?;
    // Owned here so the watch stops when serving does.
    let _watcher = match state.config.watch {
        true => plugins::watch(state.reloader.clone())
            .inspect_err(|e| {
                tracing::error!("not watching the plugins directory (use POST /admin/plugins/reload): {e}")
            })
            .ok(),
        false => None,
    };
    match state.config.api_keys.len() {
        0 if !addr.ip().is_loopback() => tracing::warn!(
            "listening beyond this machine without client API keys: anyone who can reach {addr} can chat as any \
             user; set CODEXCONTINUE_API_KEYS"
        ),
        0 => {}
        n => tracing::info!("client API keys on: {n} keys"),
    }
    let edge_config = state.config.edge.clone();
    let memory = state.memory.clone();
    let app = edge::layers(api::app(state), policy, &edge_config);
    tracing::info!("listening on http://{addr}");
    edge::run(listener, app, &edge_config, shutdown).await?;
    // Every acknowledged turn was flushed when it was stored; this stops background work.
    memory.shutdown().await;
    Ok(())
}
