//! `just bench`: what the host adds around a plugin, measured on this machine. Prints a markdown
//! report (BENCHMARKS.md keeps the figures): plugin sizes, compile and cache-load time, the cost
//! of one plugin call, and `POST /chat` round trips on each store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codexcontinue::config::{Config, Env, StoreKind};
use codexcontinue::plugins::Loader;
use codexcontinue::runtime::types::{ChatRequest, Message, Role};
use codexcontinue::runtime::{PoolConfig, Runtime, RuntimeConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// p50, p99 and mean of `samples`, in microseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    format!("{:.0} | {:.0} | {:.0}", at(0.5), at(0.99), mean)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model: "echo".into(),
        messages: vec![Message {
            role: Role::User,
            content: text.into(),
            name: None,
            tool_calls: vec![],
            tool_call_id: None,
        }],
        temperature: None,
        top_p: None,
        max_tokens: None,
        stop: vec![],
        tools: vec![],
        tool_choice: None,
        extra_json: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plugins = root().join("plugins");
    println!("## Plugin sizes\n\n| plugin | bytes |\n|---|---|");
    let mut wasm: Vec<_> = std::fs::read_dir(&plugins)
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let id = dir.file_name()?.to_str()?.to_string();
            let path = dir.join(format!("{id}.wasm"));
            path.is_file().then_some((id, path))
        })
        .collect();
    wasm.sort();
    for (id, path) in &wasm {
        println!("| {id} | {} |", std::fs::metadata(path).unwrap().len());
    }

    // Compile cold, then load from the cache.
    let cache = tempfile::tempdir().unwrap();
    let runtime =
        Runtime::new(RuntimeConfig { pool: PoolConfig::default(), cache_dir: Some(cache.path().to_path_buf()) })
            .unwrap();
    let echo = std::fs::read(plugins.join("echo/echo.wasm")).expect("run `cargo xtask build-plugins` first");
    let started = Instant::now();
    let (_, hit) = runtime.compile(&echo).unwrap();
    let cold = started.elapsed();
    assert!(!hit);
    let started = Instant::now();
    let (_, hit) = runtime.compile(&echo).unwrap();
    let warm = started.elapsed();
    assert!(hit);
    println!(
        "\n## Compiling echo.wasm\n\n| step | ms |\n|---|---|\n| compile (Cranelift) | {:.1} |\n| load from cache | {:.1} |",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );

    // One plugin call: fresh Store, instantiate from the pre-instantiated component, call, drop.
    let loader = Loader::new(runtime, Arc::new(Env::default()), 512);
    let plugin = loader.stage(&plugins.join("echo/echo.toml")).await.unwrap();
    let provider = plugin.provider().unwrap();
    let req = request("hello there, how are you today?");
    for _ in 0..200 {
        provider.plugin.chat(&req).await.unwrap().unwrap();
    }
    let mut calls = Vec::new();
    for _ in 0..3000 {
        let started = Instant::now();
        provider.plugin.chat(&req).await.unwrap().unwrap();
        calls.push(started.elapsed());
    }
    let mut infos = Vec::new();
    for _ in 0..3000 {
        let started = Instant::now();
        provider.plugin.info().await.unwrap();
        infos.push(started.elapsed());
    }
    println!("\n## One plugin call (echo, 3000 calls, µs)\n\n| call | p50 | p99 | mean |\n|---|---|---|---|");
    println!("| `info()` | {} |", summary(infos));
    println!("| `chat()` | {} |", summary(calls));

    // POST /chat through the whole stack, sequentially, on each store.
    println!(
        "\n## `POST /chat` round trip (echo, new session each time, 500 requests, µs)\n\n| store | p50 | p99 | mean |\n|---|---|---|---|"
    );
    for store in [StoreKind::Memory, StoreKind::Sled] {
        let data = tempfile::tempdir().unwrap();
        let name = format!("{store:?}");
        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            plugins_dir: plugins.clone(),
            store,
            cache_dir: Some(cache.path().to_path_buf()),
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
        let url = format!("http://{}/chat", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(codexcontinue::serve(listener, config, Env::default(), async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::new();
        let body = serde_json::json!({ "message": "hello there, how are you today?", "provider": "echo" });
        while client.post(&url).json(&body).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut samples = Vec::new();
        for _ in 0..500 {
            let started = Instant::now();
            let r = client.post(&url).json(&body).send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap();
            samples.push(started.elapsed());
        }
        println!("| {} | {} |", name.to_lowercase(), summary(samples));
        tx.send(()).ok();
        server.await.unwrap().unwrap();
    }
    println!("\nProcess RSS at the end: {:.0} MiB", rss_mib());
}
