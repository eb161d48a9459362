//! Test support: starts the real server through `codexcontinue::serve` on 127.0.0.1:0 with
//! real plugins built from `plugins/` (run `cargo xtask build-plugins` first), and stops it
//! through the shutdown future.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod databases;
pub mod openai_wire;
pub mod vendor;

pub use codexcontinue_vendor_mock as mock;

use std::path::{Path, PathBuf};
use std::time::Duration;

use codexcontinue::config::{Config, Env, StoreKind};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A built first-party plugin: (manifest, wasm).
pub fn plugin(id: &str) -> (PathBuf, PathBuf) {
    let (manifest, wasm) = match id {
        "dummy" => (
            root().join("plugins/testing/dummy/dummy.toml"),
            root().join("plugins/target/wasm32-wasip2/release/dummy.wasm"),
        ),
        "v01-provider" => (
            root().join("plugins/testing/v01-provider/v01-provider.toml"),
            root().join("plugins/target/wasm32-wasip2/release/v01_provider.wasm"),
        ),
        id => (root().join(format!("plugins/{id}/{id}.toml")), root().join(format!("plugins/{id}/{id}.wasm"))),
    };
    assert!(wasm.is_file(), "{} is missing: run `cargo xtask build-plugins` first", wasm.display());
    (manifest, wasm)
}

/// A first-party plugin as a `Setup::custom` entry, its manifest edited by `edit` (e.g. to
/// shorten `timeout_ms`).
pub fn plugin_with(id: &str, edit: impl Fn(String) -> String) -> (String, String, Vec<u8>) {
    let (manifest, wasm) = plugin(id);
    (id.to_string(), edit(std::fs::read_to_string(manifest).unwrap()), std::fs::read(wasm).unwrap())
}

/// `manifest` without its `[env]` table: the dummy's variables are its own (`DUMMY_*`), so a
/// copy under another id may not read them.
pub fn without_env(manifest: &str) -> String {
    let Some((before, after)) = manifest.split_once("\n[env]\n") else { return manifest.to_string() };
    let rest = after.split_once("\n[").map(|(_, r)| format!("\n[{r}")).unwrap_or_default();
    format!("{before}\n{rest}")
}

/// Compiled plugins are cached across test binaries here, as the server does in its data dir.
pub fn shared_cache() -> PathBuf {
    root().join("target/test-plugin-cache")
}

/// What a test server starts with.
pub struct Setup {
    /// Plugins installed as shipped, by id.
    pub plugins: Vec<&'static str>,
    /// Extra plugins: (id, manifest text, wasm bytes).
    pub custom: Vec<(String, String, Vec<u8>)>,
    pub env: Vec<(&'static str, String)>,
    pub store: StoreKind,
    pub configure: fn(&mut Config),
    /// Background summaries and embeddings; off for tests that script every vendor request.
    pub background_memory: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            plugins: vec!["echo"],
            custom: Vec::new(),
            env: Vec::new(),
            store: StoreKind::Sled,
            configure: |_| {},
            background_memory: true,
        }
    }
}

/// A server running in this process.
pub struct TestServer {
    pub url: String,
    pub client: reqwest::Client,
    pub plugins_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    config: Config,
    env: Env,
    _dirs: (TempDir, TempDir),
}

impl TestServer {
    pub async fn start(setup: Setup) -> Self {
        let data = TempDir::new().unwrap();
        let plugins = TempDir::new().unwrap();
        for id in &setup.plugins {
            let (manifest, wasm) = plugin(id);
            std::fs::copy(manifest, plugins.path().join(format!("{id}.toml"))).unwrap();
            std::fs::copy(wasm, plugins.path().join(format!("{id}.wasm"))).unwrap();
        }
        for (id, manifest, wasm) in &setup.custom {
            std::fs::write(plugins.path().join(format!("{id}.toml")), manifest).unwrap();
            std::fs::write(plugins.path().join(format!("{id}.wasm")), wasm).unwrap();
        }
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            plugins_dir: plugins.path().to_path_buf(),
            store: setup.store,
            cache_dir: Some(shared_cache()),
            ..Config::default()
        };
        config.memory.summaries = setup.background_memory;
        config.memory.embeddings = setup.background_memory;
        // Model lists are fetched in the background at startup; tests that script every vendor
        // request turn it on themselves.
        config.providers.discover_models = false;
        (setup.configure)(&mut config);
        let env: Env = setup.env.into_iter().collect();
        Self::launch(config, env, (data, plugins)).await
    }

    async fn launch(config: Config, env: Env, dirs: (TempDir, TempDir)) -> Self {
        let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(codexcontinue::serve(listener, config.clone(), env.clone(), async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let server = Self {
            url,
            client,
            plugins_dir: dirs.1.path().to_path_buf(),
            shutdown: Some(tx),
            task: Some(task),
            config,
            env,
            _dirs: dirs,
        };
        server.wait_ready().await;
        server
    }

    /// Stops the server, then starts it again on the same data and plugins (a new port).
    pub async fn restart(mut self) -> Self {
        self.shutdown.take().unwrap().send(()).ok();
        self.task.take().unwrap().await.unwrap().unwrap();
        let (config, env) = (self.config.clone(), self.env.clone());
        let dirs = std::mem::replace(&mut self._dirs, (TempDir::new().unwrap(), TempDir::new().unwrap()));
        Self::launch(config, env, dirs).await
    }

    async fn wait_ready(&self) {
        // Plugins compile before the server accepts; a debug host takes a few seconds for that.
        for _ in 0..600 {
            if let Ok(r) = self.client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if self.task.as_ref().unwrap().is_finished() {
                panic!("the server stopped during startup");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// POSTs JSON to `path`; returns status and body (JSON, or a string if not JSON).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.post(self.url(path)).json(&body).send().await.unwrap();
        response(r).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        response(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        response(self.client.delete(self.url(path)).send().await.unwrap()).await
    }

    /// `POST /chat` with `{"message": message}` plus `extra` fields.
    pub async fn chat(&self, message: &str, extra: Value) -> (u16, Value) {
        let mut body = serde_json::json!({ "message": message });
        body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        self.post("/chat", body).await
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).ok();
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

pub async fn response(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts the JSON error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "no message in {body}");
    assert!(error["type"].as_str().is_some(), "no type in {body}");
    error["code"].as_str().unwrap_or_else(|| panic!("no code in {body}"))
}
