//! Anthropic's Messages API (`/v1/messages`), as Claude Code and the Anthropic SDKs call it.

mod common;

use common::{Setup, TestServer};
use serde_json::{Value, json};

async fn server() -> TestServer {
    let configure = |c: &mut codexcontinue::config::Config| c.providers.retries = 0;
    TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await
}

async fn post(server: &TestServer, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.client.post(server.url(path)).json(&body).header("anthropic-version", "2023-06-01");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    common::response(request.send().await.unwrap()).await
}

/// The server-sent events of a streamed reply, as (event name, data).
async fn events(server: &TestServer, body: Value, headers: &[(&str, &str)]) -> Vec<(String, Value)> {
    let mut request = server.client.post(server.url("/v1/messages?beta=true")).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            out.push((std::mem::take(&mut name), serde_json::from_str(data).unwrap()));
        }
    }
    out
}

/// A reply is a `message` with text content, a stop reason and usage.
#[tokio::test]
async fn a_message_has_anthropics_shape() {
    let server = server().await;
    let body = json!({ "model": "echo", "max_tokens": 1024, "system": [{ "type": "text", "text": "be kind" }],
        "messages": [{ "role": "user", "content": "hello there" }] });
    let (status, reply) = post(&server, "/v1/messages", body, &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!((reply["type"].as_str(), reply["role"].as_str()), (Some("message"), Some("assistant")));
    assert!(reply["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(reply["content"][0]["type"], "text");
    assert!(reply["content"][0]["text"].as_str().unwrap().contains("hello there"), "{reply}");
    assert_eq!(reply["stop_reason"], "end_turn");
    assert!(reply["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(reply["usage"]["output_tokens"].as_u64().unwrap() > 0);
    server.stop().await;
}

/// Streaming follows Anthropic's event sequence exactly.
#[tokio::test]
async fn streaming_follows_the_event_sequence() {
    let server = server().await;
    let body = json!({ "model": "echo", "max_tokens": 100, "stream": true,
        "messages": [{ "role": "user", "content": [{ "type": "text", "text": "count these words" }] }] });
    let events = events(&server, body, &[]).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"], "{names:?}");
    assert_eq!(names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"], "{names:?}");
    assert!(names[3..names.len() - 3].iter().all(|n| *n == "content_block_delta"), "{names:?}");
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "each event's data names its type");
    }
    assert_eq!(events[0].1["message"]["role"], "assistant");
    let text: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
    assert!(text.contains("count these words"), "{text}");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    server.stop().await;
}

/// Tool uses and results translate into the conversation the provider sees: the result follows
/// the call, and thinking stays out of the text (it travels as the reply's reasoning).
#[tokio::test]
async fn tool_turns_reach_the_provider_in_order() {
    let server = server().await;
    let body = json!({ "model": "dummy/prompt", "max_tokens": 100,
        "tools": [{ "name": "weather", "description": "Weather", "input_schema": { "type": "object" } }],
        "messages": [
            { "role": "user", "content": "weather in Oslo?" },
            { "role": "assistant", "content": [
                { "type": "thinking", "thinking": "call the tool", "signature": "sig" },
                { "type": "tool_use", "id": "toolu_1", "name": "weather", "input": { "city": "Oslo" } }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny" }] },
        ] });
    let (status, reply) = post(&server, "/v1/messages", body, &[]).await;
    assert_eq!(status, 200, "{reply}");
    let prompt = reply["content"][0]["text"].as_str().unwrap();
    let lines: Vec<&str> = prompt.lines().collect();
    assert_eq!(lines.first(), Some(&"user: weather in oslo?"), "{prompt}");
    assert_eq!(lines.last(), Some(&"tool: sunny"), "{prompt}");
    assert!(!prompt.contains("call the tool"), "thinking is not mixed into the text: {prompt}");
    server.stop().await;
}

/// Errors come in Anthropic's shape with the right status.
#[tokio::test]
async fn errors_have_anthropics_shape() {
    let server = server().await;
    let r = server.client.post(server.url("/v1/messages")).body("{}").send().await.unwrap();
    let (status, body) = common::response(r).await;
    assert_eq!(status, 415);
    assert_eq!((body["type"].as_str(), body["error"]["type"].as_str()), (Some("error"), Some("invalid_request_error")));

    let (status, body) = post(&server, "/v1/messages", json!({ "model": "echo", "messages": "nope" }), &[]).await;
    assert_eq!((status, body["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{body}");

    let body = json!({ "model": "echo", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let (status, reply) = post(&server, "/v1/messages", body, &[("x-provider", "nope")]).await;
    assert_eq!((status, reply["error"]["type"].as_str()), (404, Some("not_found_error")), "{reply}");

    let body =
        json!({ "model": "dummy/error-429", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let (status, reply) = post(&server, "/v1/messages", body, &[]).await;
    assert_eq!((status, reply["error"]["type"].as_str()), (429, Some("rate_limit_error")), "{reply}");
    server.stop().await;
}

/// Claude Code's session header gives it memory: each turn it sends (with its whole history)
/// is stored once in that session.
#[tokio::test]
async fn claude_code_sessions_are_remembered() {
    let server = server().await;
    let session = [("x-claude-code-session-id", "cc-session-1")];
    let first = json!({ "model": "echo", "max_tokens": 100, "stream": true,
        "messages": [{ "role": "user", "content": "remember the llama" }] });
    let events = events(&server, first, &session).await;
    let reply: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
    let second = json!({ "model": "echo", "max_tokens": 100,
        "messages": [{ "role": "user", "content": "remember the llama" },
                     { "role": "assistant", "content": reply },
                     { "role": "user", "content": "what animal?" }] });
    let (status, _) = post(&server, "/v1/messages", second, &session).await;
    assert_eq!(status, 200);
    let (status, history) = server.get("/memory/cc-session-1").await;
    assert_eq!(status, 200, "{history}");
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), 4, "{contents:?}");
    assert_eq!((contents[0], contents[2]), ("remember the llama", "what animal?"));
    server.stop().await;
}

/// `count_tokens` counts the request's input, more for more text.
#[tokio::test]
async fn count_tokens_counts_the_input() {
    let server = server().await;
    let count = async |text: &str| {
        let body = json!({ "model": "echo", "messages": [{ "role": "user", "content": text }] });
        let (status, reply) = post(&server, "/v1/messages/count_tokens", body, &[]).await;
        assert_eq!(status, 200, "{reply}");
        reply["input_tokens"].as_u64().unwrap()
    };
    let short = count("hello").await;
    let long = count(&"hello world ".repeat(50)).await;
    assert!(short > 0 && long > short * 10, "{short} {long}");
    server.stop().await;
}

/// A reasoning reply puts its thinking first: a signed `thinking` block, then the encrypted-only
/// block as `redacted_thinking`, then the text; streamed, the thinking deltas come first and
/// the signature closes their block before the next block starts, indices in order.
#[tokio::test]
async fn thinking_comes_first_with_its_signature() {
    let server = server().await;
    let body =
        json!({ "model": "dummy/think", "max_tokens": 100, "messages": [{ "role": "user", "content": "why?" }] });
    let (status, reply) = post(&server, "/v1/messages", body.clone(), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["content"],
        json!([
            { "type": "thinking", "thinking": "Thinking hard.", "signature": "sig-dummy-1" },
            { "type": "redacted_thinking", "data": "enc-dummy-2" },
            { "type": "text", "text": "thought" },
        ])
    );

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let events = events(&server, streamed, &[]).await;
    let blocks: Vec<(&str, u64, String)> = events
        .iter()
        .filter(|(name, _)| name.starts_with("content_block"))
        .map(|(name, d)| {
            let what = match name.as_str() {
                "content_block_start" => d["content_block"]["type"].as_str().unwrap().to_string(),
                "content_block_delta" => d["delta"]["type"].as_str().unwrap().to_string(),
                _ => "stop".to_string(),
            };
            (name.as_str(), d["index"].as_u64().unwrap(), what)
        })
        .collect();
    let expected = [
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, "stop"),
        ("content_block_start", 1, "redacted_thinking"),
        ("content_block_stop", 1, "stop"),
        ("content_block_start", 2, "text"),
        ("content_block_delta", 2, "text_delta"),
        ("content_block_stop", 2, "stop"),
    ];
    let got: Vec<(&str, u64, &str)> = blocks.iter().map(|(n, i, w)| (*n, *i, w.as_str())).collect();
    assert_eq!(got, expected);
    let thinking: String = events.iter().filter_map(|(_, d)| d["delta"]["thinking"].as_str()).collect();
    assert_eq!(thinking, "Thinking hard.");
    let signature = events.iter().find_map(|(_, d)| d["delta"]["signature"].as_str());
    assert_eq!(signature, Some("sig-dummy-1"));
    let redacted = events.iter().find(|(_, d)| d["content_block"]["type"] == "redacted_thinking").unwrap();
    assert_eq!(redacted.1["content_block"]["data"], "enc-dummy-2");
    server.stop().await;
}

/// A client's own thinking blocks reach the provider as reasoning, signatures and redacted data
/// unchanged, so Claude Code's history replays intact.
#[tokio::test]
async fn client_thinking_replays_with_its_signature() {
    let server = server().await;
    let body = json!({ "model": "dummy/think", "max_tokens": 100, "messages": [
        { "role": "user", "content": "why?" },
        { "role": "assistant", "content": [
            { "type": "thinking", "thinking": "hmm", "signature": "sig-client" },
            { "type": "redacted_thinking", "data": "enc-client" },
            { "type": "text", "text": "because" }] },
        { "role": "user", "content": "and then?" },
    ] });
    let (status, reply) = post(&server, "/v1/messages", body, &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["content"][2]["text"], "thought; replayed sig-client enc-client");
    server.stop().await;
}

/// Image blocks (base64 or URL) reach the provider in order with the text; a media type no
/// vendor takes, or bad base64, is refused in Anthropic's error shape.
#[tokio::test]
async fn images_reach_the_provider() {
    let server = server().await;
    let image = |source: Value| {
        json!({ "model": "dummy/parts", "max_tokens": 100, "messages": [{ "role": "user",
        "content": [{ "type": "text", "text": "look" }, { "type": "image", "source": source }, { "type": "text", "text": "ok?" }] }] })
    };
    let png = json!({ "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo=" });
    let (status, reply) = post(&server, "/v1/messages", image(png), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["content"][0]["text"], "text look\nbase64 image/png 12\ntext ok?");
    let url = json!({ "type": "url", "url": "https://example.com/cat.jpg" });
    let (_, reply) = post(&server, "/v1/messages", image(url), &[]).await;
    assert_eq!(reply["content"][0]["text"], "text look\nurl https://example.com/cat.jpg\ntext ok?");
    for source in [
        json!({ "type": "base64", "media_type": "image/tiff", "data": "AAAA" }),
        json!({ "type": "base64", "media_type": "image/png", "data": "not base64!" }),
        json!({ "type": "file", "file_id": "file_1" }),
    ] {
        let (status, reply) = post(&server, "/v1/messages", image(source.clone()), &[]).await;
        assert_eq!(
            (status, reply["error"]["type"].as_str()),
            (400, Some("invalid_request_error")),
            "{source}: {reply}"
        );
    }
    server.stop().await;
}
