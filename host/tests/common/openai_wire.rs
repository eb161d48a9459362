//! The OpenAI Chat Completions wire format as the vendors that speak it really send it (replies
//! and streams in OpenAI's, Azure's and Mistral's styles), and
//! [`openai_wire_suite!`](crate::openai_wire_suite): the tests every OpenAI-family provider plugin
//! must pass, run against one [`Dialect`] on the shared [`vendor`](super::vendor) scaffolding.

use std::time::Duration;

use serde_json::{Value, json};

use super::mock::{End, MockServer, Recorded, Reply};
use super::vendor::{self, Vendor, last, script};
use super::{Setup, TestServer};

/// Gap between streamed chunks: long enough that each delta reaches the client on its own.
const GAP: Duration = Duration::from_millis(10);

/// How a vendor dresses the OpenAI format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// OpenAI: `logprobs`, `refusal` and `system_fingerprint` fields; a separate usage chunk with
    /// empty `choices` before `[DONE]` when asked for with `stream_options`.
    OpenAi,
    /// Azure OpenAI and GitHub Models (served from Azure): content-filter results on every
    /// choice, and a first stream chunk with no choices and no model, only
    /// `prompt_filter_results`.
    Azure,
    /// Mistral: usage inside the last content chunk, beside the finish reason.
    Mistral,
}

/// The failures every vendor can answer with, each in the vendor's own body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Unauthorized,
    UnknownModel,
    /// A 429; the caller adds `Retry-After`.
    RateLimited,
    ServerError,
    Overloaded,
}

/// One vendor's dialect of the OpenAI wire format, as its plugin must speak it.
pub struct Dialect {
    /// The plugin and the environment pointing it at the mock.
    pub vendor: Vendor,
    /// The key that environment holds.
    pub key: &'static str,
    /// The model used when a request names none.
    pub default_model: &'static str,
    /// The model the vendor says answered (vendors resolve aliases).
    pub answering_model: &'static str,
    /// Path and query of a chat call for a model.
    pub chat_path: fn(&str) -> String,
    /// Whether the request body names the model.
    pub model_in_body: bool,
    /// Whether streamed requests ask for usage with `stream_options`.
    pub stream_usage: bool,
    /// Headers every call carries, the injected key among them.
    pub headers: &'static [(&'static str, &'static str)],
    /// The `accept` header of a streamed call.
    pub stream_accept: &'static str,
    pub style: Style,
    /// The vendor's reply to a failure for a request naming `model`.
    pub failure: fn(Failure, &str) -> Reply,
}

impl Dialect {
    /// A chat completion reply of `content` in the vendor's style.
    pub fn completion(&self, content: &str, usage: (u32, u32)) -> Reply {
        Reply::json(200, completion(self.style, self.answering_model, content, "stop", usage))
    }

    /// The `data:` events of a streamed reply of `deltas`; an incomplete one stops after the
    /// deltas, before the finish, the usage and `[DONE]`.
    pub fn events(&self, deltas: &[&str], usage: (u32, u32), complete: bool) -> Vec<String> {
        let mut events = stream_events(self.style, self.answering_model, deltas, usage);
        if !complete {
            events.truncate(events.iter().position(|e| e.contains("\"finish_reason\":\"stop\"")).unwrap());
        }
        events
    }

    /// A streamed reply of `deltas` ending as `end`; only a `Complete` one is complete. A
    /// dropped one breaks off in the middle of the next chunk, as a reset connection does.
    pub fn stream(&self, deltas: &[&str], usage: (u32, u32), end: End) -> Reply {
        let mut reply = Reply::sse(&self.events(deltas, usage, end == End::Complete), GAP, end);
        if let (End::Drop, Reply::Stream { chunks, .. }) = (end, &mut reply) {
            // The mock breaks the connection right after its last chunk, and may not flush that
            // chunk first: so the last one is a fragment whose loss changes nothing.
            chunks.push((GAP, b"data: {\"id\":\"chatcmpl-AbC123\",\"obj".to_vec()));
        }
        reply
    }

    /// The vendor's reply to `failure` for a request naming `model`.
    pub fn fail(&self, failure: Failure, model: &str) -> Reply {
        (self.failure)(failure, model)
    }

    /// Asserts `request` is a chat call for `model` carrying every required header.
    pub fn assert_chat_call(&self, request: &Recorded, model: &str) {
        assert_eq!((request.method.as_str(), request.uri.clone()), ("POST", (self.chat_path)(model)));
        for (name, value) in self.headers {
            assert_eq!(request.header(name), Some(*value), "header {name}");
        }
        assert_eq!(request.header("content-type"), Some("application/json"));
        // The key travels in its header only, never in the URL or the body.
        assert!(!request.uri.contains(self.key) && !String::from_utf8_lossy(&request.body).contains(self.key));
    }

    /// `body`, naming `model` if the vendor wants it in the body.
    pub fn body(&self, model: &str, mut body: Value) -> Value {
        if self.model_in_body {
            body["model"] = json!(model);
        }
        body
    }
}

/// Content-filter results as Azure attaches them to prompts and choices.
fn filter_results() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

fn usage_json((prompt, completion): (u32, u32)) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// A non-streamed chat completion as `style` sends it.
pub fn completion(style: Style, model: &str, content: &str, finish_reason: &str, usage: (u32, u32)) -> Value {
    let mut choice =
        json!({"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason});
    let mut body = json!({"id": "chatcmpl-AbC123", "object": "chat.completion", "created": 1_764_086_400,
                          "model": model, "usage": usage_json(usage)});
    match style {
        Style::OpenAi => {
            choice["logprobs"] = Value::Null;
            choice["message"]["refusal"] = Value::Null;
            body["system_fingerprint"] = json!("fp_0ba0d124f1");
        }
        Style::Azure => {
            choice["content_filter_results"] = filter_results();
            body["prompt_filter_results"] = json!([{"prompt_index": 0, "content_filter_results": filter_results()}]);
        }
        Style::Mistral => choice["message"]["tool_calls"] = Value::Null,
    }
    body["choices"] = json!([choice]);
    body
}

/// The `data:` events of a streamed completion of `deltas`, `data: [DONE]` last.
pub fn stream_events(style: Style, model: &str, deltas: &[&str], usage: (u32, u32)) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        match style {
            Style::OpenAi => choice["logprobs"] = Value::Null,
            Style::Azure => choice["content_filter_results"] = filter_results(),
            Style::Mistral => {}
        }
        json!({"id": "chatcmpl-AbC123", "object": "chat.completion.chunk", "created": 1_764_086_400,
               "model": model, "choices": [choice]})
    };
    let mut events = Vec::new();
    if style == Style::Azure {
        events.push(json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filter_results()}]}));
    }
    events.push(chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    events.extend(deltas.iter().map(|d| chunk(json!({"content": d}), Value::Null)));
    let mut last = chunk(json!({"content": ""}), json!("stop"));
    if style == Style::Mistral {
        last["usage"] = usage_json(usage);
        events.push(last);
    } else {
        events.push(last);
        let mut usage_chunk = chunk(json!({}), Value::Null);
        usage_chunk["choices"] = json!([]);
        usage_chunk["usage"] = usage_json(usage);
        events.push(usage_chunk);
    }
    events.iter().map(|e| format!("data: {e}")).chain(["data: [DONE]".to_owned()]).collect()
}

/// Expands to the tests every OpenAI-family provider must pass, for the [`Dialect`] given.
#[macro_export]
macro_rules! openai_wire_suite {
    ($dialect:expr) => {
        /// A two-turn chat maps system, user and assistant turns and every option onto the
        /// vendor's request, and the vendor's reply onto `/chat`'s.
        #[tokio::test]
        async fn chat_maps_request_and_reply() {
            $crate::common::openai_wire::chat_maps_request_and_reply(&$dialect).await;
        }

        /// A streamed chat forwards each vendor delta as it comes and ends with `done`.
        #[tokio::test]
        async fn stream_forwards_deltas_then_done() {
            $crate::common::openai_wire::stream_forwards_deltas_then_done(&$dialect).await;
        }

        /// The vendor's 401, unknown model, 429, 500 and 503 map to our statuses and codes.
        #[tokio::test]
        async fn vendor_errors_map_to_http() {
            $crate::common::openai_wire::vendor_errors_map_to_http(&$dialect).await;
        }

        /// A 429 with Retry-After: 1 then a 200 is a 200, after exactly two calls.
        #[tokio::test]
        async fn rate_limit_is_retried() {
            $crate::common::openai_wire::rate_limit_is_retried(&$dialect).await;
        }

        /// Dropped, truncated and malformed streams end with an `error` event after their deltas.
        #[tokio::test]
        async fn broken_streams_end_with_error() {
            $crate::common::openai_wire::broken_streams_end_with_error(&$dialect).await;
        }

        /// A vendor that stalls is cut off at the plugin's timeout, plain or streamed.
        #[tokio::test]
        async fn stalls_hit_the_plugin_timeout() {
            $crate::common::openai_wire::stalls_hit_the_plugin_timeout(&$dialect).await;
        }
    };
}

/// One plain chat through the plugin started with the dialect's environment plus `extra`
/// (where `{url}` stands for the mock's URL); returns the request the vendor saw.
pub async fn chat_under(d: &Dialect, extra: &[(&'static str, &str)]) -> Recorded {
    let mock = MockServer::start(script(vec![d.completion("ok", (1, 1))])).await;
    let extra = extra.iter().map(|(name, value)| (*name, value.replace("{url}", &mock.url)));
    // Later entries win, so `extra` may also replace one of the dialect's variables.
    let env = (d.vendor.env)(&mock.url).into_iter().chain(extra).collect();
    let setup = Setup {
        plugins: vec![d.vendor.id],
        env,
        configure: |c| c.providers.retries = 0,
        background_memory: false,
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let (status, body) = d.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
    mock.single_request()
}

pub async fn chat_maps_request_and_reply(d: &Dialect) {
    let mock = MockServer::start(script(vec![
        d.completion("Rust is a systems programming language.", (21, 9)),
        d.completion("Rust 1.0 shipped in May 2015.", (40, 11)),
    ]))
    .await;
    let server = d.vendor.server(&mock).await;
    let options = json!({"system": "Answer in one sentence.", "temperature": 0.2, "top_p": 0.9, "max_tokens": 64,
                         "stop": ["END", "\n\n"]});
    let (status, first) = d.vendor.chat(&server, "What is Rust?", options).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["reply"], "Rust is a systems programming language.");
    assert_eq!(first["provider"], d.vendor.id);
    assert_eq!(first["model"], d.answering_model);
    assert_eq!(first["finish_reason"], "stop");
    assert_eq!(first["usage"], json!({"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}));

    let second_turn = json!({"session_id": first["session_id"], "model": "other-model", "stop": "END"});
    let (status, second) = d.vendor.chat(&server, "When was it released?", second_turn).await;
    assert_eq!((status, &second["reply"]), (200, &json!("Rust 1.0 shipped in May 2015.")), "{second}");
    assert_eq!(second["usage"], json!({"prompt_tokens": 40, "completion_tokens": 11, "total_tokens": 51}));

    let calls = mock.requests();
    assert_eq!(calls.len(), 2, "{calls:?}");
    d.assert_chat_call(&calls[0], d.default_model);
    let vendor_accept = d.headers.iter().find(|(name, _)| *name == "accept").map(|(_, value)| *value);
    assert_eq!(calls[0].header("accept"), Some(vendor_accept.unwrap_or("application/json")));
    let first_body = json!({
        "messages": [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is Rust?"},
        ],
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["END", "\n\n"],
    });
    assert_eq!(calls[0].json(), d.body(d.default_model, first_body));
    d.assert_chat_call(&calls[1], "other-model");
    let second_body = json!({
        "messages": [
            {"role": "user", "content": "What is Rust?"},
            {"role": "assistant", "content": "Rust is a systems programming language."},
            {"role": "user", "content": "When was it released?"},
        ],
        "stop": ["END"],
    });
    assert_eq!(calls[1].json(), d.body("other-model", second_body));
    server.stop().await;
}

pub async fn stream_forwards_deltas_then_done(d: &Dialect) {
    let mock = MockServer::start(script(vec![d.stream(&["One", ", two", ", three."], (12, 5), End::Complete)])).await;
    let server = d.vendor.server(&mock).await;
    let events = d.vendor.chat_stream(&server, "Count to three", json!({})).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["start", "delta", "delta", "delta", "done"], "{events:?}");
    let pieces: Vec<&str> = events[1..4].iter().map(|(_, data)| data["content"].as_str().unwrap()).collect();
    assert_eq!(pieces, ["One", ", two", ", three."]);
    let done = last(&events, "done");
    assert_eq!(done["reply"], "One, two, three.");
    assert_eq!((&done["model"], &done["finish_reason"]), (&json!(d.answering_model), &json!("stop")));
    assert_eq!(done["usage"], json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}));

    let call = mock.single_request();
    d.assert_chat_call(&call, d.default_model);
    assert_eq!(call.header("accept"), Some(d.stream_accept));
    let mut expected =
        d.body(d.default_model, json!({"messages": [{"role": "user", "content": "Count to three"}], "stream": true}));
    if d.stream_usage {
        expected["stream_options"] = json!({"include_usage": true});
    }
    assert_eq!(call.json(), expected);
    server.stop().await;
}

pub async fn vendor_errors_map_to_http(d: &Dialect) {
    let model = d.default_model;
    let cases = vec![
        (d.fail(Failure::Unauthorized, model), 502, "upstream_unauthorized"),
        (d.fail(Failure::UnknownModel, model), 404, "model_not_found"),
        (d.fail(Failure::RateLimited, model).header("retry-after", "7"), 429, "rate_limited"),
        (d.fail(Failure::ServerError, model), 502, "upstream_unavailable"),
        (d.fail(Failure::Overloaded, model), 502, "upstream_unavailable"),
    ];
    vendor::check_errors(&d.vendor, cases, "7").await;
}

pub async fn rate_limit_is_retried(d: &Dialect) {
    let rate_limited = d.fail(Failure::RateLimited, d.default_model);
    let body = vendor::check_retry(&d.vendor, rate_limited, d.completion("Made it.", (3, 2))).await;
    assert_eq!(body["reply"], "Made it.");
}

pub async fn broken_streams_end_with_error(d: &Dialect) {
    let dropped = d.stream(&["One", ", two"], (12, 5), End::Drop);
    // Well framed to the end, but without the finish and `[DONE]`.
    let truncated = Reply::sse(&d.events(&["One", ", two"], (12, 5), false), GAP, End::Complete);
    let mut events = d.events(&["One", ", two", ", three."], (12, 5), true);
    let cut = events.iter().position(|e| e.contains(", three.")).unwrap();
    let half = events[cut].len() / 2;
    events[cut].truncate(half);
    let malformed = Reply::sse(&events, GAP, End::Complete);
    vendor::check_broken_streams(&d.vendor, dropped, truncated, malformed, "One, two").await;
}

pub async fn stalls_hit_the_plugin_timeout(d: &Dialect) {
    let stalled_json =
        vendor::stalled("application/json", "{\"id\": \"chatcmpl-AbC123\", \"object\": \"chat.completion\",");
    let stalled_stream = d.stream(&["One"], (12, 5), End::Stall);
    vendor::check_stalls(&d.vendor, stalled_json, stalled_stream, "One").await;
}
