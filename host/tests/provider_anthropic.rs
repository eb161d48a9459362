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
    let extra = json!({ "system": "be terse", "temperature": 0.2, "top_p": 0.9, "stop": "END" });
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
            "max_tokens": 1024,
            "system": "be terse",
            "messages": [{"role": "user", "content": "hello"}],
            "temperature": 0.2,
            "top_p": 0.9,
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
