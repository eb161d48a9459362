//! The `mistral` plugin against a mock speaking Mistral's chat completions API: the shared
//! OpenAI-family suite in Mistral's dialect (no `stream_options`, usage in the last chunk, an
//! unknown model answered with 400 `invalid_model`), `name` only on tool messages, Magistral's
//! content lists (thinking and text chunks), `finish_reason: "error"`, its 422 validation errors
//! and `/models`.

mod common;

use common::mock::{End, MockServer, Reply};
use common::openai_wire::{Dialect, Failure, Style, completion};
use common::vendor::{self, Vendor, deltas, last};
use serde_json::{Value, json};

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

/// `name` reaches Mistral only on tool messages; on a user message (where Mistral's schema has
/// no `name` and answers 422) it is left out.
#[tokio::test]
async fn name_only_on_tool_messages() {
    let mock = MockServer::start(|_| MISTRAL.completion("Sunny.", (30, 2))).await;
    let server = MISTRAL.vendor.server(&mock).await;
    let call = json!({"id": "D681PevKs", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}});
    let messages = json!([
        {"role": "user", "content": "Weather in Oslo?", "name": "ada"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "D681PevKs", "name": "weather", "content": "sunny"},
    ]);
    let tools = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    let body = json!({ "model": "mistral-small-latest", "messages": messages, "tools": tools });
    let (status, reply) = server.post("/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{reply}");
    let sent = mock.single_request().json();
    let sent: Vec<&Value> = sent["messages"].as_array().unwrap().iter().filter(|m| m["role"] != "system").collect();
    assert_eq!(*sent[0], json!({"role": "user", "content": "Weather in Oslo?"}));
    assert_eq!(sent[2]["name"], "weather", "{sent:?}");
    server.stop().await;
}

/// Magistral's `content` lists: thinking chunks never reach the client as reply text, in a
/// JSON reply or a stream, and text chunks do.
#[tokio::test]
async fn magistral_content_lists() {
    let thinking = json!({"type": "thinking", "thinking": [{"type": "text", "text": "Small primes: 2, 3, 5, 7."}]});
    let mut reply = completion(Style::Mistral, "magistral-small-2509", "", "stop", (12, 40));
    reply["choices"][0]["message"]["content"] = json!([thinking, {"type": "text", "text": "7"}]);
    let mock = MockServer::start(move |_| Reply::json(200, reply.clone())).await;
    let server = MISTRAL.vendor.server(&mock).await;
    let model = json!({ "model": "magistral-small-2509" });
    let (status, body) = MISTRAL.vendor.chat(&server, "a prime?", model.clone()).await;
    assert_eq!(status, 200, "{body}");
    MISTRAL.vendor.assert_reply(&body, "7", "magistral-small-2509", "stop", (12, 40));
    server.stop().await;

    let chunk = |content: Value, finish: Value| {
        json!({"id": "8c1e", "object": "chat.completion.chunk", "created": 1_764_086_400, "model": "magistral-small-2509",
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
    };
    let piece = |text: &str| json!([{"type": "thinking", "thinking": [{"type": "text", "text": text}]}]);
    let mut end = chunk(json!(""), json!("stop"));
    end["usage"] = json!({"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52});
    let events = [
        chunk(json!(""), Value::Null),
        chunk(piece("Small primes: "), Value::Null),
        chunk(piece("2, 3, 5, 7."), Value::Null),
        chunk(json!([{"type": "text", "text": "7"}]), Value::Null),
        end,
    ];
    let lines: Vec<String> = events.iter().map(|e| format!("data: {e}")).chain(["data: [DONE]".to_owned()]).collect();
    let mock = MockServer::start(move |_| Reply::sse(&lines, std::time::Duration::from_millis(5), End::Complete)).await;
    let server = MISTRAL.vendor.server(&mock).await;
    let events = MISTRAL.vendor.chat_stream(&server, "a prime?", model).await;
    assert_eq!(deltas(&events), "7");
    MISTRAL.vendor.assert_reply(last(&events, "done"), "7", "magistral-small-2509", "stop", (12, 40));
    server.stop().await;
}

/// `finish_reason: "error"` fails the call as upstream_unavailable (502), not a reply that
/// merely stopped for an `other` reason.
#[tokio::test]
async fn finish_reason_error_is_a_failure() {
    let reply = completion(Style::Mistral, "mistral-small-latest", "Par", "error", (10, 1));
    let mock = MockServer::start(move |_| Reply::json(200, reply.clone())).await;
    let server = MISTRAL.vendor.server(&mock).await;
    let (status, body) = MISTRAL.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!((status, common::error_code(&body)), (502, "upstream_unavailable"), "{body}");
    server.stop().await;
}
