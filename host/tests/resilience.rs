//! Retries, fallbacks and deadlines, with the dummy plugin failing on purpose and the echo
//! demo standing by as the fallback.

mod common;

use std::time::{Duration, Instant};

use codexcontinue::config::Config;
use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

fn with_fallback(c: &mut Config) {
    c.providers.backoff_ms = 10;
    c.providers.fallbacks.insert("dummy".into(), vec!["echo".into()]);
}

async fn server(configure: fn(&mut Config)) -> TestServer {
    TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await
}

async fn dummy_health(server: &TestServer) -> Value {
    let (_, status) = server.get("/status").await;
    status["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "dummy").unwrap()["health"].clone()
}

/// An outage is retried (1 + 2 attempts), then the next provider on the route answers.
#[tokio::test]
async fn outages_are_retried_then_fall_back() {
    let server = server(with_fallback).await;
    let (status, body) = server.chat("hi", json!({ "provider": "dummy", "model": "error-500" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "echo (offline demo)");
    assert_eq!(body["model"], "echo", "the fallback answers with its own default model");
    let health = dummy_health(&server).await;
    assert_eq!(health["state"], "failing");
    assert_eq!(health["consecutive_failures"], 3, "{health}");
    assert!(health["last_error"].as_str().unwrap().contains("unavailable"), "{health}");
    server.stop().await;
}

/// Crashing plugins fall back too; faults of the request itself do not.
#[tokio::test]
async fn only_provider_faults_fall_back() {
    let server = server(with_fallback).await;
    let (status, body) = server.chat("hi", json!({ "provider": "dummy", "model": "panic" })).await;
    assert_eq!((status, &body["provider"]), (200, &json!("echo (offline demo)")), "{body}");
    let (status, body) = server.chat("hi", json!({ "provider": "dummy", "model": "error-404" })).await;
    assert_eq!((status, error_code(&body)), (404, "model_not_found"));
    server.stop().await;
}

/// Without a fallback, the last error reaches the client after the retries.
#[tokio::test]
async fn without_fallback_the_error_surfaces_after_retries() {
    let server = server(|c| c.providers.backoff_ms = 10).await;
    let (status, body) = server.chat("hi", json!({ "provider": "dummy", "model": "error-timeout" })).await;
    assert_eq!((status, error_code(&body)), (504, "upstream_timeout"));
    assert_eq!(dummy_health(&server).await["consecutive_failures"], 3);
    // A success resets the record.
    server.chat("hi", json!({ "provider": "dummy", "model": "ok" })).await;
    let health = dummy_health(&server).await;
    assert_eq!((health["state"].as_str(), health["consecutive_failures"].as_u64()), (Some("ok"), Some(0)));
    server.stop().await;
}

/// Retries wait as long as the vendor's Retry-After asks (1.5 s here, twice), unless that would
/// pass the deadline, in which case the error is returned at once.
#[tokio::test]
async fn retry_after_is_honoured_within_the_deadline() {
    let server = server(|_| {}).await;
    let started = Instant::now();
    let (status, _) = server.chat("hi", json!({ "provider": "dummy", "model": "error-429" })).await;
    assert_eq!(status, 429);
    assert!(started.elapsed() >= Duration::from_millis(3000), "waited only {:?}", started.elapsed());
    server.stop().await;

    let server = server_with_deadline().await;
    let started = Instant::now();
    let (status, _) = server.chat("hi", json!({ "provider": "dummy", "model": "error-429" })).await;
    assert_eq!(status, 429);
    assert!(started.elapsed() < Duration::from_millis(1000), "took {:?}", started.elapsed());
    server.stop().await;
}

async fn server_with_deadline() -> TestServer {
    server(|c| c.providers.deadline_ms = 1000).await
}

/// A chat that outlives the overall deadline gets 504 `deadline_exceeded` (the plugin's reply,
/// after 2 s, would be a 200: the status itself shows the deadline cut the call).
#[tokio::test]
async fn the_deadline_bounds_the_whole_chat() {
    let server = server(|c| c.providers.deadline_ms = 300).await;
    let (status, body) = server.chat("hi", json!({ "provider": "dummy", "model": "slow" })).await;
    assert_eq!((status, error_code(&body)), (504, "deadline_exceeded"), "{body}");
    server.stop().await;
}

/// Once a stream has sent a delta it is never retried or handed to a fallback.
#[tokio::test]
async fn started_streams_are_not_retried() {
    let server = server(with_fallback).await;
    let body = json!({ "message": "hi", "provider": "dummy", "model": "stream-drop", "stream": true });
    let text = server.client.post(server.url("/chat")).json(&body).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("event: error") && !text.contains("event: done"), "{text}");
    assert_eq!(dummy_health(&server).await["consecutive_failures"], 1);
    server.stop().await;
}
