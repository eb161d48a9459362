//! A deleted session stays deleted, also for work that was already running: a chat waiting on
//! its vendor when the session is deleted stores nothing and does not bring the session back.
//! (Background summaries and embeddings are covered by the memory manager's unit tests and the
//! store conformance suite.)

mod common;

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use common::mock::{MockServer, Reply};
use common::openai_wire::{self, Style};
use common::{Setup, TestServer, error_code, plugin_with, response};
use serde_json::json;

/// The chat whose message is "hold on" reaches the vendor, which answers only once the test
/// lets it (the handler blocks in place, hence the multi-threaded runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_in_flight_does_not_bring_its_deleted_session_back() {
    let (arrived, arrivals) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let gate = Mutex::new((arrived, released));
    let mock = MockServer::start(move |request| {
        if request.json()["messages"].to_string().contains("hold on") {
            // Hands this worker's other tasks to another thread while the reply waits.
            tokio::task::block_in_place(|| {
                let gate = gate.lock().unwrap();
                gate.0.send(()).unwrap();
                gate.1.recv_timeout(Duration::from_secs(60)).unwrap();
            });
        }
        Reply::json(200, openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", "late reply", "stop", (9, 2)))
    })
    .await;
    let setup = Setup {
        plugins: Vec::new(),
        custom: vec![plugin_with("openai", |m| m)],
        env: vec![("OPENAI_API_KEY", "sk-test".into()), ("OPENAI_BASE_URL", format!("{}/v1", mock.url))],
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let (status, first) = server.chat("the launch code is 0000", json!({})).await;
    assert_eq!(status, 200, "{first}");
    let session = first["session_id"].as_str().unwrap().to_string();

    let held = server.client.post(server.url("/chat")).json(&json!({ "message": "hold on", "session_id": session }));
    let pending = tokio::spawn(async move { response(held.send().await.unwrap()).await });
    tokio::task::spawn_blocking(move || arrivals.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the second chat reached the vendor");
    let (status, _) = server.delete(&format!("/memory/{session}")).await;
    assert_eq!(status, 204);
    release.send(()).unwrap();

    let (status, body) = pending.await.unwrap();
    assert_eq!((status, error_code(&body)), (404, "session_not_found"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("nothing was stored"), "{body}");
    let (status, _) = server.get(&format!("/memory/{session}")).await;
    assert_eq!(status, 404, "the session stays deleted");
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"], json!([]), "{sessions}");
    server.stop().await;
}
