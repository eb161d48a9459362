//! The `anthropic` plugin against a mock speaking the Messages API: the exact request it sends
//! (headers, system field, turns, options), replies and SSE streams mapped back, and every
//! failure (HTTP errors incl. 529, in-stream `error` events, broken and stalled streams).

mod common;

use common::mock::{End, MockServer, Reply};
use common::vendor::{self, Vendor, deltas, last, typed_sse};
use serde_json::{Value, json};

const ANTHROPIC: Vendor = Vendor {
    id: "anthropic",
    env: |url| vec![("ANTHROPIC_API_KEY", "sk-ant-test-key".into()), ("ANTHROPIC_BASE_URL", url.into())],
};

/// A complete Messages reply with `text`.
fn message(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 5},
        }),
    )
}

/// An Anthropic error body with `status`.
fn error(status: u16, kind: &str, text: &str) -> Reply {
    Reply::json(status, json!({"type": "error", "error": {"type": kind, "message": text}}))
}

/// A streamed Message up to and including the text `deltas`, as Anthropic frames it.
fn stream_start(deltas: &[&str]) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-haiku-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
    ];
    events.extend(
        deltas
            .iter()
            .map(|d| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}})),
    );
    events
}

/// The events that close a streamed Message.
fn stream_end(stop_reason: &str) -> Vec<Value> {
    vec![
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 15}}),
        json!({"type": "message_stop"}),
    ]
}

/// The request carries the key, version and a Messages body mapped from our fields; the reply
/// maps text, usage, stop reason and the vendor's model.
#[tokio::test]
async fn chat_maps_request_and_reply() {
    let mock = MockServer::start(|_| message("Hello there")).await;
    let server = ANTHROPIC.server(&mock).await;
    let extra = json!({ "system": "be terse", "temperature": 0.2, "stop": "END" });
    let (status, body) = ANTHROPIC.chat(&server, "hello", extra).await;
    assert_eq!(status, 200, "{body}");
    ANTHROPIC.assert_reply(&body, "Hello there", "claude-3-5-haiku-20241022", "stop", (12, 5));

    let request = mock.single_request();
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/v1/messages"));
    assert_eq!(request.header("x-api-key"), Some("sk-ant-test-key"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.json(),
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 64000,
            "system": "be terse",
            "messages": [{"role": "user", "content": "hello"}],
            "temperature": 0.2,
            "stop_sequences": ["END"],
        })
    );
    server.stop().await;
}

/// A streamed Message reaches the client as deltas, then `done` with the streamed usage and
/// stop reason; the request asks for a stream with the client's model and max_tokens.
#[tokio::test]
async fn stream_emits_deltas_then_done() {
    let events = [stream_start(&["Hel", "lo", " world"]), stream_end("max_tokens")].concat();
    let mock = MockServer::start(move |_| typed_sse(&events, End::Complete)).await;
    let server = ANTHROPIC.server(&mock).await;
    let extra = json!({ "model": "claude-sonnet-4-0", "max_tokens": 50, "stop": ["a", "b"] });
    let events = ANTHROPIC.chat_stream(&server, "hello", extra).await;
    assert_eq!(deltas(&events), "Hello world");
    let done = last(&events, "done");
    ANTHROPIC.assert_reply(done, "Hello world", "claude-3-5-haiku-20241022", "length", (25, 15));

    let body = mock.single_request().json();
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-0",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hello"}],
            "stop_sequences": ["a", "b"],
            "stream": true,
        })
    );
    server.stop().await;
}

/// HTTP failures map to our codes: 401, 404 model, 429 with Retry-After, 500, 503, 529
/// overloaded (its own code, 503), and a 400 invalid request.
#[tokio::test]
async fn http_errors_map_to_codes() {
    let cases = vec![
        (error(401, "authentication_error", "invalid x-api-key"), 502, "upstream_unauthorized"),
        (error(404, "not_found_error", "model: claude-nope"), 404, "model_not_found"),
        (
            error(429, "rate_limit_error", "Number of requests has exceeded your rate limit")
                .header("retry-after", "7"),
            429,
            "rate_limited",
        ),
        (error(500, "api_error", "Internal server error"), 502, "upstream_unavailable"),
        (error(503, "api_error", "Service unavailable"), 502, "upstream_unavailable"),
        (error(529, "overloaded_error", "Overloaded"), 503, "upstream_overloaded"),
        (error(400, "invalid_request_error", "messages: roles must alternate"), 400, "upstream_bad_request"),
    ];
    vendor::check_errors(&ANTHROPIC, cases, "7").await;
}

/// An `error` event inside a 200 stream (overloaded, rate limit) ends our stream with the
/// matching error, after any text already streamed.
#[tokio::test]
async fn in_stream_error_events_map_to_codes() {
    let overloaded = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let limited = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}});
    let replies = vec![
        typed_sse(&[stream_start(&["Hi"]), vec![overloaded]].concat(), End::Complete),
        typed_sse(&[stream_start(&[]), vec![limited]].concat(), End::Complete),
    ];
    let mock = MockServer::start(vendor::script(replies)).await;
    let server = ANTHROPIC.server(&mock).await;
    for (partial, code) in [("Hi", "upstream_overloaded"), ("", "rate_limited")] {
        let events = ANTHROPIC.chat_stream(&server, "hello", json!({})).await;
        assert_eq!(deltas(&events), partial);
        assert_eq!(common::error_code(last(&events, "error")), code, "{events:?}");
    }
    server.stop().await;
}

/// With the default retry policy a 429 with `Retry-After: 1` is retried once and succeeds.
#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let body =
        vendor::check_retry(&ANTHROPIC, error(429, "rate_limit_error", "slow down"), message("second time")).await;
    assert_eq!(body["reply"], "second time");
}

/// Dropped, truncated (no `message_stop`) and malformed streams end with an error event.
#[tokio::test]
async fn broken_streams_end_with_an_error() {
    let start = stream_start(&["Hel", "lo"]);
    let malformed = r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_del"#;
    vendor::check_broken_streams(
        &ANTHROPIC,
        // The mock breaks the connection right after its last chunk, which may then never be
        // flushed; a trailing ping keeps the last delta from being lost with it.
        typed_sse(&[start.clone(), vec![json!({"type": "ping"})]].concat(), End::Drop),
        typed_sse(&[start.clone(), vec![json!({"type": "content_block_stop", "index": 0})]].concat(), End::Complete),
        vendor::typed_sse_with(&start, Some(malformed), End::Complete),
        "Hello",
    )
    .await;
}

/// A vendor that stalls is cut off at the plugin's time limit.
#[tokio::test]
async fn stalled_vendor_times_out() {
    vendor::check_stalls(
        &ANTHROPIC,
        vendor::stalled("application/json", "{\"id\":\"msg_1\",\"type\":\"message\","),
        typed_sse(&stream_start(&["Hel"]), End::Stall),
        "Hel",
    )
    .await;
}

/// The second turn of a session sends the first as alternating Messages turns, with the
/// system prompt in `system`.
#[tokio::test]
async fn second_turn_sends_history() {
    let request = vendor::second_turn(&ANTHROPIC, message("first answer"), message("second answer")).await;
    let body = request.json();
    assert_eq!(body["system"], "be terse");
    // Everything but the system message, which went to `system`.
    assert_eq!(body["messages"].as_array().unwrap()[..], vendor::history().as_array().unwrap()[1..]);
}

/// Models come from `GET /v1/models` (`data[].id`), asked with the key and version headers.
#[tokio::test]
async fn list_models() {
    let page = json!({
        "data": [
            {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4", "created_at": "2025-05-22T00:00:00Z"},
            {"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5", "created_at": "2024-10-22T00:00:00Z"},
        ],
        "has_more": false, "first_id": "claude-sonnet-4-20250514", "last_id": "claude-3-5-haiku-20241022",
    });
    let (request, models) = vendor::list_models(&ANTHROPIC, Reply::json(200, page)).await;
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/v1/models?limit=1000"));
    assert_eq!(request.header("x-api-key"), Some("sk-ant-test-key"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        models,
        [
            json!({"id": "claude-sonnet-4-20250514", "context_window": null, "supports_embeddings": false}),
            json!({"id": "claude-3-5-haiku-20241022", "context_window": null, "supports_embeddings": false}),
        ]
    );
}

/// Claude 4.5 refuses `temperature` with `top_p`: with both, only `temperature` goes, clamped to
/// Anthropic's 0–1; `top_p` alone goes. Without a client `max_tokens` a known model gets its
/// whole output limit (haiku-4-5 64000, opus-4 32000) and an unknown one the manifest's 8192.
#[tokio::test]
async fn sampling_and_max_tokens_for_current_models() {
    let mock = MockServer::start(|_| message("ok")).await;
    let server = ANTHROPIC.server(&mock).await;
    let cases = [
        (json!({ "temperature": 1.5, "top_p": 0.9 }), json!({"temperature": 1.0, "max_tokens": 64000})),
        (json!({ "top_p": 0.9, "model": "claude-opus-4-1" }), json!({"top_p": 0.9, "max_tokens": 32000})),
        (json!({ "model": "claude-future-9" }), json!({"max_tokens": 8192})),
        (json!({ "model": "claude-opus-4-1", "max_tokens": 100000 }), json!({"max_tokens": 32000})),
    ];
    for (extra, _) in &cases {
        let (status, body) = ANTHROPIC.chat(&server, "hello", extra.clone()).await;
        assert_eq!(status, 200, "{extra}: {body}");
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), cases.len());
    for ((extra, expected), request) in cases.iter().zip(requests) {
        let body = request.json();
        let sent: serde_json::Map<String, Value> = ["temperature", "top_p", "max_tokens"]
            .into_iter()
            .filter_map(|k| body.get(k).map(|v| (k.to_string(), v.clone())))
            .collect();
        assert_eq!(Value::Object(sent), *expected, "{extra}");
    }
    server.stop().await;
}

/// Today's stop reasons, in a JSON reply and in a stream: `refusal` → refusal,
/// `model_context_window_exceeded` → context_window, `pause_turn` → other.
#[tokio::test]
async fn current_stop_reasons_map() {
    let json_reply = |stop_reason: &str| {
        Reply::json(
            200,
            json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": "partial"}],
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {"input_tokens": 12, "output_tokens": 5},
            }),
        )
    };
    let replies = vec![
        json_reply("refusal"),
        json_reply("model_context_window_exceeded"),
        json_reply("pause_turn"),
        typed_sse(&[stream_start(&["I can't"]), stream_end("refusal")].concat(), End::Complete),
        typed_sse(&[stream_start(&["long"]), stream_end("model_context_window_exceeded")].concat(), End::Complete),
    ];
    let mock = MockServer::start(vendor::script(replies)).await;
    let server = ANTHROPIC.server(&mock).await;
    for expected in ["refusal", "context_window", "other"] {
        let (status, body) = ANTHROPIC.chat(&server, "hello", json!({})).await;
        assert_eq!(status, 200, "{body}");
        ANTHROPIC.assert_reply(&body, "partial", "claude-sonnet-4-5-20250929", expected, (12, 5));
    }
    for (text, expected) in [("I can't", "refusal"), ("long", "context_window")] {
        let events = ANTHROPIC.chat_stream(&server, "hello", json!({})).await;
        ANTHROPIC.assert_reply(last(&events, "done"), text, "claude-3-5-haiku-20241022", expected, (25, 15));
    }
    server.stop().await;
}

/// A streamed reply with extended thinking (thinking and signature deltas, a redacted block),
/// a web search (server_tool_use with input deltas, its result block) and prompt caching: the
/// client gets only the answer text, no tool call, a prompt count of input + cache read + cache
/// creation tokens, and the cache read and write counts.
#[tokio::test]
async fn thinking_server_tools_and_cache_in_a_stream() {
    let events = vec![
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Search first."}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"Oslo weather\"}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "title": "Oslo", "url": "https://example.com/oslo", "encrypted_content": "abc", "page_age": null}]}}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "content_block_start", "index": 4, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 4, "delta": {"type": "text_delta", "text": "Sunny"}}),
        json!({"type": "content_block_delta", "index": 4, "delta": {"type": "text_delta", "text": " in Oslo."}}),
        json!({"type": "content_block_stop", "index": 4}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 30, "server_tool_use": {"web_search_requests": 1}}}),
        json!({"type": "message_stop"}),
    ];
    let mock = MockServer::start(move |_| typed_sse(&events, End::Complete)).await;
    let server = ANTHROPIC.server(&mock).await;
    let events = ANTHROPIC.chat_stream(&server, "weather in Oslo?", json!({})).await;
    assert_eq!(deltas(&events), "Sunny in Oslo.");
    let done = last(&events, "done");
    assert_eq!((&done["reply"], &done["finish_reason"]), (&json!("Sunny in Oslo."), &json!("stop")), "{done}");
    assert_eq!(
        done["usage"],
        json!({"prompt_tokens": 2110, "completion_tokens": 30, "total_tokens": 2140,
               "cached_read_tokens": 2000, "cached_write_tokens": 100}),
    );
    assert!(done.get("tool_calls").is_none_or(|calls| calls.as_array().is_some_and(Vec::is_empty)), "{done}");
    assert!(events.iter().all(|(name, _)| name != "tool_call"), "{events:?}");
    server.stop().await;
}

/// Today's errors: 413 `request_too_large` → request_too_large (413); a 400 "prompt is too
/// long" → context_length_exceeded; 529 `overloaded_error` and 503 pass their Retry-After on.
#[tokio::test]
async fn size_context_and_overload_errors() {
    let cases = vec![
        (
            error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
            413,
            "request_too_large",
            None,
        ),
        (
            error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            400,
            "context_length_exceeded",
            None,
        ),
        (
            error(529, "overloaded_error", "Overloaded").header("retry-after", "3"),
            503,
            "upstream_overloaded",
            Some("3"),
        ),
        (
            error(503, "api_error", "Service unavailable").header("retry-after", "4"),
            502,
            "upstream_unavailable",
            Some("4"),
        ),
    ];
    vendor::check_errors_with_retry_after(&ANTHROPIC, cases).await;
}

/// With the default retry policy a 529 overloaded with `Retry-After: 1` is waited out and retried.
#[tokio::test]
async fn overloaded_is_retried_after_retry_after() {
    let body = vendor::check_retry(&ANTHROPIC, error(529, "overloaded_error", "Overloaded"), message("later")).await;
    assert_eq!(body["reply"], "later");
}

/// "Not found" for a model Anthropic retired says so and names the current model to use.
#[tokio::test]
async fn retired_model_names_its_substitute() {
    let mock = MockServer::start(|_| error(404, "not_found_error", "model: claude-3-5-haiku-latest")).await;
    let server = ANTHROPIC.server(&mock).await;
    let (status, body) = ANTHROPIC.chat(&server, "hello", json!({ "model": "claude-3-5-haiku-latest" })).await;
    assert_eq!((status, common::error_code(&body)), (404, "model_not_found"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("claude-3-5-haiku-latest was retired; use claude-haiku-4-5"), "{message}");
    server.stop().await;
}
