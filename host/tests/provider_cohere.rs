//! The `cohere` plugin against a mock speaking the v2 Chat API: the exact request it sends
//! (bearer key, roles, `p` within 0.01–0.99, at most 5 `stop_sequences`), replies and SSE
//! streams (`message-start` … `message-end`, thinking content) mapped back, and every failure
//! (HTTP errors with Retry-After, 413, "too many tokens", broken and stalled streams).

mod common;

use common::mock::{End, MockServer, Reply};
use common::vendor::{self, Vendor, deltas, last, typed_sse};
use serde_json::{Value, json};

const COHERE: Vendor =
    Vendor { id: "cohere", env: |url| vec![("CO_API_KEY", "co-test-key".into()), ("CO_API_URL", url.into())] };

/// A complete v2 Chat reply with `text`.
fn reply(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
            "usage": {
                "billed_units": {"input_tokens": 5, "output_tokens": 3},
                "tokens": {"input_tokens": 71, "output_tokens": 3},
            },
        }),
    )
}

/// A Cohere error body with `status`.
fn error(status: u16, text: &str) -> Reply {
    Reply::json(status, json!({"id": "5f3c5a0e-1f0e-4ab4-a8f4-3c2b2d8a0c11", "message": text}))
}

/// A streamed v2 reply up to and including the text `deltas`, as Cohere frames it.
fn stream_start(deltas: &[&str]) -> Vec<Value> {
    let mut events = vec![
        json!({"id": "29f14a5a-11de-4cae-9800-25e4747408ea", "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
    ];
    events.extend(
        deltas
            .iter()
            .map(|d| json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": d}}}})),
    );
    events
}

/// The events that close a streamed reply.
fn stream_end(finish_reason: &str) -> Vec<Value> {
    vec![
        json!({"type": "content-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": finish_reason, "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 9}, "tokens": {"input_tokens": 69, "output_tokens": 9}}}}),
    ]
}

/// The request carries the bearer key and a v2 body with a system message and Cohere's option
/// names; the reply maps text, `usage.tokens` and the finish reason, and names the model asked for.
#[tokio::test]
async fn chat_maps_request_and_reply() {
    let mock = MockServer::start(|_| reply("Hello there")).await;
    let server = COHERE.server(&mock).await;
    let extra = json!({ "system": "be terse", "temperature": 0.3, "top_p": 0.75, "max_tokens": 100, "stop": ["END"] });
    let (status, body) = COHERE.chat(&server, "hello", extra).await;
    assert_eq!(status, 200, "{body}");
    COHERE.assert_reply(&body, "Hello there", "command-a-03-2025", "stop", (71, 3));

    let request = mock.single_request();
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/v2/chat"));
    assert_eq!(request.header("authorization"), Some("Bearer co-test-key"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "model": "command-a-03-2025",
            "messages": [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello"}],
            "stream": false,
            "temperature": 0.3,
            "p": 0.75,
            "max_tokens": 100,
            "stop_sequences": ["END"],
        })
    );
    server.stop().await;
}

/// A streamed reply reaches the client as deltas, then `done` with the usage and finish
/// reason of `message-end`; unknown event types are skipped.
#[tokio::test]
async fn stream_emits_deltas_then_done() {
    let unknown = json!({"type": "debug", "delta": {"anything": true}});
    let events = [stream_start(&["Hel", "lo"]), vec![unknown], stream_end("MAX_TOKENS")].concat();
    let mock = MockServer::start(move |_| typed_sse(&events, End::Complete)).await;
    let server = COHERE.server(&mock).await;
    let events = COHERE.chat_stream(&server, "hello", json!({ "model": "command-a-03-2025" })).await;
    assert_eq!(deltas(&events), "Hello");
    let done = last(&events, "done");
    COHERE.assert_reply(done, "Hello", "command-a-03-2025", "length", (69, 9));
    assert_eq!(
        mock.single_request().json(),
        json!({
            "model": "command-a-03-2025",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": true,
        })
    );
    server.stop().await;
}

/// HTTP failures map to our codes: 401, 404 model, 429 with Retry-After, 500, 503 and a 400.
#[tokio::test]
async fn http_errors_map_to_codes() {
    let not_found = "model 'command-nope' not found, make sure the correct model ID was used and that you have access to the model.";
    let cases = vec![
        (error(401, "invalid api token"), 502, "upstream_unauthorized"),
        (error(404, not_found), 404, "model_not_found"),
        (
            error(429, "You are using a Trial key, which is limited to 10 API calls / minute.")
                .header("retry-after", "4"),
            429,
            "rate_limited",
        ),
        (error(500, "internal server error, this has been reported to our developers"), 502, "upstream_unavailable"),
        (error(503, "service unavailable"), 502, "upstream_unavailable"),
        (
            error(400, "invalid request: message must be at least 1 token long or tool results must be specified."),
            400,
            "upstream_bad_request",
        ),
    ];
    vendor::check_errors(&COHERE, cases, "4").await;
}

/// A stream whose `message-end` reports `ERROR` fails after the text already streamed.
#[tokio::test]
async fn stream_finishing_in_error_fails() {
    let end = json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal error"}});
    let events = [stream_start(&["Hi"]), vec![end]].concat();
    let mock = MockServer::start(move |_| typed_sse(&events, End::Complete)).await;
    let server = COHERE.server(&mock).await;
    let events = COHERE.chat_stream(&server, "hello", json!({})).await;
    assert_eq!(deltas(&events), "Hi");
    assert_eq!(common::error_code(last(&events, "error")), "upstream_unavailable", "{events:?}");
    server.stop().await;
}

/// With the default retry policy a 429 with `Retry-After: 1` is retried once and succeeds.
#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let body = vendor::check_retry(&COHERE, error(429, "too many requests"), reply("second time")).await;
    assert_eq!(body["reply"], "second time");
}

/// Dropped, truncated (no `message-end`) and malformed streams end with an error event.
#[tokio::test]
async fn broken_streams_end_with_an_error() {
    let start = stream_start(&["Hel", "lo"]);
    let malformed = r#"event: content-delta
data: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":42}}}}"#;
    // The mock breaks the connection right after its last chunk, which may then never be
    // flushed; a trailing `content-end` keeps the last delta from being lost with it.
    let dropped = [start.clone(), vec![json!({"type": "content-end", "index": 0})]].concat();
    vendor::check_broken_streams(
        &COHERE,
        typed_sse(&dropped, End::Drop),
        typed_sse(&dropped, End::Complete),
        vendor::typed_sse_with(&start, Some(malformed), End::Complete),
        "Hello",
    )
    .await;
}

/// A vendor that stalls is cut off at the plugin's time limit.
#[tokio::test]
async fn stalled_vendor_times_out() {
    vendor::check_stalls(
        &COHERE,
        vendor::stalled("application/json", "{\"id\":\"c14c80c3\",\"finish_reason\":"),
        typed_sse(&stream_start(&["Hel"]), End::Stall),
        "Hel",
    )
    .await;
}

/// The second turn of a session sends the system prompt and the first turn as v2 messages.
#[tokio::test]
async fn second_turn_sends_history() {
    let request = vendor::second_turn(&COHERE, reply("first answer"), reply("second answer")).await;
    assert_eq!(request.json()["messages"], vendor::history());
}

/// Models come from `GET /v1/models`, keeping those that serve chat or embed.
#[tokio::test]
async fn list_models() {
    let page = json!({
        "models": [
            {"name": "command-r-plus-08-2024", "endpoints": ["generate", "chat", "summarize"], "finetuned": false, "context_length": 128000, "tokenizer_url": "https://storage.googleapis.com/cohere-public/tokenizers/command-r-plus-08-2024.json", "default_endpoints": []},
            {"name": "embed-english-v3.0", "endpoints": ["embed"], "finetuned": false, "context_length": 512, "default_endpoints": ["embed"]},
            {"name": "rerank-v3.5", "endpoints": ["rerank"], "finetuned": false, "context_length": 4096, "default_endpoints": []},
        ],
        "next_page_token": null,
    });
    let (request, models) = vendor::list_models(&COHERE, Reply::json(200, page)).await;
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/v1/models?page_size=1000"));
    assert_eq!(request.header("authorization"), Some("Bearer co-test-key"));
    assert_eq!(
        models,
        [
            json!({"id": "command-r-plus-08-2024", "context_window": 128000, "supports_embeddings": false}),
            json!({"id": "embed-english-v3.0", "context_window": 512, "supports_embeddings": true}),
        ]
    );
}

/// Cohere's limits are applied before sending: `top_p` 1.0 goes out as `p` 0.99 and only the
/// first 5 of 7 stop sequences are sent (Cohere answers 400 to either otherwise).
#[tokio::test]
async fn p_and_stop_sequences_within_cohere_limits() {
    let mock = MockServer::start(|_| reply("ok")).await;
    let server = COHERE.server(&mock).await;
    let stops: Vec<String> = (1..=7).map(|n| format!("S{n}")).collect();
    let (status, body) = COHERE.chat(&server, "hello", json!({ "top_p": 1.0, "stop": stops })).await;
    assert_eq!(status, 200, "{body}");
    let sent = mock.single_request().json();
    assert_eq!((&sent["p"], &sent["stop_sequences"]), (&json!(0.99), &json!(["S1", "S2", "S3", "S4", "S5"])));
    server.stop().await;
}

/// Command A Reasoning's thinking (`content-start` of type thinking, `content-delta` with
/// `content.thinking`) never reaches the client as reply text, streamed or not.
#[tokio::test]
async fn thinking_is_not_reply_text() {
    let events = vec![
        json!({"id": "7d1c", "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "Small primes: 2, 3, 5, 7."}}}}),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "content-start", "index": 1, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        json!({"type": "content-delta", "index": 1, "delta": {"message": {"content": {"text": "7"}}}}),
        json!({"type": "content-end", "index": 1}),
        json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": 4, "output_tokens": 30}, "tokens": {"input_tokens": 70, "output_tokens": 30}}}}),
    ];
    let mock = MockServer::start(move |_| typed_sse(&events, End::Complete)).await;
    let server = COHERE.server(&mock).await;
    let model = json!({ "model": "command-a-reasoning-08-2025" });
    let events = COHERE.chat_stream(&server, "a prime?", model.clone()).await;
    assert_eq!(deltas(&events), "7");
    COHERE.assert_reply(last(&events, "done"), "7", "command-a-reasoning-08-2025", "stop", (70, 30));
    server.stop().await;

    let json_reply = Reply::json(
        200,
        json!({
            "id": "7d1d", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Small primes: 2, 3, 5, 7."},
                {"type": "text", "text": "7"},
            ]},
            "usage": {"billed_units": {"input_tokens": 4, "output_tokens": 30}, "tokens": {"input_tokens": 70, "output_tokens": 30}},
        }),
    );
    let mock = MockServer::start(move |_| json_reply.clone()).await;
    let server = COHERE.server(&mock).await;
    let (status, body) = COHERE.chat(&server, "a prime?", model).await;
    assert_eq!(status, 200, "{body}");
    COHERE.assert_reply(&body, "7", "command-a-reasoning-08-2025", "stop", (70, 30));
    server.stop().await;
}

/// 413 → request_too_large; a 400 "too many tokens" → context_length_exceeded; 429 and 503
/// pass their Retry-After on to the client.
#[tokio::test]
async fn size_context_and_retry_after_errors() {
    let cases = vec![
        (error(413, "request entity too large"), 413, "request_too_large", None),
        (
            error(400, "too many tokens: size limit exceeded by 1200 tokens. Try using shorter or fewer inputs."),
            400,
            "context_length_exceeded",
            None,
        ),
        (
            error(429, "You are past the per-minute request limit.").header("retry-after", "3"),
            429,
            "rate_limited",
            Some("3"),
        ),
        (error(503, "service unavailable").header("retry-after", "4"), 502, "upstream_unavailable", Some("4")),
    ];
    vendor::check_errors_with_retry_after(&COHERE, cases).await;
}
