//! The compat provider against a mock of the gateway: the exact request it sends (key in
//! `X-Api-Key`, never in `Authorization`; tenant header; OpenAI body), a streamed reply, and how a
//! refused key surfaces.

use std::time::Duration;

use codexcontinue_sdk_testing::FinishReason;
use codexcontinue_sdk_testing::mock::{End, MockServer, Reply};
use codexcontinue_sdk_testing::prelude::*;
use serde_json::json;

/// A host with the plugin, its key set and its base URL on `gateway`, plus `env`.
async fn host(gateway: &MockServer, env: &[(&str, &str)]) -> TestHost {
    let wasm = build_plugin(env!("CARGO_MANIFEST_DIR")).expect("the plugin builds");
    let mut builder = TestHost::builder(&wasm)
        .env("COMPAT_PROVIDER_API_KEY", "sk-compat")
        // An endpoint override allows exactly that origin, and binds the key to it.
        .env("COMPAT_PROVIDER_BASE_URL", format!("{}/v1", gateway.url));
    for (name, value) in env {
        builder = builder.env(*name, *value);
    }
    builder.start().await.expect("the plugin stages")
}

/// A chat is one OpenAI-style POST with the key in `X-Api-Key`, the configured default model
/// and nothing the request did not set; the reply's text, model and usage come back.
#[tokio::test]
async fn chat_sends_the_exact_request() {
    let gateway = MockServer::start(|_| {
        Reply::json(
            200,
            json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "local-model-q4",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
            }),
        )
    })
    .await;
    let host = host(&gateway, &[]).await;
    assert_eq!(host.info().default_model, "local-model");

    let request = ChatRequest {
        temperature: Some(0.5),
        ..ChatRequest::new("local-model", vec![Message::system("Answer with a number."), Message::user("2+2?")])
    };
    let reply = host.chat(request).await.unwrap();
    assert_eq!((reply.content.as_str(), reply.model.as_str()), ("4", "local-model-q4"));
    assert_eq!(reply.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((12, 1)));

    let sent = gateway.single_request();
    assert_eq!((sent.method.as_str(), sent.uri.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(sent.header("x-api-key"), Some("sk-compat"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("x-tenant"), None, "an empty tenant sends no header");
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(
        sent.json(),
        json!({
            "model": "local-model",
            "messages": [
                {"role": "system", "content": "Answer with a number."},
                {"role": "user", "content": "2+2?"}
            ],
            "temperature": 0.5
        })
    );
}

/// A streamed chat asks for server-sent events with usage; deltas reach the client as they
/// arrive and the final reply carries the finish reason and usage. The tenant is a header.
#[tokio::test]
async fn streams_the_reply() {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({"object": "chat.completion.chunk", "model": "local-model",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let events = vec![
        format!("data: {}", chunk(json!({"role": "assistant", "content": ""}), None)),
        format!("data: {}", chunk(json!({"content": "Hel"}), None)),
        format!("data: {}", chunk(json!({"content": "lo!"}), None)),
        format!("data: {}", chunk(json!({}), Some("stop"))),
        format!("data: {}", json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})),
        "data: [DONE]".to_string(),
    ];
    let gateway = MockServer::start(move |_| Reply::sse(&events, Duration::from_millis(5), End::Complete)).await;
    let host = host(&gateway, &[("COMPAT_PROVIDER_TENANT", "team-a")]).await;

    let (events, reply) = host.chat_stream(ChatRequest::user("local-model", "Say hello")).await;
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta(text) if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["Hel", "lo!"]);
    let reply = reply.unwrap();
    assert_eq!((reply.content.as_str(), reply.finish_reason), ("Hello!", FinishReason::Stop));
    assert_eq!(reply.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((5, 2)));

    let sent = gateway.single_request();
    assert_eq!(sent.header("x-tenant"), Some("team-a"));
    assert_eq!(sent.header("accept"), Some("text/event-stream"));
    let body = sent.json();
    assert_eq!((&body["stream"], &body["stream_options"]), (&json!(true), &json!({"include_usage": true})));
}

/// A gateway that refuses the key answers 401, which reaches the host as `unauthorized` (the
/// server then answers 502 `upstream_unauthorized`), and the key never shows in the message.
#[tokio::test]
async fn refused_key_is_unauthorized() {
    let gateway =
        MockServer::start(|_| Reply::json(401, json!({"error": {"message": "invalid X-Api-Key sk-compat"}}))).await;
    let host = host(&gateway, &[]).await;
    let error = host.chat(ChatRequest::user("local-model", "Hi")).await.unwrap_err();
    let Some(ProviderError::Unauthorized(message)) = error.provider_error() else { panic!("{error}") };
    assert!(message.starts_with("HTTP 401") && !message.contains("sk-compat"), "{message}");
}
