//! The `ollama` plugin against a mock speaking Ollama's `/api/chat`: the exact request it sends
//! (no key, options block), JSON replies and NDJSON streams mapped back, every failure
//! (HTTP errors, broken and stalled streams), and `OLLAMA_HOST` widening the allow-list.

mod common;

use std::time::Duration;

use common::mock::{End, MockServer, Reply};
use common::vendor::{self, Vendor, deltas, last};
use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

const OLLAMA: Vendor = Vendor { id: "ollama", env: |url| vec![("OLLAMA_HOST", url.into())] };

/// A complete `/api/chat` reply with `text`.
fn reply(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "model": "llama3.2", "created_at": "2024-12-12T14:13:43.416799Z",
            "message": {"role": "assistant", "content": text},
            "done": true, "done_reason": "stop",
            "total_duration": 5191566416_u64, "load_duration": 2154458, "prompt_eval_count": 26,
            "prompt_eval_duration": 383809000, "eval_count": 298, "eval_duration": 4799921000_u64,
        }),
    )
}

/// An Ollama error body with `status`.
fn error(status: u16, text: &str) -> Reply {
    Reply::json(status, json!({ "error": text }))
}

/// Streamed lines carrying the text `deltas`, as Ollama writes them.
fn stream_lines(model: &str, deltas: &[&str]) -> Vec<String> {
    deltas
        .iter()
        .map(|d| {
            json!({"model": model, "created_at": "2024-12-12T14:13:43Z", "message": {"role": "assistant", "content": d}, "done": false})
                .to_string()
        })
        .collect()
}

/// The last line of a streamed reply, with the counts.
fn done_line(model: &str, done_reason: &str) -> String {
    json!({
        "model": model, "created_at": "2024-12-12T14:13:44Z", "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": done_reason, "total_duration": 4883583458_u64, "load_duration": 1334875,
        "prompt_eval_count": 26, "prompt_eval_duration": 342546000, "eval_count": 282, "eval_duration": 4535599000_u64,
    })
    .to_string()
}

/// An NDJSON stream of `lines`, 5 ms apart.
fn ndjson(lines: Vec<String>, end: End) -> Reply {
    let lines = lines.into_iter().map(|l| format!("{l}\n")).collect();
    Reply::stream("application/x-ndjson", lines, Duration::from_millis(5), end)
}

/// The request carries no key and an `/api/chat` body with options under `options`; the reply
/// maps content, the eval counts, `done_reason` and the model.
#[tokio::test]
async fn chat_maps_request_and_reply() {
    let mock = MockServer::start(|_| reply("Hello there")).await;
    let server = OLLAMA.server(&mock).await;
    let extra = json!({ "system": "be terse", "temperature": 0.7, "top_p": 0.5, "max_tokens": 64, "stop": "User:" });
    let (status, body) = OLLAMA.chat(&server, "hello", extra).await;
    assert_eq!(status, 200, "{body}");
    OLLAMA.assert_reply(&body, "Hello there", "llama3.2", "stop", (26, 298));

    let request = mock.single_request();
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/api/chat"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "model": "llama3.2",
            "messages": [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello"}],
            "stream": false,
            "options": {"temperature": 0.7, "top_p": 0.5, "num_predict": 64, "stop": ["User:"], "num_ctx": 4096},
        })
    );
    server.stop().await;
}

/// An NDJSON stream reaches the client as deltas, then `done` with the counts of the last line.
#[tokio::test]
async fn stream_emits_deltas_then_done() {
    let lines = [stream_lines("qwen2.5:0.5b", &["The", " sky", " is blue"]), vec![done_line("qwen2.5:0.5b", "length")]];
    let lines = lines.concat();
    let mock = MockServer::start(move |_| ndjson(lines.clone(), End::Complete)).await;
    let server = OLLAMA.server(&mock).await;
    let events = OLLAMA.chat_stream(&server, "hello", json!({ "model": "qwen2.5:0.5b" })).await;
    assert_eq!(deltas(&events), "The sky is blue");
    let done = last(&events, "done");
    OLLAMA.assert_reply(done, "The sky is blue", "qwen2.5:0.5b", "length", (26, 282));
    assert_eq!(
        mock.single_request().json(),
        json!({"model": "qwen2.5:0.5b", "messages": [{"role": "user", "content": "hello"}], "stream": true,
               "options": {"num_ctx": 4096}})
    );
    server.stop().await;
}

/// HTTP failures map to our codes: 401 (from a proxy), 404 model, 429 with Retry-After, 500,
/// 503 and a 400.
#[tokio::test]
async fn http_errors_map_to_codes() {
    let cases = vec![
        (error(401, "unauthorized"), 502, "upstream_unauthorized"),
        (error(404, "model \"llama9\" not found, try pulling it first"), 404, "model_not_found"),
        (error(429, "too many requests").header("retry-after", "2"), 429, "rate_limited"),
        (error(500, "llama runner process has terminated: signal: killed"), 502, "upstream_unavailable"),
        (error(503, "server busy, please try again.  maximum pending requests exceeded"), 502, "upstream_unavailable"),
        (error(400, "invalid options: num_predict"), 400, "upstream_bad_request"),
    ];
    vendor::check_errors(&OLLAMA, cases, "2").await;
}

/// An `error` line in a 200 stream ends our stream with an error after the text already sent.
#[tokio::test]
async fn error_line_ends_the_stream() {
    let mut lines = stream_lines("llama3.2", &["Hi"]);
    lines.push(json!({"error": "an error was encountered while running the model: unexpected EOF"}).to_string());
    let mock = MockServer::start(move |_| ndjson(lines.clone(), End::Complete)).await;
    let server = OLLAMA.server(&mock).await;
    let events = OLLAMA.chat_stream(&server, "hello", json!({})).await;
    assert_eq!(deltas(&events), "Hi");
    assert_eq!(error_code(last(&events, "error")), "upstream_unavailable", "{events:?}");
    server.stop().await;
}

/// With the default retry policy a 429 with `Retry-After: 1` is retried once and succeeds.
#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let body = vendor::check_retry(&OLLAMA, error(429, "too many requests"), reply("second time")).await;
    assert_eq!(body["reply"], "second time");
}

/// Dropped, truncated (no `done: true`) and malformed streams end with an error event.
#[tokio::test]
async fn broken_streams_end_with_an_error() {
    let partial = stream_lines("llama3.2", &["Hel", "lo"]);
    // The mock breaks the connection right after its last chunk, which may then never be
    // flushed; a trailing blank line (skipped by NDJSON readers) keeps the last delta.
    let dropped = [partial.clone(), vec![String::new()]].concat();
    let malformed =
        [partial.clone(), vec![r#"{"model":"llama3.2","message":{"role":"assistant","content":"#.to_string()]];
    vendor::check_broken_streams(
        &OLLAMA,
        ndjson(dropped, End::Drop),
        ndjson(partial, End::Complete),
        ndjson(malformed.concat(), End::Complete),
        "Hello",
    )
    .await;
}

/// A vendor that stalls is cut off at the plugin's time limit.
#[tokio::test]
async fn stalled_vendor_times_out() {
    vendor::check_stalls(
        &OLLAMA,
        vendor::stalled("application/json", "{\"model\":\"llama3.2\","),
        ndjson(stream_lines("llama3.2", &["Hel"]), End::Stall),
        "Hel",
    )
    .await;
}

/// The second turn of a session sends the system prompt and the first turn as messages.
#[tokio::test]
async fn second_turn_sends_history() {
    let request = vendor::second_turn(&OLLAMA, reply("first answer"), reply("second answer")).await;
    assert_eq!(request.json()["messages"], vendor::history());
}

/// `OLLAMA_HOST` in Ollama's bare `host:port` form is read as `http://host:port` by the plugin,
/// and the host allows that origin as it does for a full URL.
#[tokio::test]
async fn ollama_host_without_scheme() {
    let mock = MockServer::start(|_| reply("Hello there")).await;
    let bare = mock.url.trim_start_matches("http://").to_string();
    let env = vec![("OLLAMA_HOST", bare)];
    let server =
        TestServer::start(Setup { plugins: vec!["ollama"], env, background_memory: false, ..Setup::default() }).await;
    let (status, body) = OLLAMA.chat(&server, "hello", json!({})).await;
    assert_eq!((status, &body["reply"]), (200, &Value::from("Hello there")), "{body}");
    assert_eq!(mock.single_request().uri, "/api/chat");
    server.stop().await;
}

/// Models come from `GET /api/tags`, each with its context window from `POST /api/show`; the
/// configured embedding model (or one Ollama calls `embedding`) is marked as embedding, and a
/// model whose details fail is still listed.
#[tokio::test]
async fn list_models() {
    let details = json!({"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "3.2B", "quantization_level": "Q4_K_M"});
    let tags = json!({"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2024-12-10T10:00:00.000Z", "size": 2019393189_u64, "digest": "a80c4f17acd5", "details": details},
        {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest", "modified_at": "2024-12-09T10:00:00.000Z", "size": 274302450, "digest": "0a109f422b47", "details": details},
        {"name": "broken:latest", "model": "broken:latest", "modified_at": "2024-12-08T10:00:00.000Z", "size": 1, "digest": "00", "details": details},
    ]});
    let mock = MockServer::start(move |request| match request.uri.as_str() {
        "/api/tags" => Reply::json(200, tags.clone()),
        _ => match request.json()["model"].as_str() {
            Some("llama3.2:latest") => Reply::json(200, json!({
                "details": details, "capabilities": ["completion", "tools"],
                "model_info": {"general.architecture": "llama", "llama.context_length": 131072, "llama.embedding_length": 3072},
            })),
            Some("nomic-embed-text:latest") => Reply::json(200, json!({
                "capabilities": ["embedding"], "model_info": {"general.architecture": "nomic-bert", "nomic-bert.context_length": 2048},
            })),
            _ => Reply::json(500, json!({"error": "unable to load model"})),
        },
    })
    .await;
    let server = OLLAMA.server(&mock).await;
    let (status, body) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{body}");
    let models: Vec<Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["owned_by"] == "ollama")
        .map(|m| {
            let id = m["id"].as_str().unwrap().trim_start_matches("ollama/");
            json!({"id": id, "context_window": m["context_window"], "supports_embeddings": m["supports_embeddings"]})
        })
        .collect();
    assert_eq!(
        models,
        [
            json!({"id": "llama3.2:latest", "context_window": 131072, "supports_embeddings": false}),
            json!({"id": "nomic-embed-text:latest", "context_window": 2048, "supports_embeddings": true}),
            json!({"id": "broken:latest", "context_window": null, "supports_embeddings": false}),
        ]
    );
    let uris: Vec<String> = mock.requests().iter().map(|r| format!("{} {}", r.method, r.uri)).collect();
    assert_eq!(uris, ["GET /api/tags", "POST /api/show", "POST /api/show", "POST /api/show"]);
    server.stop().await;
}

/// A prompt longer than Ollama's 4096-token default gets a `num_ctx` that holds it and the
/// reply (a multiple of 2048), so Ollama does not silently cut the start of the prompt.
#[tokio::test]
async fn num_ctx_holds_a_long_prompt() {
    let mock = MockServer::start(|_| reply("ok")).await;
    let server = OLLAMA.server(&mock).await;
    // 48 000 bytes of prose: about 12 000 tokens, three times Ollama's default window.
    let long = "The audit log moved to Postgres in March. ".repeat(1143);
    let (status, body) = OLLAMA.chat(&server, &long, json!({ "max_tokens": 1000 })).await;
    assert_eq!(status, 200, "{body}");
    let num_ctx = mock.single_request().json()["options"]["num_ctx"].as_u64().unwrap();
    assert_eq!(num_ctx % 2048, 0, "{num_ctx}");
    assert!((16_000 + 1000..=24_576).contains(&num_ctx), "{num_ctx}");
    server.stop().await;
}

/// Tool calls keep Ollama's ids (or get `call_<n>` when it sends none) and tool results go back
/// with `tool_name`, the name of the call they answer.
#[tokio::test]
async fn tool_calls_keep_ids_and_results_name_their_tool() {
    let calls = Reply::json(
        200,
        json!({
            "model": "qwen3:8b", "created_at": "2026-11-30T10:00:00Z",
            "message": {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_k2x9f1", "function": {"index": 0, "name": "weather", "arguments": {"city": "Oslo"}}},
                {"function": {"index": 1, "name": "clock", "arguments": {}}},
            ]},
            "done": true, "done_reason": "stop", "prompt_eval_count": 80, "eval_count": 30,
        }),
    );
    let mock = MockServer::start(vendor::script(vec![calls, reply("Sunny, noon.")])).await;
    let server = OLLAMA.server(&mock).await;
    let tools = json!([
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}},
    ]);
    let user = json!({"role": "user", "content": "Weather and time in Oslo?"});
    let body = json!({ "model": "ollama/qwen3:8b", "messages": [user], "tools": tools });
    let (status, first) = server.post("/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{first}");
    let message = &first["choices"][0]["message"];
    let ids: Vec<&str> = message["tool_calls"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["call_k2x9f1", "call_1"], "{first}");

    let messages = json!([
        user,
        {"role": "assistant", "content": null, "tool_calls": message["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_k2x9f1", "content": "sunny"},
    ]);
    let (status, second) = server
        .post("/v1/chat/completions", json!({ "model": "ollama/qwen3:8b", "messages": messages, "tools": tools }))
        .await;
    assert_eq!(status, 200, "{second}");
    let sent = mock.requests()[1].json();
    let sent: Vec<&Value> = sent["messages"].as_array().unwrap().iter().filter(|m| m["role"] != "system").collect();
    assert_eq!(sent[1]["tool_calls"][0]["id"], "call_k2x9f1", "{sent:?}");
    assert_eq!(sent[1]["tool_calls"][1]["id"], "call_1", "{sent:?}");
    assert_eq!(*sent[2], json!({"role": "tool", "content": "12:00", "tool_name": "clock"}));
    assert_eq!(*sent[3], json!({"role": "tool", "content": "sunny", "tool_name": "weather"}));
    server.stop().await;
}

/// A thinking model's `message.thinking` never reaches the client as reply text, streamed or not.
#[tokio::test]
async fn thinking_is_not_reply_text() {
    let thinking = |text: &str| {
        json!({"model": "qwen3:8b", "created_at": "2026-11-30T10:00:00Z", "message": {"role": "assistant", "content": "", "thinking": text}, "done": false})
            .to_string()
    };
    let lines = [
        vec![thinking("Seven "), thinking("is prime.")],
        stream_lines("qwen3:8b", &["7"]),
        vec![done_line("qwen3:8b", "stop")],
    ];
    let lines = lines.concat();
    let mock = MockServer::start(move |_| ndjson(lines.clone(), End::Complete)).await;
    let server = OLLAMA.server(&mock).await;
    let events = OLLAMA.chat_stream(&server, "a prime?", json!({ "model": "qwen3:8b" })).await;
    assert_eq!(deltas(&events), "7");
    OLLAMA.assert_reply(last(&events, "done"), "7", "qwen3:8b", "stop", (26, 282));
    server.stop().await;

    let complete = Reply::json(
        200,
        json!({"model": "qwen3:8b", "created_at": "2026-11-30T10:00:00Z",
               "message": {"role": "assistant", "content": "7", "thinking": "Seven is prime."},
               "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 298}),
    );
    let mock = MockServer::start(move |_| complete.clone()).await;
    let server = OLLAMA.server(&mock).await;
    let (status, body) = OLLAMA.chat(&server, "a prime?", json!({ "model": "qwen3:8b" })).await;
    assert_eq!(status, 200, "{body}");
    OLLAMA.assert_reply(&body, "7", "qwen3:8b", "stop", (26, 298));
    server.stop().await;
}
