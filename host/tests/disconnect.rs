//! A client that goes away mid-stream takes the whole call with it: the plugin call is dropped
//! and its upstream request is closed, so nobody keeps paying for tokens nobody reads.

mod common;

use std::time::{Duration, Instant};

use common::mock::{End, MockServer, Reply};
use common::{Setup, TestServer};
use serde_json::json;

fn chunk(i: usize) -> String {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-3.5-turbo",
        "choices": [{ "index": 0, "delta": { "content": format!("word{i} ") }, "finish_reason": null }],
    });
    format!("data: {body}")
}

/// Dropping the SSE response after the first delta cancels the vendor's stream.
#[tokio::test]
async fn disconnecting_cancels_the_upstream_request() {
    let events: Vec<String> = (0..100).map(chunk).collect();
    let vendor = MockServer::start(move |_| Reply::sse(&events, Duration::from_millis(50), End::Complete)).await;
    let env = vec![("OPENAI_API_KEY", "sk-test".to_string()), ("OPENAI_BASE_URL", format!("{}/v1", vendor.url))];
    let server =
        TestServer::start(Setup { plugins: vec!["openai"], env, background_memory: false, ..Setup::default() }).await;

    let mut response = server
        .client
        .post(server.url("/chat"))
        .json(&json!({ "message": "talk a lot", "stream": true }))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let chunk = response.chunk().await.unwrap().expect("the stream ended before any delta");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);

    let started = Instant::now();
    while vendor.abandoned() == 0 {
        assert!(started.elapsed() < Duration::from_secs(3), "the upstream stream was not cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(vendor.requests().len(), 1);
    // The turn was never completed, so nothing was stored.
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"], json!([]));
    server.stop().await;
}
