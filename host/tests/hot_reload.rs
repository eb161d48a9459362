//! Plugins change under a running server: new ones load, new versions roll out as candidates
//! and are promoted or rolled back, broken files never replace what works, removed plugins
//! unload, and clients under load never notice.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use codexcontinue::config::Config;
use common::{Setup, TestServer, error_code, plugin};
use serde_json::{Value, json};

/// The dummy's manifest as version `version`, replying `reply`; `extra` goes into `[config]`.
fn manifest(version: &str, reply: &str, extra: &str) -> String {
    let (path, _) = plugin("dummy");
    std::fs::read_to_string(path)
        .unwrap()
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace("[config]\n", &format!("[config]\nreply = \"{reply}\"\n{extra}\n"))
}

fn dummy_wasm() -> Vec<u8> {
    std::fs::read(plugin("dummy").1).unwrap()
}

/// Writes through a temporary file and a rename, as deploy tools and editors do.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().unwrap().to_str().unwrap()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

async fn server(configure: fn(&mut Config)) -> TestServer {
    TestServer::start(Setup { plugins: vec!["echo"], configure, ..Setup::default() }).await
}

async fn ask(server: &TestServer) -> (u16, Value) {
    server.chat("hi", json!({ "provider": "dummy", "model": "ok" })).await
}

/// Polls until `check` holds, for at most ten seconds.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn dummy_status(server: &TestServer) -> Option<Value> {
    let (_, status) = server.get("/status").await;
    status["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "dummy").cloned()
}

async fn transitions(server: &TestServer) -> Vec<String> {
    let (_, status) = server.get("/status").await;
    status["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["plugin"] == "dummy")
        .map(|t| t["event"].as_str().unwrap().to_string())
        .collect()
}

/// A plugin dropped into the directory serves shortly after, wasm first or manifest first.
#[tokio::test]
async fn new_plugins_are_picked_up() {
    let server = server(|_| {}).await;
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ask(&server).await.0, 404, "no manifest yet");
    let started = Instant::now();
    std::fs::write(dir.join("dummy.toml"), manifest("0.1.0", "v1", "")).unwrap();
    eventually("the plugin serves", async || ask(&server).await.1["reply"] == "v1").await;
    println!("file write to serving: {:?}", started.elapsed());
    assert_eq!(transitions(&server).await.last().map(String::as_str), Some("loaded"));
    server.stop().await;
}

/// A new version serves as a candidate and is promoted after its probation calls.
#[tokio::test]
async fn new_versions_are_promoted_after_good_calls() {
    let server = server(|c| c.rollout.requests = 3).await;
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    write_atomically(&dir.join("dummy.toml"), manifest("0.1.0", "v1", "").as_bytes());
    eventually("v1 serves", async || ask(&server).await.1["reply"] == "v1").await;

    write_atomically(&dir.join("dummy.toml"), manifest("0.2.0", "v2", "").as_bytes());
    eventually("v2 is a candidate", async || {
        dummy_status(&server).await.is_some_and(|p| p["candidate"]["version"] == "0.2.0")
    })
    .await;
    for _ in 0..3 {
        let (status, body) = ask(&server).await;
        assert_eq!((status, &body["reply"]), (200, &json!("v2")));
    }
    let status = dummy_status(&server).await.unwrap();
    assert_eq!((status["version"].as_str(), status["candidate"].is_null()), (Some("0.2.0"), true), "{status}");
    assert_eq!(transitions(&server).await, ["loaded", "candidate", "promoted"]);
    server.stop().await;
}

/// A version that crashes on every call is rolled back, and its failed calls are answered by
/// the stable version: no client sees an error.
#[tokio::test]
async fn crashing_versions_roll_back_without_client_errors() {
    let server = server(|_| {}).await;
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    write_atomically(&dir.join("dummy.toml"), manifest("0.1.0", "v1", "").as_bytes());
    eventually("v1 serves", async || ask(&server).await.1["reply"] == "v1").await;

    write_atomically(&dir.join("dummy.toml"), manifest("0.2.0", "v2", "mode = \"panic\"").as_bytes());
    eventually("v2 is a candidate", async || dummy_status(&server).await.is_some_and(|p| !p["candidate"].is_null()))
        .await;
    for _ in 0..5 {
        let (status, body) = ask(&server).await;
        assert_eq!((status, &body["reply"]), (200, &json!("v1")), "{body}");
    }
    let status = dummy_status(&server).await.unwrap();
    assert_eq!(status["version"], "0.1.0");
    assert!(status["candidate"].is_null(), "{status}");
    assert_eq!(status["last_error"]["step"], "rollout");
    assert!(status["last_error"]["message"].as_str().unwrap().contains("rolled back"), "{status}");
    assert_eq!(
        transitions(&server).await,
        ["loaded", "candidate", "rolled-back"],
        "{:?}",
        server.get("/status").await.1["transitions"]
    );

    // Touching the rejected files does not roll them out again; changing them does.
    write_atomically(&dir.join("dummy.toml"), manifest("0.2.0", "v2", "mode = \"panic\"").as_bytes());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(transitions(&server).await.len(), 3, "{:?}", server.get("/status").await.1["transitions"]);
    server.stop().await;
}

/// Files that fail staging never replace the working version; restoring them clears the error.
#[tokio::test]
async fn broken_files_never_replace_the_working_version() {
    let server = server(|_| {}).await;
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    write_atomically(&dir.join("dummy.toml"), manifest("0.1.0", "v1", "").as_bytes());
    eventually("v1 serves", async || ask(&server).await.1["reply"] == "v1").await;

    // A half-written copy, then a manifest with a typo.
    std::fs::write(dir.join("dummy.wasm"), &dummy_wasm()[..1000]).unwrap();
    eventually("the compile failure shows", async || {
        dummy_status(&server).await.is_some_and(|p| p["last_error"]["step"] == "compile")
    })
    .await;
    assert_eq!(ask(&server).await.1["reply"], "v1");
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    eventually("the error clears", async || dummy_status(&server).await.is_some_and(|p| p["last_error"].is_null()))
        .await;
    write_atomically(&dir.join("dummy.toml"), manifest("0.3.0", "v3", "").replace("memory_mb", "memroy_mb").as_bytes());
    eventually("the manifest failure shows", async || {
        dummy_status(&server).await.is_some_and(|p| p["last_error"]["step"] == "manifest")
    })
    .await;
    let (status, body) = ask(&server).await;
    assert_eq!((status, &body["reply"]), (200, &json!("v1")));
    server.stop().await;
}

/// Removing a plugin's files unloads it; requests naming it then get a clear 404.
#[tokio::test]
async fn removed_plugins_unload() {
    let server = server(|_| {}).await;
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    write_atomically(&dir.join("dummy.toml"), manifest("0.1.0", "v1", "").as_bytes());
    eventually("v1 serves", async || ask(&server).await.0 == 200).await;
    std::fs::remove_file(dir.join("dummy.toml")).unwrap();
    std::fs::remove_file(dir.join("dummy.wasm")).unwrap();
    eventually("dummy is gone", async || ask(&server).await.0 == 404).await;
    let (_, body) = ask(&server).await;
    assert_eq!(error_code(&body), "provider_not_found");
    assert!(dummy_status(&server).await.is_none());
    assert_eq!(transitions(&server).await.last().map(String::as_str), Some("unloaded"));
    server.stop().await;
}

/// Without file watching, `POST /admin/plugins/reload` rescans, behind the admin token.
#[tokio::test]
async fn admin_reload_rescans_the_directory() {
    let watched = server(|c| {
        c.watch = false;
        c.admin_token = Some("s3cret-admin".into());
    })
    .await;
    let server = &watched;
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    std::fs::write(dir.join("dummy.toml"), manifest("0.1.0", "v1", "")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ask(server).await.0, 404, "nothing watches the directory");

    let reload =
        |token: &'static str| server.client.post(server.url("/admin/plugins/reload")).bearer_auth(token).send();
    let (status, body) = common::response(reload("wrong").await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (401, "invalid_admin_token"));
    let (status, body) = common::response(reload("s3cret-admin").await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staged"], json!(["dummy"]));
    assert_eq!(body["unchanged"], json!(["echo"]));
    assert_eq!(ask(server).await.1["reply"], "v1");
    watched.stop().await;

    let server = self::server(|c| c.watch = false).await;
    let (status, body) =
        common::response(server.client.post(server.url("/admin/plugins/reload")).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (403, "admin_disabled"));
    server.stop().await;
}

/// Under continuous concurrent load (plain and streamed chats), the plugin is replaced 100
/// times, cycling through good versions, a file that does not compile and a version that
/// crashes on every call. No client request fails, every reply comes from a good version, and
/// the rollbacks fire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_replacements_under_load() {
    let server = Arc::new(server(|c| c.rollout.requests = 3).await);
    let dir = server.plugins_dir.clone();
    std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
    write_atomically(&dir.join("dummy.toml"), manifest("0.0.1", "good-0", "").as_bytes());
    eventually("the first version serves", async || ask(&server).await.0 == 200).await;

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let stream = n % 2 == 1;
                    let body = json!({ "message": "hi", "provider": "dummy", "model": "ok", "stream": stream });
                    let r = server.client.post(server.url("/chat")).json(&body).send().await.unwrap();
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap();
                    let reply = if stream {
                        let done =
                            text.split("event: done\ndata: ").nth(1).map(|d| d.lines().next().unwrap().to_string());
                        done.and_then(|d| serde_json::from_str::<Value>(&d).ok()).map(|d| d["reply"].clone())
                    } else {
                        serde_json::from_str::<Value>(&text).ok().map(|b| b["reply"].clone())
                    };
                    match reply.as_ref().and_then(Value::as_str) {
                        Some(r) if status == 200 && r.starts_with("good-") => {
                            served.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => failures.push(format!("{status}: {text}")),
                    }
                }
                failures
            })
        })
        .collect();

    for i in 1..=100 {
        match i % 3 {
            0 => std::fs::write(dir.join("dummy.wasm"), b"\0asm\x0d\0\x01\0not really").unwrap(),
            1 => {
                std::fs::write(dir.join("dummy.wasm"), dummy_wasm()).unwrap();
                write_atomically(
                    &dir.join("dummy.toml"),
                    manifest(&format!("0.{i}.0"), &format!("good-{i}"), "").as_bytes(),
                );
            }
            _ => write_atomically(
                &dir.join("dummy.toml"),
                manifest(&format!("0.{i}.0"), "never", "mode = \"panic\"").as_bytes(),
            ),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(failures.is_empty(), "{} failed requests, e.g. {:?}", failures.len(), &failures[..failures.len().min(3)]);
    assert!(served.load(Ordering::SeqCst) > 200, "only {} requests served", served.load(Ordering::SeqCst));
    let events = transitions(&server).await;
    for event in ["candidate", "promoted", "rolled-back", "failed"] {
        assert!(events.iter().any(|e| e == event), "no {event} in {events:?}");
    }
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}
