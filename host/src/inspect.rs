//! `codexcontinue plugins inspect FILE`: everything the host knows about one plugin before it
//! serves — its interfaces, what it was granted (every origin and what added it, every secret and
//! where it may go, every environment variable and who granted it, config after overrides), its
//! limits and rollout, and what `info()` said — or the step that failed.

use std::fmt::Write as _;
use std::path::Path;

use crate::capabilities::grants::GrantedBy;
use crate::plugins::{Loader, Plugin, Rollout};

/// The report for the plugin whose manifest or wasm is at `path`; `Err` holds the staging
/// error as text.
pub async fn inspect(loader: &Loader, path: &Path, server_rollout: Rollout) -> Result<String, String> {
    let manifest = path.with_extension("toml");
    let plugin = loader.stage(&manifest).await.map_err(|e| e.to_string())?;
    let wasm = std::fs::read(manifest.with_extension("wasm")).map_err(|e| e.to_string())?;
    let runtime = loader.runtime().clone();
    let size = wasm.len();
    let (component, _cached) = tokio::task::spawn_blocking(move || runtime.compile(&wasm))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e:#}"))?;
    let (imports, exports) = loader.runtime().interfaces(&component);
    Ok(report(&plugin, size, &imports, &exports, server_rollout))
}

fn report(plugin: &Plugin, size: usize, imports: &[String], exports: &[String], server_rollout: Rollout) -> String {
    let m = &plugin.manifest;
    let caps = plugin.capabilities();
    let mut out = String::new();
    let line = |out: &mut String, label: &str, text: String| {
        let _ = writeln!(out, "{label:<10}{text}");
    };
    line(
        &mut out,
        "plugin",
        format!(
            "{} ({}, WIT {}){}",
            plugin.label(),
            m.kind.world().as_str(),
            m.wit,
            if m.demo { ", offline demo" } else { "" }
        ),
    );
    if !m.description.is_empty() {
        line(&mut out, "", m.description.clone());
    }
    line(
        &mut out,
        "file",
        format!("{} ({size} bytes, sha256 {})", plugin.manifest_path.with_extension("wasm").display(), plugin.digest),
    );
    line(&mut out, "exports", exports.join(", "));
    line(&mut out, "imports", imports.join(", "));
    let grants = &caps.grants;
    if grants.egress.is_empty() {
        line(&mut out, "egress", "none".into());
    }
    for e in &grants.egress {
        let from = if e.from == "manifest" { "manifest".to_string() } else { format!("from {}", e.from) };
        line(&mut out, "egress", format!("{} ({from})", e.origin));
    }
    for s in &grants.secrets {
        let state = if s.set { "set" } else { "not set" };
        line(&mut out, "secret", format!("{} ({state}) may go to {}", s.name, s.origins.join(", ")));
    }
    for g in &grants.env {
        let by = match g.granted_by {
            GrantedBy::Vendor => "its vendor's",
            GrantedBy::OwnNamespace => "its namespace",
            GrantedBy::Operator => "granted by the operator",
        };
        let state = if g.set { "set" } else { "not set" };
        line(&mut out, "env", format!("{} -> {} ({by}, {state})", g.variable, g.read_as));
    }
    for (key, value) in &caps.config {
        let overridden = m.config.get(key) != Some(value);
        let source = m.env.get(key).filter(|_| overridden).map(|var| format!(" (from {var})")).unwrap_or_default();
        line(&mut out, "config", format!("{key} = {value}{source}"));
    }
    let l = m.limits();
    line(
        &mut out,
        "limits",
        format!(
            "memory {} MiB, timeout {} ms, cpu {} ms, {} calls at once",
            l.memory_mb,
            l.timeout.as_millis(),
            l.cpu.as_millis(),
            l.max_concurrency
        ),
    );
    let (rollout, whose) = match m.rollout {
        Some(r) => (r, "manifest"),
        None => (server_rollout, "server default"),
    };
    line(
        &mut out,
        "rollout",
        format!(
            "share {}, promote after {} calls, at most {} failing ({whose})",
            rollout.share, rollout.requests, rollout.max_error_rate
        ),
    );
    if let Some(p) = plugin.provider() {
        line(
            &mut out,
            "provider",
            format!(
                "{:?}, default model {}{}",
                p.info.name,
                p.info.default_model,
                p.info.embedding_model.as_ref().map(|e| format!(", embeddings {e}")).unwrap_or_default()
            ),
        );
        if !p.missing.is_empty() {
            line(&mut out, "missing", format!("set {} to use it", p.missing.join(", ")));
        }
    }
    line(
        &mut out,
        "staged",
        format!(
            "in {} ms{}",
            plugin.load_time.as_millis(),
            if plugin.cached { " (compiled code from the cache)" } else { "" }
        ),
    );
    out
}
