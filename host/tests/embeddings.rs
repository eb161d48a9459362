//! Embeddings go through the path chats take, whoever asks for them: memory's background
//! indexing waits out a 429 and a 503 as long as the vendor says, a provider without embeddings
//! is asked once and then left alone until its plugin changes, and `/v1/embeddings` passes
//! `dimensions` on. The openai plugin runs against a mock speaking OpenAI's API.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mock::{MockServer, Recorded, Reply};
use common::openai_wire::{self, Style};
use common::{Setup, TestServer, error_code, plugin_with};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key-0123456789abcdef";

async fn server(mock: &MockServer) -> TestServer {
    let setup = Setup {
        plugins: Vec::new(),
        custom: vec![plugin_with("openai", |m| m)],
        env: vec![("OPENAI_API_KEY", KEY.into()), ("OPENAI_BASE_URL", format!("{}/v1", mock.url))],
        ..Setup::default()
    };
    TestServer::start(setup).await
}

fn completion(text: &str) -> Reply {
    Reply::json(200, openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", text, "stop", (9, 1)))
}

/// OpenAI's embeddings reply: one vector per input.
fn vectors(request: &Recorded) -> Reply {
    let inputs = request.json()["input"].as_array().map_or(1, Vec::len);
    let data: Vec<Value> =
        (0..inputs).map(|i| json!({"object": "embedding", "index": i, "embedding": [0.5, i as f32, -1.0]})).collect();
    Reply::json(
        200,
        json!({"object": "list", "model": "text-embedding-3-small", "data": data,
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}),
    )
}

fn transient(status: u16, kind: &str) -> Reply {
    Reply::json(status, json!({"error": {"message": "try again later", "type": kind, "code": null}}))
        .header("retry-after", "1")
}

fn embeddings_requests(mock: &MockServer) -> Vec<Recorded> {
    mock.requests().into_iter().filter(|r| r.uri.ends_with("/embeddings")).collect()
}

/// One turn (in `session`, or a new one), then waits until the server has finished the
/// background work it started (embeddings, summary): `GET /memory` says so. Returns the session
/// and what `GET /memory` showed.
async fn turn_and_settle(server: &TestServer, session: Option<&str>, message: &str) -> (String, Value) {
    let (status, body) = server.chat(message, json!({ "session_id": session })).await;
    assert_eq!(status, 200, "{body}");
    let session = body["session_id"].as_str().unwrap().to_string();
    for _ in 0..400 {
        let (_, memory) = server.get(&format!("/memory/{session}")).await;
        if memory["index"]["updating"] == false {
            return (session, memory);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the background work for {session} never finished");
}

/// A 429 and then a 503, each asking for a second: the background embedding of a turn retries
/// after each as long as asked, then stores the vectors.
#[tokio::test]
async fn background_embeddings_wait_out_429_and_503() {
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let times = seen.clone();
    let mock = MockServer::start(move |request| {
        if !request.uri.ends_with("/embeddings") {
            return completion("ok");
        }
        let mut times = times.lock().unwrap();
        times.push(Instant::now());
        match times.len() {
            1 => transient(429, "rate_limit_exceeded"),
            2 => transient(503, "server_error"),
            _ => vectors(request),
        }
    })
    .await;
    let server = server(&mock).await;
    let (_, memory) = turn_and_settle(&server, None, "We deploy with Helm.").await;
    assert_eq!(memory["index"]["embedded_messages"], 2, "{memory}");
    assert_eq!(memory["index"]["embedding_model"], "text-embedding-3-small");

    let times = seen.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "one try and two retries");
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_secs(1), "retried after {:?}, asked for 1 s", pair[1] - pair[0]);
    }
    server.stop().await;
}

/// A vendor answering 404 for the provider's embedding model is asked once; later turns and
/// client calls for that model get the reason without a request, while a client naming another
/// model is still served.
#[tokio::test]
async fn a_provider_without_embeddings_is_asked_once() {
    let mock = MockServer::start(|request| {
        if !request.uri.ends_with("/embeddings") {
            return completion("ok");
        }
        if request.json()["model"] == "text-embedding-3-small" {
            let error = json!({"error": {"message": "The model `text-embedding-3-small` does not exist",
                "type": "invalid_request_error", "code": "model_not_found"}});
            return Reply::json(404, error);
        }
        vectors(request)
    })
    .await;
    let server = server(&mock).await;
    let (session, _) = turn_and_settle(&server, None, "first").await;
    for message in ["second", "third"] {
        let (_, memory) = turn_and_settle(&server, Some(&session), message).await;
        assert_eq!(memory["index"]["embedded_messages"], 0, "{memory}");
    }
    assert_eq!(embeddings_requests(&mock).len(), 1, "asked once, then remembered");

    let (status, body) = server.post("/v1/embeddings", json!({"input": "x"})).await;
    assert_eq!((status, error_code(&body)), (400, "unsupported"), "{body}");
    assert!(body.to_string().contains("not asked again"), "{body}");
    assert_eq!(embeddings_requests(&mock).len(), 1);

    let (status, body) = server.post("/v1/embeddings", json!({"model": "text-embedding-3-large", "input": "x"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(embeddings_requests(&mock).len(), 2);
    server.stop().await;
}

/// `dimensions` reaches the vendor; zero is refused before any request.
#[tokio::test]
async fn dimensions_reach_the_vendor() {
    let mock = MockServer::start(vectors).await;
    let server = server(&mock).await;
    let body = json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 256});
    let (status, out) = server.post("/v1/embeddings", body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    let sent = embeddings_requests(&mock).pop().unwrap().json();
    assert_eq!((sent["dimensions"].as_u64(), &sent["input"]), (Some(256), &json!(["a", "b"])), "{sent}");

    let (status, out) = server.post("/v1/embeddings", json!({"input": "a", "dimensions": 0})).await;
    assert_eq!((status, error_code(&out)), (422, "invalid_parameter"), "{out}");
    assert_eq!(embeddings_requests(&mock).len(), 1);
    server.stop().await;
}

/// Cohere's models embed a search query differently from what it should find: memory indexes
/// stored messages as `search_document`, and `/v1/embeddings` with `input_type: "query"` asks
/// for `search_query`.
#[tokio::test]
async fn input_types_reach_cohere() {
    let mock = MockServer::start(|request| {
        if request.uri != "/v2/embed" {
            let message = json!({"role": "assistant", "content": [{"type": "text", "text": "noted"}]});
            return Reply::json(
                200,
                json!({"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "finish_reason": "COMPLETE", "message": message,
                    "usage": {"tokens": {"input_tokens": 7, "output_tokens": 1}}}),
            );
        }
        let texts = request.json()["texts"].clone();
        let floats = vec![vec![0.25f32, 0.5]; texts.as_array().map_or(0, Vec::len)];
        Reply::json(
            200,
            json!({"id": "8d1ab4a6-8c9e-4f56-a1c1-0cbf3c3a7a52", "embeddings": {"float": floats}, "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 3}},
                "response_type": "embeddings_by_type"}),
        )
    })
    .await;
    let setup = Setup {
        plugins: Vec::new(),
        custom: vec![plugin_with("cohere", |m| m)],
        env: vec![("CO_API_KEY", "co-test-key".into()), ("CO_API_URL", mock.url.clone())],
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let (_, memory) = turn_and_settle(&server, None, "Our runbooks live in the wiki.").await;
    assert_eq!(memory["index"]["embedded_messages"], 2, "{memory}");
    let stored = embeddings_request_bodies(&mock, "/v2/embed");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["input_type"], "search_document", "{}", stored[0]);

    let (status, out) =
        server.post("/v1/embeddings", json!({"input": "where are the runbooks?", "input_type": "query"})).await;
    assert_eq!(status, 200, "{out}");
    let asked = embeddings_request_bodies(&mock, "/v2/embed").pop().unwrap();
    assert_eq!((&asked["input_type"], &asked["texts"]), (&json!("search_query"), &json!(["where are the runbooks?"])));
    server.stop().await;
}

fn embeddings_request_bodies(mock: &MockServer, path: &str) -> Vec<Value> {
    mock.requests().into_iter().filter(|r| r.uri == path).map(|r| r.json()).collect()
}
