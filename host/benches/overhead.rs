//! `just bench`: what the host adds around a plugin, measured on this machine. Prints a markdown
//! report (BENCHMARKS.md keeps the figures): plugin sizes, compile and cache-load time, the cost
//! of one plugin call, and `POST /chat` round trips on each store.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codexcontinue::config::{Config, Env, StoreKind};
use codexcontinue::plugins::Loader;
use codexcontinue::runtime::types::{ChatRequest, Message, Role};
use codexcontinue::runtime::{PoolConfig, Runtime, RuntimeConfig};
use support::{Server, quantile, root, rss_mib};

/// p50, p99 and mean of `samples`, in microseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    format!("{:.0} | {:.0} | {mean:.0}", quantile(&samples, 0.5, 1e6), quantile(&samples, 0.99, 1e6))
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model: "echo".into(),
        messages: vec![Message::text(Role::User, text)],
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
            data_dir: data.path().to_path_buf(),
            plugins_dir: plugins.clone(),
            store,
            cache_dir: Some(cache.path().to_path_buf()),
            ..Config::default()
        };
        let server = Server::start(config, Env::default()).await;
        let url = format!("{}/chat", server.url);
        let client = reqwest::Client::new();
        let body = serde_json::json!({ "message": "hello there, how are you today?", "provider": "echo" });
        let mut samples = Vec::new();
        for _ in 0..500 {
            let started = Instant::now();
            let r = client.post(&url).json(&body).send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap();
            samples.push(started.elapsed());
        }
        println!("| {} | {} |", name.to_lowercase(), summary(samples));
        server.stop().await;
    }
    vendor_overhead(&plugins, cache.path()).await;
    println!("\nProcess RSS at the end: {:.0} MiB", rss_mib());
}

/// What the host and the `openai` plugin add to a vendor round trip: `POST /chat` through the
/// plugin against a local OpenAI mock, compared with calling the mock directly.
async fn vendor_overhead(plugins: &Path, cache: &Path) {
    use codexcontinue_vendor_mock::{MockServer, Reply};
    let reply = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-3.5-turbo",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Hello there." }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12 },
    });
    let vendor = MockServer::start(move |_| Reply::json(200, reply.clone())).await;
    let client = reqwest::Client::new();
    let direct_body =
        serde_json::json!({ "model": "gpt-3.5-turbo", "messages": [{ "role": "user", "content": "hello" }] });
    let mut direct = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        client
            .post(format!("{}/v1/chat/completions", vendor.url))
            .json(&direct_body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        direct.push(started.elapsed());
    }

    let installed = tempfile::tempdir().unwrap();
    for ext in ["toml", "wasm"] {
        std::fs::copy(plugins.join(format!("openai/openai.{ext}")), installed.path().join(format!("openai.{ext}")))
            .unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: data.path().to_path_buf(),
        plugins_dir: installed.path().to_path_buf(),
        store: StoreKind::Memory,
        cache_dir: Some(cache.to_path_buf()),
        ..Config::default()
    };
    config.memory.embeddings = false;
    config.memory.summaries = false;
    let env: Env = [("OPENAI_API_KEY", "sk-bench".to_string()), ("OPENAI_BASE_URL", format!("{}/v1", vendor.url))]
        .into_iter()
        .collect();
    let server = Server::start(config, env).await;
    let url = format!("{}/chat", server.url);
    let body = serde_json::json!({ "message": "hello" });
    let mut through = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        let r = client.post(&url).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        through.push(started.elapsed());
    }
    println!("\n## A vendor round trip through the `openai` plugin (local OpenAI mock, 500 requests, µs)\n");
    println!(
        "| path | p50 | p99 | mean |\n|---|---|---|---|\n| client → mock directly | {} |\n| client → `POST /chat` → openai plugin → mock | {} |",
        summary(direct),
        summary(through)
    );
    server.stop().await;
}
