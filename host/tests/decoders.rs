//! Property tests of every dialect's request decoder, driven through the real router in
//! process (`app(state).oneshot`, the echo plugin answering): bodies shaped like each dialect's
//! with hostile values (huge and negative numbers, wrong types, odd unicode, deep nesting,
//! unknown roles and blocks), and arbitrary bytes. Whatever arrives: never a 5xx or a panic,
//! every error in the dialect's own shape, and nothing stored for a refused request.
//!
//! Case counts are bounded and failures are not persisted, so CI runs the same cases each time.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use codexcontinue::config::{Config, StoreKind};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Cases per property: enough to reach every branch of the generators, small enough that the
/// whole file stays well under a minute in a debug build.
const CASES: u32 = 64;

/// A router over a temporary store with the echo plugin, built once for the binary.
struct Harness {
    runtime: Runtime,
    app: Router,
    _dirs: (TempDir, TempDir),
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (data, plugins) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let (manifest, wasm) = common::plugin("echo");
        std::fs::copy(manifest, plugins.path().join("echo.toml")).unwrap();
        std::fs::copy(wasm, plugins.path().join("echo.wasm")).unwrap();
        let mut config = Config {
            data_dir: data.path().to_path_buf(),
            plugins_dir: plugins.path().to_path_buf(),
            store: StoreKind::Memory,
            cache_dir: Some(common::shared_cache()),
            watch: false,
            ..Config::default()
        };
        config.memory.summaries = false;
        config.memory.embeddings = false;
        let state = runtime.block_on(codexcontinue::start(config, Default::default())).unwrap();
        assert!(state.registry.get("echo").is_some(), "the echo plugin did not load");
        Harness { runtime, app: codexcontinue::api::app(state), _dirs: (data, plugins) }
    })
}

/// Deterministic runs: a fixed seed and no failure files, so CI sees the same cases each time.
fn runner() -> TestRunner {
    let config = ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

/// The error shape each route must answer in.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `{"error": {"message", "type", "code"}}`: native, Chat Completions, Responses.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// The decoders under test: path and error shape.
const ROUTES: [(&str, Shape); 5] = [
    ("/chat", Shape::OpenAi),
    ("/v1/chat/completions", Shape::OpenAi),
    ("/v1/messages", Shape::Anthropic),
    ("/v1/messages/count_tokens", Shape::Anthropic),
    ("/v1/responses", Shape::OpenAi),
];

/// Sends `body` to `path` as a user of its own, then checks the properties; returns the status.
fn check(path: &str, shape: Shape, body: Vec<u8>, user: &str) -> Result<u16, TestCaseError> {
    let h = harness();
    h.runtime.block_on(async {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .header("x-user-id", user)
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = send(&h.app, request).await;
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(status < 500, "{path} answered {status}: {text}");
        if status >= 400 {
            let error: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{path} {status}: not JSON ({e}): {text}")))?;
            check_shape(shape, &error).map_err(|why| TestCaseError::fail(format!("{path} {status}: {why}: {text}")))?;
            let sessions = stored_sessions(&h.app, user).await;
            prop_assert!(sessions.is_empty(), "{path} refused with {status} but stored {sessions:?}");
        }
        Ok::<u16, TestCaseError>(status)
    })
}

/// Sends a request and reads the whole body (a stream to its end), within a bounded deadline.
async fn send(app: &Router, request: Request<Body>) -> (u16, Vec<u8>) {
    let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
    let status = response.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(60), axum::body::to_bytes(response.into_body(), 64 << 20))
        .await
        .expect("the response ended within a minute")
        .expect("the body was readable");
    (status, body.to_vec())
}

fn check_shape(shape: Shape, body: &Value) -> Result<(), String> {
    let error = &body["error"];
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    match shape {
        Shape::OpenAi if text(&error["message"]) && text(&error["type"]) && text(&error["code"]) => Ok(()),
        Shape::Anthropic if body["type"] == "error" && text(&error["type"]) && text(&error["message"]) => Ok(()),
        _ => Err(format!("not in the {shape:?} error shape")),
    }
}

/// The sessions stored for `user` (every test case uses a user of its own).
async fn stored_sessions(app: &Router, user: &str) -> Vec<Value> {
    let request = Request::get("/sessions").header("x-user-id", user).body(Body::empty()).unwrap();
    let (status, body) = send(app, request).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    body["sessions"].as_array().cloned().unwrap_or_default()
}

/// A fresh valid user id per case, so each case's "nothing stored" is its own.
fn user() -> String {
    format!("prop-{}", uuid::Uuid::new_v4().simple())
}

// ---- generators ----

/// Text that is odd in every way JSON allows: controls, NUL, lone combining marks, RTL
/// overrides, emoji, astral planes, long runs.
fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => Just(String::new()),
        1 => Just("\u{0}\u{1}\u{7f}\u{202e}\u{fe0f}\u{200d}👩‍👩‍👧\u{10ffff}\u{e000}".to_string()),
        1 => Just(" \t\n ".to_string()),
        1 => (1usize..4096).prop_map(|n| "é".repeat(n)),
        1 => Just("provider/".to_string()),
        1 => Just("echo/".to_string()),
        1 => Just("../../etc/passwd".to_string()),
    ]
}

/// Numbers at and beyond every boundary a field could have, and some that JSON carries but
/// Rust's types do not.
fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        Just(json!(u32::MAX as u64 + 1)),
        Just(json!(f32::MAX as f64 * 10.0)),
    ]
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        odd_number(),
        odd_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((odd_text(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value nested `depth` arrays or objects deep: beyond serde_json's recursion limit at the
/// high end, still far within the body limit.
fn deep() -> impl Strategy<Value = Value> {
    (1usize..300, any::<bool>()).prop_map(|(depth, objects)| {
        let mut value = json!("bottom");
        for _ in 0..depth {
            value = if objects { json!({ "a": value }) } else { json!([value]) };
        }
        value
    })
}

/// Mostly a plausible value of the field's kind, often a hostile one.
fn field(plausible: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![3 => plausible, 2 => any_json(), 1 => deep()].boxed()
}

fn text_value() -> BoxedStrategy<Value> {
    prop_oneof![Just(json!("hello")), odd_text().prop_map(Value::from)].boxed()
}

fn number_value() -> BoxedStrategy<Value> {
    prop_oneof![Just(json!(1)), Just(json!(0.5)), odd_number()].boxed()
}

fn role() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(vec!["user", "assistant", "system", "developer", "tool", "function"]).prop_map(Value::from),
        1 => odd_text().prop_map(Value::from),
    ]
    .boxed()
}

/// A content block of a kind the dialects know, or do not.
fn block() -> BoxedStrategy<Value> {
    let kinds = vec![
        "text",
        "input_text",
        "output_text",
        "image",
        "image_url",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "function_call",
        "function_call_output",
        "message",
        "document",
        "refusal",
        "mystery",
    ];
    (prop::sample::select(kinds), text_value(), field(text_value()), field(any_json().boxed()), any::<bool>())
        .prop_map(|(kind, text, id, input, is_error)| {
            json!({
                "type": kind, "text": text.clone(), "id": id.clone(), "name": text.clone(), "input": input.clone(),
                "tool_use_id": id.clone(), "content": text.clone(), "is_error": is_error, "call_id": id,
                "arguments": input, "output": text, "role": "user",
            })
        })
        .boxed()
}

fn content() -> BoxedStrategy<Value> {
    field(prop_oneof![text_value(), prop::collection::vec(block(), 0..4).prop_map(Value::Array)].boxed())
}

/// A message of any dialect: role, content, and the fields tool turns carry.
fn message() -> BoxedStrategy<Value> {
    (field(role()), content(), field(text_value()), field(any_json().boxed()))
        .prop_map(|(role, content, id, calls)| {
            json!({ "role": role, "content": content, "tool_call_id": id.clone(), "name": id.clone(),
                    "tool_calls": [{"id": id.clone(), "type": "function", "function": {"name": id, "arguments": calls}}] })
        })
        .prop_flat_map(|m| {
            // Drop some of the fields again, so both their presence and absence are tried.
            prop::sample::subsequence(vec!["tool_call_id", "name", "tool_calls"], 0..=3).prop_map(move |drop| {
                let mut m = m.clone();
                for key in drop {
                    m.as_object_mut().unwrap().remove(key);
                }
                m
            })
        })
        .boxed()
}

fn messages() -> BoxedStrategy<Value> {
    field(prop::collection::vec(message(), 0..5).prop_map(Value::Array).boxed())
}

/// An object with a subset of `fields`, plus sometimes an unknown one.
fn body(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let names: Vec<&'static str> = fields.iter().map(|(n, _)| *n).collect();
    let values: Vec<BoxedStrategy<Value>> = fields.into_iter().map(|(_, s)| s).collect();
    let count = names.len();
    (values, prop::collection::vec(any::<bool>(), count), prop::option::of((odd_text(), any_json())))
        .prop_map(move |(values, keep, unknown)| {
            let mut object = Map::new();
            for ((name, value), keep) in names.iter().zip(values).zip(keep) {
                if keep {
                    object.insert(name.to_string(), value);
                }
            }
            if let Some((key, value)) = unknown {
                object.insert(key, value);
            }
            Value::Object(object)
        })
        .boxed()
}

fn model() -> BoxedStrategy<Value> {
    field(prop_oneof![Just(json!("echo")), Just(json!("echo/any")), Just(json!("nobody/x")), text_value()].boxed())
}

fn stop() -> BoxedStrategy<Value> {
    field(prop_oneof![text_value(), prop::collection::vec(text_value(), 0..5).prop_map(Value::Array)].boxed())
}

fn tools() -> BoxedStrategy<Value> {
    let tool = (text_value(), field(any_json().boxed())).prop_map(|(name, schema)| {
        json!({"type": "function", "name": name.clone(), "function": {"name": name, "parameters": schema.clone()},
               "input_schema": schema.clone(), "parameters": schema})
    });
    field(prop::collection::vec(tool, 0..3).prop_map(Value::Array).boxed())
}

fn flag() -> BoxedStrategy<Value> {
    field(any::<bool>().prop_map(Value::from).boxed())
}

fn native_body() -> BoxedStrategy<Value> {
    body(vec![
        ("message", field(text_value())),
        ("session_id", field(text_value())),
        ("provider", field(prop_oneof![Just(json!("echo")), text_value()].boxed())),
        ("model", model()),
        ("system", field(text_value())),
        ("temperature", field(number_value())),
        ("top_p", field(number_value())),
        ("max_tokens", field(number_value())),
        ("stop", stop()),
        ("stream", flag()),
        ("workspace_id", field(text_value())),
    ])
}

fn completions_body() -> BoxedStrategy<Value> {
    body(vec![
        ("model", model()),
        ("messages", messages()),
        ("temperature", field(number_value())),
        ("top_p", field(number_value())),
        ("max_tokens", field(number_value())),
        ("max_completion_tokens", field(number_value())),
        ("stop", stop()),
        ("stream", flag()),
        ("stream_options", field(Just(json!({"include_usage": true})).boxed())),
        ("tools", tools()),
        ("tool_choice", field(text_value())),
        ("n", field(number_value())),
    ])
}

fn messages_body() -> BoxedStrategy<Value> {
    body(vec![
        ("model", model()),
        ("max_tokens", field(number_value())),
        ("messages", messages()),
        ("system", content()),
        ("stop_sequences", stop()),
        ("temperature", field(number_value())),
        ("top_p", field(number_value())),
        ("top_k", field(number_value())),
        ("tools", tools()),
        ("tool_choice", field(Just(json!({"type": "tool", "name": "x"})).boxed())),
        ("stream", flag()),
    ])
}

fn responses_body() -> BoxedStrategy<Value> {
    body(vec![
        ("model", model()),
        (
            "input",
            field(
                prop_oneof![
                    text_value(),
                    messages(),
                    prop::collection::vec(block(), 0..4).prop_map(Value::Array).boxed()
                ]
                .boxed(),
            ),
        ),
        ("instructions", field(text_value())),
        ("tools", tools()),
        ("tool_choice", field(text_value())),
        ("temperature", field(number_value())),
        ("top_p", field(number_value())),
        ("max_output_tokens", field(number_value())),
        ("stream", flag()),
        ("store", flag()),
        ("previous_response_id", field(prop_oneof![Just(json!("resp_missing")), text_value()].boxed())),
    ])
}

/// Runs `strategy`'s bodies against `path`; returns how many were accepted (2xx), so a
/// generator that only ever produces refusals shows up as a failure.
fn run(path: &'static str, shape: Shape, strategy: BoxedStrategy<Vec<u8>>) -> usize {
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    runner()
        .run(&strategy, |bytes| {
            if check(path, shape, bytes, &user())? < 300 {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    accepted.into_inner()
}

fn json_bytes(strategy: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    strategy.prop_map(|v| serde_json::to_vec(&v).unwrap()).boxed()
}

/// Arbitrary bytes, and JSON texts cut short or with a byte flipped.
fn hostile_bytes(valid: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (json_bytes(valid.clone()), any::<prop::sample::Index>())
            .prop_map(|(bytes, at)| bytes[..at.index(bytes.len() + 1)].to_vec()),
        (json_bytes(valid), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut bytes, at, byte)| {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        }),
    ]
    .boxed()
}

/// A body `path` accepts, carrying odd text, any valid `max_tokens` and either `stream`: so the
/// accepted side of each decoder (and the turn behind it) is exercised too.
fn valid(path: &str) -> BoxedStrategy<Value> {
    let path = path.to_string();
    (odd_text().prop_filter("a message has text", |t| !t.trim().is_empty()), 1u32..=u32::MAX, any::<bool>())
        .prop_map(move |(text, max_tokens, stream)| match path.as_str() {
            "/chat" => json!({"message": text, "provider": "echo", "max_tokens": max_tokens, "stream": stream}),
            "/v1/chat/completions" => json!({"model": "echo/demo", "max_tokens": max_tokens, "stream": stream,
                                             "messages": [{"role": "user", "content": text}]}),
            "/v1/messages" | "/v1/messages/count_tokens" => json!({"model": "echo/demo", "max_tokens": max_tokens,
                "stream": stream, "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}),
            "/v1/responses" => {
                json!({"model": "echo/demo", "input": text, "max_output_tokens": max_tokens, "stream": stream})
            }
            other => unreachable!("{other}"),
        })
        .boxed()
}

/// Valid bodies now and then, hostile ones mostly.
fn strategy(path: &str) -> BoxedStrategy<Value> {
    let hostile = match path {
        "/chat" => native_body(),
        "/v1/chat/completions" => completions_body(),
        "/v1/messages" | "/v1/messages/count_tokens" => messages_body(),
        "/v1/responses" => responses_body(),
        other => unreachable!("{other}"),
    };
    prop_oneof![1 => valid(path), 3 => hostile].boxed()
}

/// Bodies shaped like `/chat`'s, with hostile values: never a 5xx, errors in our shape,
/// nothing stored when refused.
#[test]
fn native_chat_decoder() {
    let accepted = run("/chat", Shape::OpenAi, json_bytes(strategy("/chat")));
    assert!(accepted > 0, "no generated body was accepted: the generator misses the valid shape");
}

/// The same for `/v1/chat/completions`, in OpenAI's error shape.
#[test]
fn chat_completions_decoder() {
    let accepted = run("/v1/chat/completions", Shape::OpenAi, json_bytes(strategy("/v1/chat/completions")));
    assert!(accepted > 0, "no generated body was accepted: the generator misses the valid shape");
}

/// The same for `/v1/messages`, in Anthropic's error shape.
#[test]
fn anthropic_messages_decoder() {
    let accepted = run("/v1/messages", Shape::Anthropic, json_bytes(strategy("/v1/messages")));
    assert!(accepted > 0, "no generated body was accepted: the generator misses the valid shape");
}

/// The same for `/v1/messages/count_tokens`, in Anthropic's error shape.
#[test]
fn anthropic_count_tokens_decoder() {
    let accepted =
        run("/v1/messages/count_tokens", Shape::Anthropic, json_bytes(strategy("/v1/messages/count_tokens")));
    assert!(accepted > 0, "no generated body was accepted: the generator misses the valid shape");
}

/// The same for `/v1/responses`, in OpenAI's error shape.
#[test]
fn responses_decoder() {
    let accepted = run("/v1/responses", Shape::OpenAi, json_bytes(strategy("/v1/responses")));
    assert!(accepted > 0, "no generated body was accepted: the generator misses the valid shape");
}

/// Arbitrary bytes, truncated and corrupted bodies, at every decoder: never a 5xx, always the
/// dialect's error shape, nothing stored.
#[test]
fn every_decoder_survives_arbitrary_bytes() {
    for (path, shape) in ROUTES {
        run(path, shape, hostile_bytes(strategy(path)));
    }
}

/// A body nested far beyond serde_json's recursion limit is a 4xx in the dialect's shape.
#[test]
fn deep_nesting_is_refused_in_shape() {
    let nested = format!("{}\"x\"{}", "[".repeat(10_000), "]".repeat(10_000));
    for (path, shape) in ROUTES {
        let body = format!("{{\"model\":\"echo\",\"messages\":{nested},\"message\":{nested},\"input\":{nested}}}");
        let status = check(path, shape, body.into_bytes(), &user()).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!((400..500).contains(&status), "{path}: {status}");
    }
}
