//! The `mistral` plugin against a mock speaking Mistral's chat completions API: the shared
//! OpenAI-family suite in Mistral's dialect (no `stream_options`, usage in the last chunk, an
//! unknown model answered with 400 `invalid_model`), its 422 validation errors and `/models`.

mod common;

use common::mock::{MockServer, Reply};
use common::openai_wire::{Dialect, Failure, Style};
use common::vendor::{self, Vendor};
use serde_json::json;

const MISTRAL: Dialect = Dialect {
    vendor: Vendor {
        id: "mistral",
        env: |url| {
            vec![("MISTRAL_API_KEY", "mistral-test-key-0123456789".into()), ("MISTRAL_BASE_URL", format!("{url}/v1"))]
        },
    },
    key: "mistral-test-key-0123456789",
    default_model: "mistral-small-latest",
    answering_model: "mistral-small-latest",
    chat_path: |_| "/v1/chat/completions".into(),
    model_in_body: true,
    stream_usage: false,
    headers: &[("authorization", "Bearer mistral-test-key-0123456789")],
    stream_accept: "text/event-stream",
    style: Style::Mistral,
    failure,
};

/// Mistral's error replies: its own `{"object": "error", ...}` bodies, a bare 401 and the
/// gateway's plain-text 503.
fn failure(failure: Failure, model: &str) -> Reply {
    let error = |status, message: String, kind: &str, code: &str| {
        Reply::json(status, json!({"object": "error", "message": message, "type": kind, "param": null, "code": code}))
    };
    match failure {
        Failure::Unauthorized => {
            Reply::json(401, json!({"message": "Unauthorized", "request_id": "c61f2f15feca71626a990e3740f99245"}))
        }
        Failure::UnknownModel => error(400, format!("Invalid model: {model}"), "invalid_model", "1500"),
        Failure::RateLimited => error(429, "Requests rate limit exceeded".into(), "rate_limited", "1300"),
        Failure::ServerError => error(500, "Internal server error".into(), "internal_server_error", "1000"),
        Failure::Overloaded => Reply::Full {
            status: 503,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"upstream connect error or disconnect/reset before headers. reset reason: overflow".to_vec(),
        },
    }
}

openai_wire_suite!(MISTRAL);

/// Mistral's 422 for a field it does not accept is 400 `upstream_bad_request`, and its 400 for
/// an unknown model names the model in our 404.
#[tokio::test]
async fn validation_and_model_errors() {
    let extra_forbidden = json!({"object": "error", "message": {"detail": [{"type": "extra_forbidden",
        "loc": ["body", "frequency_penalty"], "msg": "Extra inputs are not permitted", "input": 0.0}]},
        "type": "invalid_request_error", "param": null, "code": null});
    let mock = MockServer::start(vendor::script(vec![
        Reply::json(422, extra_forbidden),
        failure(Failure::UnknownModel, "mistral-huge-latest"),
    ]))
    .await;
    let server = MISTRAL.vendor.server(&mock).await;
    let (status, body) = MISTRAL.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!((status, common::error_code(&body)), (400, "upstream_bad_request"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("extra_forbidden"), "{body}");
    let (status, body) = MISTRAL.vendor.chat(&server, "hi", json!({"model": "mistral-huge-latest"})).await;
    assert_eq!((status, common::error_code(&body)), (404, "model_not_found"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Invalid model: mistral-huge-latest"), "{body}");
    assert_eq!(mock.requests()[1].json()["model"], "mistral-huge-latest");
    server.stop().await;
}

/// `/v1/models` lists Mistral's models with their context windows.
#[tokio::test]
async fn models_come_from_the_vendor() {
    let list = json!({"object": "list", "data": [
        {"id": "mistral-small-latest", "object": "model", "created": 1_748_000_000, "owned_by": "mistralai",
         "capabilities": {"completion_chat": true, "completion_fim": false, "function_calling": true,
                          "fine_tuning": false, "vision": true, "classification": false},
         "name": "mistral-small-2503", "max_context_length": 131_072, "aliases": [], "deprecation": null,
         "default_model_temperature": 0.3, "type": "base"},
        {"id": "mistral-embed", "object": "model", "created": 1_748_000_000, "owned_by": "mistralai",
         "capabilities": {"completion_chat": false, "function_calling": false}, "max_context_length": 8192, "type": "base"},
    ]});
    let mock = MockServer::start(move |_| Reply::json(200, list.clone())).await;
    let server = MISTRAL.vendor.server(&mock).await;
    let (status, models) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{models}");
    let listed: Vec<(&str, u64)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["context_window"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, [("mistral-small-latest", 131_072), ("mistral-embed", 8192)]);
    assert_eq!(mock.requests()[0].uri, "/v1/models");
    server.stop().await;
}
