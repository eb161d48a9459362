//! Misbehaving plugins fail only their own request, with a clear 5xx naming the plugin, and the
//! next request works. Uses the `dummy` test plugin, whose model name picks the misbehaviour.

mod common;

use std::time::{Duration, Instant};

use common::{Setup, TestServer, error_code, plugin};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start(Setup { plugins: vec!["echo", "dummy"], ..Setup::default() }).await
}

async fn dummy(server: &TestServer, model: &str) -> (u16, Value) {
    server.chat("hi", json!({ "provider": "dummy", "model": model })).await
}

/// Asserts the dummy still answers, i.e. the fault left nothing broken behind.
async fn still_serves(server: &TestServer) {
    let (status, body) = dummy(server, "ok").await;
    assert_eq!((status, body["reply"].as_str()), (200, Some("ok")), "{body}");
}

/// Each fault maps to its status and code, and names the plugin.
#[tokio::test]
async fn faults_fail_only_their_own_request() {
    let server = server().await;
    let cases = [
        ("loop", 504, "plugin_cpu_exhausted"),
        ("oom", 502, "plugin_out_of_memory"),
        ("panic", 502, "plugin_crashed"),
        ("huge", 502, "plugin_invalid_output"),
    ];
    for (model, status, code) in cases {
        let (got, body) = dummy(&server, model).await;
        assert_eq!((got, error_code(&body)), (status, code), "{model}: {body}");
        assert_eq!(body["error"]["type"], "plugin_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("dummy@0.1.0"), "{body}");
        still_serves(&server).await;
    }
    // Nothing was stored for the failed turns.
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 4, "only the four successful turns: {sessions}");
    server.stop().await;
}

/// Provider errors map to the statuses clients expect, with Retry-After on 429.
#[tokio::test]
async fn provider_errors_map_to_http() {
    let server = TestServer::start(Setup {
        plugins: vec!["echo", "dummy"],
        configure: |c| c.providers.retries = 0,
        ..Setup::default()
    })
    .await;
    let cases = [
        ("error-401", 502, "upstream_unauthorized"),
        ("error-404", 404, "model_not_found"),
        ("error-500", 502, "upstream_unavailable"),
        ("error-timeout", 504, "upstream_timeout"),
    ];
    for (model, status, code) in cases {
        let (got, body) = dummy(&server, model).await;
        assert_eq!((got, error_code(&body)), (status, code), "{model}: {body}");
    }
    let r = server
        .client
        .post(server.url("/chat"))
        .json(&json!({ "message": "hi", "provider": "dummy", "model": "error-429" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let (_, body) = common::response(r).await;
    assert_eq!(error_code(&body), "rate_limited");
    server.stop().await;
}

/// A call that outlives the plugin's wall-clock limit is cut off with 504 (the slow model would
/// answer 200 after 2 s: the status itself shows the limit cut it).
#[tokio::test]
async fn slow_calls_time_out() {
    let (manifest, wasm) = plugin("dummy");
    let text = std::fs::read_to_string(manifest).unwrap().replace("timeout_ms = 3000", "timeout_ms = 500");
    let custom = vec![("dummy".to_string(), text, std::fs::read(wasm).unwrap())];
    let server = TestServer::start(Setup { custom, ..Setup::default() }).await;
    let (status, body) = dummy(&server, "slow").await;
    assert_eq!((status, error_code(&body)), (504, "plugin_timeout"), "{body}");
    still_serves(&server).await;
    server.stop().await;
}

/// Guests spinning on every worker do not stall other plugins.
#[tokio::test]
async fn spinning_guests_do_not_starve_others() {
    let server = server().await;
    let spinners: Vec<_> = (0..3).map(|_| dummy(&server, "loop")).collect();
    let echo = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let (status, _) = server.chat("are you there?", json!({})).await;
        (status, started.elapsed())
    };
    let (results, (echo_status, echo_time)) = tokio::join!(futures::future::join_all(spinners), echo);
    assert_eq!(echo_status, 200);
    assert!(echo_time < Duration::from_millis(1500), "echo took {echo_time:?} beside spinning guests");
    for (status, body) in results {
        assert_eq!((status, error_code(&body)), (504, "plugin_cpu_exhausted"));
    }
    server.stop().await;
}

/// A stream that fails mid-way ends with an `error` event after the deltas it got, and stores
/// nothing.
#[tokio::test]
async fn broken_streams_end_with_an_error_event() {
    let server = server().await;
    let body = json!({ "message": "hi", "provider": "dummy", "model": "stream-drop", "stream": true });
    let text = server.client.post(server.url("/chat")).json(&body).send().await.unwrap().text().await.unwrap();
    let deltas: Vec<&str> = text.lines().filter(|l| l.starts_with("data: {\"content\"")).collect();
    assert_eq!(deltas.len(), 3, "{text}");
    assert!(text.contains("event: error") && text.contains("upstream_unavailable"), "{text}");
    assert!(!text.contains("event: done"), "{text}");
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"], json!([]));
    server.stop().await;
}

/// Plugins that fail a staging step are not loaded, `/status` says which step and why, and the
/// others serve.
#[tokio::test]
async fn staging_failures_are_reported_and_contained() {
    let (manifest, wasm) = plugin("dummy");
    let manifest = common::without_env(&std::fs::read_to_string(manifest).unwrap());
    let wasm = std::fs::read(wasm).unwrap();
    let variant = |id: &str, edit: &dyn Fn(String) -> String| {
        (id.to_string(), edit(manifest.replace("id = \"dummy\"", &format!("id = \"{id}\""))), wasm.clone())
    };
    let custom = vec![
        variant("info-panics", &|m| m.replace("greeting = \"hello from dummy.toml\"", "info = \"panic\"")),
        variant("info-loops", &|m| m.replace("greeting = \"hello from dummy.toml\"", "info = \"loop\"")),
        variant("wrong-kind", &|m| m.replace("kind = \"provider\"", "kind = \"memory\"")),
        variant("wrong-wit", &|m| m.replace("wit = \"0.2.0\"", "wit = \"0.1.0\"")),
        variant("typo", &|m| m.replace("memory_mb", "memroy_mb")),
        (
            "garbage".to_string(),
            manifest.replace("id = \"dummy\"", "id = \"garbage\""),
            b"\0asm\x0d\0\x01\0garbage".to_vec(),
        ),
    ];
    let server = TestServer::start(Setup { custom, ..Setup::default() }).await;
    let (_, status) = server.get("/status").await;
    let plugins = status["plugins"].as_array().unwrap();
    let failure = |id: &str| {
        let p = plugins.iter().find(|p| p["id"] == id).unwrap_or_else(|| panic!("{id} not in {status}"));
        assert_eq!(p["state"], "failed", "{p}");
        (
            p["last_error"]["step"].as_str().unwrap().to_string(),
            p["last_error"]["message"].as_str().unwrap().to_string(),
        )
    };
    let (step, message) = failure("info-panics");
    assert_eq!(step, "self-check");
    assert!(message.contains("crashed"), "{message}");
    let (step, message) = failure("info-loops");
    assert_eq!(step, "self-check");
    assert!(message.contains("CPU budget"), "{message}");
    let (step, message) = failure("wrong-kind");
    assert_eq!(step, "version");
    assert!(message.contains("kind"), "{message}");
    let (step, message) = failure("wrong-wit");
    assert_eq!(step, "version");
    assert!(message.contains("0.2.0"), "{message}");
    let (step, message) = failure("typo");
    assert_eq!(step, "manifest");
    assert!(message.contains("memroy_mb"), "{message}");
    assert_eq!(failure("garbage").0, "compile");

    let (status, body) = server.chat("hello", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.chat("hello", json!({ "provider": "info-panics" })).await;
    assert_eq!((status, error_code(&body)), (404, "provider_not_found"));
    server.stop().await;
}

/// The manifest's `[config]` reaches the guest, with the environment override it declares.
#[tokio::test]
async fn config_reaches_the_guest_with_env_overrides() {
    let server = server().await;
    let (_, body) = dummy(&server, "config:greeting").await;
    assert_eq!(body["reply"], "hello from dummy.toml");
    let (_, body) = dummy(&server, "config:missing").await;
    assert_eq!(body["reply"], "<none>");
    server.stop().await;

    let env = vec![("CODEXCONTINUE_DUMMY_GREETING", "hello from the environment".to_string())];
    let server = TestServer::start(Setup { plugins: vec!["dummy"], env, ..Setup::default() }).await;
    let (_, body) = dummy(&server, "config:greeting").await;
    assert_eq!(body["reply"], "hello from the environment");
    server.stop().await;
}
