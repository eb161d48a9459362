//! `GET /status` (version, uptime, store, every plugin and its last error) and `GET /healthz`.
//! Server file paths show only in the admin view (the admin bearer token); everyone else gets
//! the rest, with paths cut from error messages.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::Unauthorized;
use super::extract::Json;
use super::{AppState, rfc3339};
use crate::capabilities::grants::GrantReport;
use crate::plugins::{Plugin, Transition};
use crate::providers::Health;
use crate::runtime::bindings;

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(value_type = String)]
    version: &'static str,
    uptime_seconds: u64,
    store: String,
    default_provider: Option<String>,
    wit_versions: Vec<String>,
    /// Model aliases (`[providers.aliases]`): a name or `*` pattern -> the model used.
    aliases: std::collections::BTreeMap<String, String>,
    plugins: Vec<PluginStatus>,
    /// Recent plugin transitions (loaded, candidate, promoted, rolled-back, failed, unloaded).
    #[schema(value_type = Vec<Object>)]
    transitions: Vec<Transition>,
}

#[derive(Serialize, ToSchema)]
pub struct PluginStatus {
    id: String,
    version: Option<String>,
    /// `provider-plugin` or `memory-plugin`.
    #[schema(value_type = Option<String>)]
    kind: Option<&'static str>,
    /// `active`, or `failed` when no version of it could be loaded.
    #[schema(value_type = String)]
    state: &'static str,
    description: Option<String>,
    demo: bool,
    /// The manifest's path on the server (admin view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    loaded_at: Option<String>,
    load_ms: Option<u64>,
    cached: Option<bool>,
    default_model: Option<String>,
    missing: Vec<String>,
    last_error: Option<LastError>,
    /// Providers: how recent calls went.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    health: Option<Health>,
    /// Providers: model ids, or why they could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<Value>,
    /// Admin view: every environment variable, origin and secret binding the plugin was
    /// granted, and who granted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    grants: Option<GrantReport>,
    /// A new version on probation next to this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    candidate: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct LastError {
    step: String,
    message: String,
    at: String,
}

/// How long `/status` waits for providers to list their models (cached lists are instant).
const MODELS_WAIT: Duration = Duration::from_secs(2);

/// Version, uptime, store and every plugin with its state. With client keys on, a key or the
/// admin token is needed; only the admin token shows server file paths.
#[utoipa::path(get, path = "/status", operation_id = "get_status", tag = "operations", security(("api_key" = []), ("admin_token" = [])),
    responses((status = 200, body = Status), (status = 401, body = super::openapi::ErrorResponse)))]
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Status>, Unauthorized> {
    let admin = super::admin::is_admin(&state, &headers);
    if !admin && !state.config.api_keys.is_empty() {
        super::auth::authenticate(&state.config.api_keys, &headers)?;
    }
    let paths = Paths::new(&state, admin);
    let mut models: BTreeMap<String, Value> = match tokio::time::timeout(MODELS_WAIT, state.providers.models()).await {
        Ok(lists) => lists
            .into_iter()
            .map(|l| {
                let value = match l.models {
                    Ok(models) => json!(models.into_iter().map(|m| m.id).collect::<Vec<_>>()),
                    Err(e) => json!({ "error": e }),
                };
                (l.plugin.manifest.id.clone(), value)
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let mut failures = state.registry.failures();
    let mut plugins: Vec<PluginStatus> = state
        .registry
        .slots()
        .values()
        .map(|slot| {
            let p = &slot.stable;
            let failure = failures.remove(&p.manifest_path);
            let mut status = active(p, failure.map(|f| last_error(f, &paths)), &paths);
            status.candidate = slot.candidate.as_ref().map(|c| {
                let (calls, failures) = c.counts();
                json!({
                    "version": c.plugin.manifest.version.to_string(),
                    "loaded_at": rfc3339(c.plugin.loaded_at),
                    "share": c.rollout.share,
                    "calls": calls,
                    "failures": failures,
                    "promote_after": c.rollout.requests,
                })
            });
            if p.provider().is_some() {
                status.health = Some(state.providers.health(&p.manifest.id));
                status.models = Some(
                    models.remove(&p.manifest.id).unwrap_or_else(|| json!({ "error": "timed out listing models" })),
                );
            }
            status
        })
        .collect();
    plugins.extend(failures.into_iter().map(|(file, failure)| PluginStatus {
        id: file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        version: None,
        kind: None,
        state: "failed",
        description: None,
        demo: false,
        file: paths.file(&file),
        loaded_at: None,
        load_ms: None,
        cached: None,
        default_model: None,
        missing: Vec::new(),
        last_error: Some(last_error(failure, &paths)),
        health: None,
        models: None,
        grants: None,
        candidate: None,
    }));
    plugins.sort_by(|a, b| a.id.cmp(&b.id));
    let mut transitions = state.registry.history();
    for t in &mut transitions {
        t.reason = t.reason.take().map(|r| paths.scrub(r));
    }
    Ok(Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        store: state.memory.store_name().to_string(),
        default_provider: state.providers.default_provider().ok().map(|p| p.manifest.id.clone()),
        wit_versions: bindings::SUPPORTED.iter().map(ToString::to_string).collect(),
        aliases: state.providers.aliases().clone(),
        plugins,
        transitions,
    }))
}

/// What the caller may see of the server's file system: everything (admin), or nothing.
struct Paths {
    /// Directory prefixes to cut from messages; empty for the admin.
    dirs: Vec<String>,
    admin: bool,
}

impl Paths {
    fn new(state: &AppState, admin: bool) -> Self {
        let c = &state.config;
        let mut dirs = Vec::new();
        if !admin {
            for dir in [c.plugins_dir.clone(), c.data_dir.clone(), c.cache_dir()] {
                if let Ok(full) = dir.canonicalize() {
                    dirs.push(full.display().to_string());
                }
                dirs.push(dir.display().to_string());
            }
            // Longest first, so a directory inside another is cut whole.
            dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        }
        Self { dirs, admin }
    }

    /// `path` for the admin, else nothing.
    fn file(&self, path: &std::path::Path) -> Option<String> {
        self.admin.then(|| path.display().to_string())
    }

    /// `text` with the server's directories cut, so `/srv/cc/plugins/x.wasm: ...` reads `x.wasm: ...`.
    fn scrub(&self, text: String) -> String {
        self.dirs
            .iter()
            .filter(|d| !d.is_empty() && d.as_str() != ".")
            .fold(text, |text, dir| text.replace(&format!("{dir}/"), "").replace(dir.as_str(), "<dir>"))
    }
}

fn active(p: &Plugin, last_error: Option<LastError>, paths: &Paths) -> PluginStatus {
    let provider = p.provider();
    PluginStatus {
        id: p.manifest.id.clone(),
        version: Some(p.manifest.version.to_string()),
        kind: Some(p.manifest.kind.world().as_str()),
        state: "active",
        description: Some(p.manifest.description.clone()),
        demo: p.manifest.demo,
        file: paths.file(&p.manifest_path),
        loaded_at: Some(rfc3339(p.loaded_at)),
        load_ms: Some(p.load_time.as_millis() as u64),
        cached: Some(p.cached),
        default_model: provider.map(|pr| pr.info.default_model.clone()),
        missing: provider.map(|pr| pr.missing.clone()).unwrap_or_default(),
        last_error,
        health: None,
        models: None,
        grants: paths.admin.then(|| p.capabilities().grants.clone()),
        candidate: None,
    }
}

fn last_error(f: crate::plugins::Failure, paths: &Paths) -> LastError {
    LastError { step: f.step().to_string(), message: paths.scrub(f.error.reason), at: rfc3339(f.at) }
}

/// `GET /healthz`'s reply.
#[derive(Serialize, ToSchema)]
pub struct Healthz {
    /// Always `ok`: the server answers once it is serving.
    #[schema(value_type = String)]
    status: &'static str,
}

/// Liveness: answers once the server is serving.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", security(()), responses((status = 200, body = Healthz)))]
pub async fn healthz() -> Json<Healthz> {
    Json(Healthz { status: "ok" })
}
