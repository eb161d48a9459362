//! Scaffolding for the vendor provider tests (`provider_*.rs`): our server with one provider
//! plugin pointed at a [`MockServer`], scripted vendor replies, our `/chat` event stream read
//! back, and the checks every vendor shares (error mapping, retry, broken and stalled streams).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::mock::{End, MockServer, Recorded, Reply};
use super::{Setup, TestServer, error_code, plugin_with};

/// One provider plugin under test.
pub struct Vendor {
    /// The plugin id, e.g. `anthropic`.
    pub id: &'static str,
    /// The environment pointing the plugin at a mock vendor at this URL (base URL and key).
    pub env: fn(&str) -> Vec<(&'static str, String)>,
}

impl Vendor {
    /// Our server with the plugin pointed at `mock` and no retries, so each vendor failure
    /// reaches the client as it is.
    pub async fn server(&self, mock: &MockServer) -> TestServer {
        self.start(mock, |c| c.providers.retries = 0, None).await
    }

    /// The same with the default retry policy.
    pub async fn server_with_retries(&self, mock: &MockServer) -> TestServer {
        self.start(mock, |_| {}, None).await
    }

    /// No retries, and the plugin's wall-clock limit cut to `timeout_ms`.
    pub async fn server_with_timeout(&self, mock: &MockServer, timeout_ms: u64) -> TestServer {
        self.start(mock, |c| c.providers.retries = 0, Some(timeout_ms)).await
    }

    async fn start(
        &self,
        mock: &MockServer,
        configure: fn(&mut codexcontinue::config::Config),
        timeout_ms: Option<u64>,
    ) -> TestServer {
        let timeout = timeout_ms.map(|ms| format!("timeout_ms = {ms}"));
        let edit = |manifest: String| match &timeout {
            Some(limit) => manifest.replace("timeout_ms = 120000", limit),
            None => manifest,
        };
        let setup = Setup {
            plugins: Vec::new(),
            custom: vec![plugin_with(self.id, edit)],
            env: (self.env)(&mock.url),
            configure,
            background_memory: false,
            ..Setup::default()
        };
        TestServer::start(setup).await
    }

    /// Asserts our reply (a `/chat` body or `done` event): its text, this provider, the model,
    /// finish reason and the vendor's (prompt, completion) token counts.
    pub fn assert_reply(&self, body: &Value, reply: &str, model: &str, finish_reason: &str, usage: (u32, u32)) {
        let (prompt, completion) = usage;
        let usage =
            json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
        let got = [&body["reply"], &body["provider"], &body["model"], &body["finish_reason"], &body["usage"]];
        let expected =
            [&Value::from(reply), &Value::from(self.id), &Value::from(model), &Value::from(finish_reason), &usage];
        assert_eq!(got, expected, "{body}");
    }

    /// `POST /chat` to this provider with `{"message": message}` plus `extra` fields.
    pub async fn chat(&self, server: &TestServer, message: &str, extra: Value) -> (u16, Value) {
        server.chat(message, with_provider(self.id, extra)).await
    }

    /// The same with `"stream": true`: our events as (name, data), in order.
    pub async fn chat_stream(&self, server: &TestServer, message: &str, extra: Value) -> Vec<(String, Value)> {
        let mut body = with_provider(self.id, extra);
        body["message"] = message.into();
        body["stream"] = true.into();
        let response = server.client.post(server.url("/chat")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        events(&response.text().await.unwrap())
    }
}

fn with_provider(id: &str, extra: Value) -> Value {
    let mut body = json!({ "provider": id });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    body
}

/// Our server-sent events as (event name, JSON data); keep-alive comments are skipped.
pub fn events(body: &str) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let (mut name, mut data) = (String::new(), String::new());
    for line in body.lines().chain([""]) {
        match line.split_once(':') {
            Some(("event", value)) => name = value.trim().to_string(),
            Some(("data", value)) => data.push_str(value.strip_prefix(' ').unwrap_or(value)),
            _ if line.is_empty() && !data.is_empty() => {
                let value =
                    serde_json::from_str(&data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                events.push((std::mem::take(&mut name), value));
                data.clear();
            }
            _ => {}
        }
    }
    events
}

/// The text of every `delta` event, joined.
pub fn deltas(events: &[(String, Value)]) -> String {
    events.iter().filter(|(name, _)| name == "delta").map(|(_, data)| data["content"].as_str().unwrap()).collect()
}

/// The last event, which must be `expected` (`done` or `error`); returns its data.
pub fn last<'a>(events: &'a [(String, Value)], expected: &str) -> &'a Value {
    let (name, data) = events.last().expect("no events");
    assert_eq!(name, expected, "{events:?}");
    assert_eq!(events[0].0, "start", "{events:?}");
    data
}

/// A mock handler answering the n-th request with the n-th reply; requests past the script
/// get a 500 that names the mistake.
pub fn script(replies: Vec<Reply>) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let replies = Mutex::new(VecDeque::from(replies));
    move |_| {
        replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Reply::json(500, json!({"message": "the test script has no reply for this request"})))
    }
}

/// One server-sent event named after its data's `type` (Anthropic's and Cohere's framing).
pub fn typed_event(event: &Value) -> String {
    format!("event: {}\ndata: {event}", event["type"].as_str().expect("a typed event"))
}

/// A stream of [`typed_event`]s, 5 ms apart, then a final raw event `tail` (e.g. a malformed one).
pub fn typed_sse_with(events: &[Value], tail: Option<&str>, end: End) -> Reply {
    let events: Vec<String> = events.iter().map(typed_event).chain(tail.map(str::to_string)).collect();
    Reply::sse(&events, Duration::from_millis(5), end)
}

/// A stream of [`typed_event`]s, 5 ms apart.
pub fn typed_sse(events: &[Value], end: End) -> Reply {
    typed_sse_with(events, None, end)
}

/// A 200 whose body starts as `content_type` and then never finishes.
pub fn stalled(content_type: &str, first: &str) -> Reply {
    Reply::stream(content_type, vec![first.to_string()], Duration::ZERO, End::Stall)
}

/// Each reply makes `POST /chat` fail with (status, code); a 429 also sets `Retry-After` to
/// `retry_after` (seconds). Runs against one server with no retries: one vendor call per case.
pub async fn check_errors(vendor: &Vendor, cases: Vec<(Reply, u16, &str)>, retry_after: &str) {
    let cases =
        cases.into_iter().map(|(reply, status, code)| (reply, status, code, (status == 429).then_some(retry_after)));
    check_errors_with_retry_after(vendor, cases.collect()).await;
}

/// The same, with the `Retry-After` (or none) each case must pass on to the client.
pub async fn check_errors_with_retry_after(vendor: &Vendor, cases: Vec<(Reply, u16, &str, Option<&str>)>) {
    let expected: Vec<_> = cases.iter().map(|(_, status, code, retry)| (*status, *code, *retry)).collect();
    let mock = MockServer::start(script(cases.into_iter().map(|(reply, ..)| reply).collect())).await;
    let server = vendor.server(&mock).await;
    for (i, (status, code, retry_after)) in expected.iter().enumerate() {
        let body = json!({ "message": format!("case {i}"), "provider": vendor.id });
        let response = server.client.post(server.url("/chat")).json(&body).send().await.unwrap();
        let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let (got, body) = super::response(response).await;
        assert_eq!((got, error_code(&body)), (*status, *code), "case {i}: {body}");
        assert_eq!(retry.as_deref(), *retry_after, "case {i}: Retry-After");
        // A vendor's error never leaks our key or request into the client's error.
        assert!(!body.to_string().contains("test-key"), "case {i}: {body}");
    }
    assert_eq!(mock.requests().len(), expected.len());
    server.stop().await;
}

/// A 429 with `Retry-After: 1` and then `ok` give a 200 after exactly two vendor calls at least
/// a second apart, under the default retry policy; returns the reply.
pub async fn check_retry(vendor: &Vendor, rate_limited: Reply, ok: Reply) -> Value {
    let mock = MockServer::start(script(vec![rate_limited.header("retry-after", "1"), ok])).await;
    let server = vendor.server_with_retries(&mock).await;
    let started = Instant::now();
    let (status, body) = vendor.chat(&server, "hello", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.requests().len(), 2, "one rate-limited call and one retry");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    server.stop().await;
    body
}

/// Streams that break off with a transport error, or end without the vendor's final event, end
/// our stream with an `upstream_unavailable` error after the deltas that did arrive; a
/// malformed event ends it with `upstream_error`. Each reply must stream `partial` first.
pub async fn check_broken_streams(vendor: &Vendor, dropped: Reply, truncated: Reply, malformed: Reply, partial: &str) {
    let mock = MockServer::start(script(vec![dropped, truncated, malformed])).await;
    let server = vendor.server(&mock).await;
    for code in ["upstream_unavailable", "upstream_unavailable", "upstream_error"] {
        let events = vendor.chat_stream(&server, "hello", json!({})).await;
        assert_eq!(deltas(&events), partial, "{code}: {events:?}");
        assert_eq!(error_code(last(&events, "error")), code, "{events:?}");
    }
    // Nothing was stored for the failed turns.
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"], json!([]));
    server.stop().await;
}

/// A vendor that stops sending mid-reply is cut off at the plugin's wall-clock limit (1.5 s):
/// a JSON reply with 504 `plugin_timeout`, a stream with that error after its deltas.
pub async fn check_stalls(vendor: &Vendor, stalled_json: Reply, stalled_stream: Reply, partial: &str) {
    let mock = MockServer::start(script(vec![stalled_json, stalled_stream])).await;
    let server = vendor.server_with_timeout(&mock, 1500).await;
    let started = Instant::now();
    let (status, body) = vendor.chat(&server, "hello", json!({})).await;
    assert_eq!((status, error_code(&body)), (504, "plugin_timeout"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let events = vendor.chat_stream(&server, "hello", json!({})).await;
    assert_eq!(deltas(&events), partial);
    assert_eq!(error_code(last(&events, "error")), "plugin_timeout", "{events:?}");
    server.stop().await;
}

/// `GET /v1/models` with the vendor's model list `reply`: returns the vendor's request and the
/// listed models (`id`, `context_window`, `supports_embeddings`) that this provider owns.
pub async fn list_models(vendor: &Vendor, reply: Reply) -> (Recorded, Vec<Value>) {
    let mock = MockServer::start(move |_| reply.clone()).await;
    let server = vendor.server(&mock).await;
    let (status, body) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{body}");
    let owned = body["data"].as_array().unwrap().iter().filter(|m| m["owned_by"] == vendor.id);
    let models = owned
        .map(|m| {
            let id = m["id"].as_str().unwrap();
            // The default provider's models are listed by their own ids, others' as `provider/id`.
            let id = id.strip_prefix(&format!("{}/", vendor.id)).unwrap_or(id);
            json!({"id": id, "context_window": m["context_window"], "supports_embeddings": m["supports_embeddings"]})
        })
        .collect();
    server.stop().await;
    (mock.single_request(), models)
}

/// The conversation [`second_turn`] sends the second time, as role/content messages.
pub fn history() -> Value {
    json!([
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ])
}

/// Two turns of one session (the first with `system`); returns the vendor's second request,
/// which must carry the first turn as history.
pub async fn second_turn(vendor: &Vendor, first: Reply, second: Reply) -> Recorded {
    let mock = MockServer::start(script(vec![first, second])).await;
    let server = vendor.server(&mock).await;
    let (status, body) = vendor.chat(&server, "first question", json!({ "system": "be terse" })).await;
    assert_eq!(status, 200, "{body}");
    let session = body["session_id"].clone();
    let extra = json!({ "session_id": session, "system": "be terse" });
    let (status, body) = vendor.chat(&server, "second question", extra).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
    mock.requests().pop().unwrap()
}
