//! OpenTelemetry traces, checked at a receiver that decodes the official OTLP protobufs: a
//! `/chat` with memory and a retry shows every step with GenAI attributes, continues the
//! client's W3C trace, hands it on to the vendor, and carries message contents only when the
//! operator opts in.
//!
//! The tracing subscriber is process-wide, so everything runs in one test.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use codexcontinue::config::Env;
use common::mock::{MockServer, Recorded, Reply};
use common::openai_wire::{Style, completion};
use common::vendor::script;
use common::{Setup, TestServer, plugin_with};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

const KEY: &str = "sk-telemetry-key-0123456789";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// Written into the user's message: it must not reach the collector unless captured.
const MARKER: &str = "the-plan-is-secret-7f3a";

/// A span as the receiver decoded it.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent: String,
    error: bool,
    attributes: HashMap<String, Value>,
}

impl Span {
    fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf` bodies.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let services = Arc::new(Mutex::new(Vec::new()));
        let (into, names) = (spans.clone(), services.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                for resource in request.resource_spans {
                    let resource_attributes = resource.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
                    names
                        .lock()
                        .unwrap()
                        .push(resource_attributes["service.name"].as_str().unwrap_or_default().to_string());
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        into.lock().unwrap().push(Span {
                            name: span.name,
                            kind: span.kind,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent: hex(&span.parent_span_id),
                            error: span.status.is_some_and(|s| s.code == 2),
                            attributes: attributes(&span.attributes),
                        });
                    }
                }
                // An empty ExportTraceServiceResponse.
                ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], Vec::<u8>::new())
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, spans, services }
    }

    /// Flushes the exporter until a request span that `matches` arrives (a request's span ends
    /// last in its trace), then returns every span of its trace.
    async fn trace(
        &self,
        telemetry: &codexcontinue::telemetry::Telemetry,
        matches: impl Fn(&Span) -> bool,
    ) -> Vec<Span> {
        for _ in 0..100 {
            telemetry.flush();
            let spans = self.spans.lock().unwrap().clone();
            if let Some(last) = spans.iter().find(|s| s.name == "POST /chat" && matches(s)) {
                let trace_id = last.trace_id.clone();
                return spans.into_iter().filter(|s| s.trace_id == trace_id).collect();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the request span did not reach the receiver; got {:#?}", self.spans.lock().unwrap());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> HashMap<String, Value> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(Any::StringValue(s)) => json!(s),
                Some(Any::IntValue(i)) => json!(i),
                Some(Any::DoubleValue(d)) => json!(d),
                Some(Any::BoolValue(b)) => json!(b),
                other => json!(format!("{other:?}")),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?} expected in {spans:#?}");
    found[0]
}

fn children<'a>(spans: &'a [Span], parent: &Span, name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.parent == parent.span_id && s.name == name).collect()
}

/// The vendor: a 429 asking for a one-second wait, then an answer.
async fn vendor() -> MockServer {
    let answer = completion(Style::OpenAi, "gpt-4.1-mini-2025-04-14", "Noted.", "stop", (31, 2));
    let limited =
        json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
    MockServer::start(script(vec![
        Reply::json(429, limited).header("retry-after", "1"),
        Reply::json(200, answer.clone()),
        Reply::json(200, answer),
    ]))
    .await
}

async fn start_server(mock: &MockServer, extra: Vec<(&'static str, String)>) -> TestServer {
    let mut env = vec![("OPENAI_API_KEY", KEY.to_string()), ("OPENAI_BASE_URL", format!("{}/v1", mock.url))];
    env.extend(extra);
    let setup = Setup {
        plugins: Vec::new(),
        custom: vec![plugin_with("openai", |m| m)],
        env,
        configure: |c| c.providers.backoff_ms = 10,
        background_memory: false,
        ..Setup::default()
    };
    TestServer::start(setup).await
}

fn traceparent(request: &Recorded) -> (String, String) {
    let header = request.header("traceparent").expect("the vendor call carries traceparent");
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{header}");
    (parts[1].to_string(), parts[2].to_string())
}

// Flushing blocks its thread while the receiver, on this runtime, takes the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_with_memory_and_a_retry_is_traced_end_to_end() {
    let receiver = Receiver::start().await;
    let env: Env = [("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()), ("OTEL_SERVICE_NAME", "cc-test")]
        .into_iter()
        .collect();
    let telemetry = codexcontinue::cli::init_tracing(&env);
    assert!(telemetry.is_on());

    // A turn in the client's trace: memory, a rate-limited first attempt, a retry that answers.
    let mock = vendor().await;
    let server = start_server(&mock, Vec::new()).await;
    let response = server
        .client
        .post(server.url("/chat"))
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .json(&json!({ "message": format!("Remember: {MARKER}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let session = body["session_id"].as_str().unwrap().to_string();
    let spans = receiver.trace(&telemetry, |s| s.trace_id == TRACE_ID).await;

    let request = one(&spans, "POST /chat");
    assert_eq!((request.kind, request.parent.as_str()), (SpanKind::Server as i32, CLIENT_SPAN));
    assert_eq!((request.attr("http.route"), request.attr("http.response.status_code")), (&json!("/chat"), &json!(200)));
    assert!(receiver.services.lock().unwrap().iter().all(|s| s == "cc-test"));

    let turn = children(&spans, request, "chat gpt-4.1-mini");
    assert_eq!(turn.len(), 1, "one turn in {spans:#?}");
    let turn = turn[0];
    for (key, value) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.request.model", json!("gpt-4.1-mini")),
        ("gen_ai.response.model", json!("gpt-4.1-mini-2025-04-14")),
        ("gen_ai.response.finish_reasons", json!("stop")),
        ("gen_ai.usage.input_tokens", json!(31)),
        ("gen_ai.usage.output_tokens", json!(2)),
        ("gen_ai.conversation.id", json!(session)),
    ] {
        assert_eq!(turn.attr(key), &value, "{key} on {turn:#?}");
    }

    let prompt = one(&spans, "memory prompt");
    assert_eq!(prompt.parent, turn.span_id);
    assert_eq!(children(&spans, prompt, "memory recall").len(), 1, "recall runs inside prompt building");
    assert_eq!(children(&spans, turn, "memory record").len(), 1);

    // Two attempts, each with its own upstream call; the vendor saw each upstream span as parent.
    let mut attempts = children(&spans, turn, "chat gpt-4.1-mini");
    attempts.sort_by_key(|s| s.attr("codexcontinue.retry").as_i64());
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    assert!(attempts.iter().all(|a| a.kind == SpanKind::Client as i32));
    assert_eq!((attempts[0].error, attempts[0].attr("error.type")), (true, &json!("rate_limited")));
    assert_eq!((attempts[1].error, attempts[1].attr("gen_ai.usage.output_tokens")), (false, &json!(2)));
    let calls = mock.requests();
    assert_eq!(calls.len(), 2);
    for (attempt, (call, status)) in attempts.iter().zip(calls.iter().zip([429, 200])) {
        let upstream = children(&spans, attempt, "POST");
        assert_eq!(upstream.len(), 1, "one upstream call per attempt");
        assert_eq!(upstream[0].attr("http.response.status_code"), &json!(status));
        assert_eq!(upstream[0].attr("server.address"), &json!("127.0.0.1"));
        assert_eq!(traceparent(call), (TRACE_ID.to_string(), upstream[0].span_id.clone()));
    }

    // Contents and keys stay out of the trace by default.
    let everything = format!("{:?}", spans);
    assert!(!everything.contains(MARKER), "message contents were exported without the opt-in");
    assert!(!everything.contains(KEY));
    assert_eq!(turn.attr("gen_ai.input.messages"), &Value::Null);
    server.stop().await;

    // With the opt-in, the prompt and the reply are on the turn, and a client without a trace
    // starts one here.
    let mock = vendor().await;
    let capture = vec![("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true".to_string())];
    let server = start_server(&mock, capture).await;
    let (status, _) = server.chat(&format!("Again: {MARKER}"), json!({})).await;
    assert_eq!(status, 200);
    let spans = receiver.trace(&telemetry, |s| s.trace_id != TRACE_ID).await;
    assert_eq!(one(&spans, "POST /chat").parent, "", "a new trace starts at the request");
    let turn = children(&spans, one(&spans, "POST /chat"), "chat gpt-4.1-mini")[0];
    let input = turn.attr("gen_ai.input.messages").as_str().expect("input captured");
    assert!(input.contains(MARKER), "{input}");
    let output: Value = serde_json::from_str(turn.attr("gen_ai.output.messages").as_str().unwrap()).unwrap();
    assert_eq!(output[0]["content"], "Noted.");
    assert!(!format!("{spans:?}").contains(KEY));
    server.stop().await;

    // A provider that keeps failing: three attempts, then the fallback, each its own span.
    let setup = Setup {
        plugins: vec!["echo", "dummy"],
        configure: |c| {
            c.providers.backoff_ms = 10;
            c.providers.fallbacks.insert("dummy".into(), vec!["echo".into()]);
        },
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let (status, _) = server.chat("hi", json!({ "provider": "dummy", "model": "error-500" })).await;
    assert_eq!(status, 200);
    let captured = spans[0].trace_id.clone();
    let spans = receiver.trace(&telemetry, |s| s.trace_id != TRACE_ID && s.trace_id != captured).await;
    let turn = children(&spans, one(&spans, "POST /chat"), "chat error-500")[0];
    let failed = children(&spans, turn, "chat error-500");
    assert_eq!(failed.len(), 3, "{spans:#?}");
    assert!(failed.iter().all(|a| a.error && a.attr("error.type") == &json!("unavailable")));
    let fallback = children(&spans, turn, "chat echo");
    assert_eq!(fallback.len(), 1, "{spans:#?}");
    assert_eq!(fallback[0].attr("codexcontinue.fallback_from"), &json!("dummy"));
    assert_eq!(turn.attr("gen_ai.response.model"), &json!("echo"));
    server.stop().await;
}
