//! `just bench`: hot reload as an operator sees it. Time from writing a new version of a plugin
//! to that version answering (same bytes with a new manifest: compile cache hit; new bytes:
//! a full compile), and `/chat` latency under steady load without and during reloads.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use codexcontinue::config::{Config, Env};
use serde_json::{Value, json};
use support::{Server, quantile, root};

/// p50, p99 and max of `samples`, in milliseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q| quantile(&samples, q, 1e3);
    format!("{:.1} | {:.1} | {:.1}", at(0.5), at(0.99), at(1.0))
}

fn manifest(version: usize) -> String {
    std::fs::read_to_string(root().join("plugins/testing/dummy/dummy.toml"))
        .unwrap()
        .replace("version = \"0.1.0\"", &format!("version = \"0.{version}.0\""))
        .replace("[config]\n", &format!("[config]\nreply = \"v{version}\"\n"))
        // Promote at once: this measures staging, not the probation period.
        + "\n[rollout]\nrequests = 0\n"
}

/// The dummy component with a custom section appended: valid, but new bytes, so no cache hit.
fn fresh_bytes(wasm: &[u8], n: usize) -> Vec<u8> {
    let name = b"bench";
    let payload = n.to_le_bytes();
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8); // LEB128 size, < 128
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

async fn reply(client: &reqwest::Client, url: &str) -> (bool, String) {
    let body = json!({ "message": "hi", "provider": "dummy", "model": "ok" });
    match client.post(url).json(&body).send().await {
        Ok(r) => {
            let ok = r.status().is_success();
            let body: Value = r.json().await.unwrap_or_default();
            (ok, body["reply"].as_str().unwrap_or_default().to_string())
        }
        Err(_) => (false, String::new()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let wasm = std::fs::read(root().join("plugins/target/wasm32-wasip2/release/dummy.wasm"))
        .expect("run `cargo xtask build-plugins` first");
    let plugins = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("dummy.wasm"), &wasm).unwrap();
    std::fs::write(plugins.path().join("dummy.toml"), manifest(1)).unwrap();
    let config =
        Config { data_dir: data.path().to_path_buf(), plugins_dir: plugins.path().to_path_buf(), ..Config::default() };
    let server = Server::start(config, Env::default()).await;
    let url = format!("{}/chat", server.url);
    let client = reqwest::Client::new();
    while reply(&client, &url).await.1 != "v1" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // File write to serving, polling every millisecond.
    let mut version = 1;
    let mut measure = async |new_bytes: bool| {
        let mut samples = Vec::new();
        for _ in 0..15 {
            version += 1;
            let started = Instant::now();
            if new_bytes {
                std::fs::write(plugins.path().join("dummy.wasm"), fresh_bytes(&wasm, version)).unwrap();
            }
            std::fs::write(plugins.path().join("dummy.toml"), manifest(version)).unwrap();
            let tag = format!("v{version}");
            while reply(&client, &url).await.1 != tag {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        summary(samples)
    };
    let same = measure(false).await;
    let fresh = measure(true).await;
    println!("## Hot reload: file write to the new version answering (15 reloads each, ms)\n");
    println!(
        "| change | p50 | p99 | max |\n|---|---|---|---|\n| new manifest, same wasm (cache hit) | {same} |\n| new wasm (full compile) | {fresh} |"
    );

    // Latency under a steady load of two clients, first quiet, then with a reload every 200 ms.
    let load = async |reloading: bool| {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    let mut failed = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        if reply(&client, &url).await.0 { samples.push(started.elapsed()) } else { failed += 1 }
                    }
                    (samples, failed)
                })
            })
            .collect();
        for i in 0..15 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if reloading {
                std::fs::write(plugins.path().join("dummy.toml"), manifest(1000 + i)).unwrap();
            }
        }
        stop.store(true, Ordering::SeqCst);
        let (mut samples, mut failed) = (Vec::new(), 0);
        for c in clients {
            let (s, f) = c.await.unwrap();
            samples.extend(s);
            failed += f;
        }
        (samples.len(), failed, summary(samples))
    };
    let (quiet_n, quiet_failed, quiet) = load(false).await;
    let (busy_n, busy_failed, busy) = load(true).await;
    println!(
        "\n## `/chat` latency under load, 2 clients for 3 s (ms)\n\n| phase | requests | failed | p50 | p99 | max |\n|---|---|---|---|---|---|"
    );
    println!(
        "| no reloads | {quiet_n} | {quiet_failed} | {quiet} |\n| a reload every 200 ms | {busy_n} | {busy_failed} | {busy} |"
    );
    server.stop().await;
}
