//! Plugins built against an older WIT keep working: `plugins/testing/v01-provider` is bound to
//! the frozen `wit/v0.1.0` with no SDK, and the host serves it through its v0.1 adapter beside
//! plugins on the latest version.

mod common;

use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

async fn server() -> TestServer {
    let configure = |c: &mut codexcontinue::config::Config| c.providers.retries = 0;
    TestServer::start(Setup { plugins: vec!["echo", "v01-provider"], configure, ..Setup::default() }).await
}

/// The fixture (whose manifest and component both say WIT 0.1.0; staging checks they agree) is
/// active next to the latest-version plugins.
#[tokio::test]
async fn a_v01_plugin_is_loaded_as_0_1_0() {
    let server = server().await;
    let (status, body) = server.get("/status").await;
    assert_eq!(status, 200, "{body}");
    let versions = body["wit_versions"].as_array().unwrap();
    assert!(versions.contains(&json!("0.1.0")) && versions.contains(&json!("0.2.0")), "{body}");
    let plugins = body["plugins"].as_array().unwrap();
    let fixture = plugins.iter().find(|p| p["id"] == "v01-provider").unwrap_or_else(|| panic!("{body}"));
    assert_eq!(fixture["state"], "active", "{fixture}");
    assert_eq!(fixture["default_model"], "v01", "{fixture}");
    server.stop().await;
}

/// `POST /chat` reaches the v0.1 plugin: its text, finish reason and usage come back.
#[tokio::test]
async fn a_v01_plugin_answers_chat() {
    let server = server().await;
    let (status, body) = server.chat("hello from the future", json!({ "provider": "v01-provider" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"], "v0.1 heard: hello from the future", "{body}");
    assert_eq!(body["provider"], "v01-provider");
    assert_eq!(body["finish_reason"], "stop");
    assert_eq!(body["usage"]["completion_tokens"], 6, "{body}");
    server.stop().await;
}

/// A streamed `/v1/chat/completions` from the v0.1 plugin: its 0.1.0 stream events (deltas,
/// usage) arrive as OpenAI chunks through the adapter's sink.
#[tokio::test]
async fn a_v01_plugin_streams_chat_completions() {
    let server = server().await;
    let body = json!({ "model": "v01-provider/v01", "stream": true, "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": "stream me please" }] });
    let r = server.client.post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(*data.last().unwrap(), "[DONE]", "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let deltas: Vec<&str> = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(deltas.len() >= 5, "one chunk per word: {deltas:?}");
    assert_eq!(deltas.concat(), "v0.1 heard: stream me please");
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    // The plugin's own counts (words), not the host tokenizer's.
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!((usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()), (Some(3), Some(5)), "{text}");
    server.stop().await;
}

/// A 0.1.0 `unavailable(string)` error becomes the latest `unavailable` and reaches the client
/// as an upstream outage, not a crash.
#[tokio::test]
async fn a_v01_plugin_error_is_adapted() {
    let server = server().await;
    let (status, body) = server.chat("hi", json!({ "provider": "v01-provider", "model": "unavailable" })).await;
    assert_eq!((status, error_code(&body)), (502, "upstream_unavailable"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unavailable"), "{body}");
    server.stop().await;
}
