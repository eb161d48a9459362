//! The harness itself, on first-party plugins built by `cargo xtask build-plugins`: `echo`
//! offline, `openai` against a mock vendor (plain, streamed, rate-limited, denied), the `dummy`
//! test plugin for limits, logs and staging failures, `redis-memory` for a memory plugin, and
//! `build_plugin` on a real plugin crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use codexcontinue_sdk_testing::memory_types::{NewMessage, Scope};
use codexcontinue_sdk_testing::mock::{End, MockServer, Reply};
use codexcontinue_sdk_testing::prelude::*;
use codexcontinue_sdk_testing::{
    BuildError, Denial, FinishReason, Kind, LogLine, PluginBuild, RateLimit, Step, TestHostBuilder, Usage,
};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789";

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// A file `cargo xtask build-plugins` makes, or a clear failure saying so.
fn built(path: &str) -> PathBuf {
    let path = root().join(path);
    assert!(path.is_file(), "{} is missing: run `cargo xtask build-plugins` first", path.display());
    path
}

fn echo() -> TestHostBuilder {
    TestHost::builder(built("plugins/echo/echo.wasm"))
}

fn openai() -> TestHostBuilder {
    TestHost::builder(built("plugins/openai/openai.wasm"))
}

/// The openai plugin pointed at `vendor` through `OPENAI_BASE_URL`, as an operator would.
async fn openai_at(vendor: &MockServer) -> TestHost {
    openai().env("OPENAI_API_KEY", KEY).env("OPENAI_BASE_URL", format!("{}/v1", vendor.url)).start().await.unwrap()
}

/// The dummy test plugin: its manifest sits beside its sources, its component in the target dir.
fn dummy() -> TestHostBuilder {
    TestHost::builder(built("plugins/target/wasm32-wasip2/release/dummy.wasm"))
        .manifest(root().join("plugins/testing/dummy/dummy.toml"))
}

fn dummy_manifest() -> String {
    std::fs::read_to_string(root().join("plugins/testing/dummy/dummy.toml")).unwrap()
}

/// A chat completion as OpenAI sends it.
fn completion(content: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_086_400, "model": "gpt-4o-mini-2024-07-18",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null},
                        "logprobs": null, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
}

/// The events of a streamed completion as OpenAI sends them, usage chunk and `[DONE]` last.
fn stream_events(deltas: &[&str]) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_764_086_400,
               "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    events.extend(deltas.iter().map(|d| chunk(json!({"content": d}), Value::Null)));
    events.push(chunk(json!({}), json!("stop")));
    let mut usage = chunk(json!({}), Value::Null);
    usage["choices"] = json!([]);
    usage["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12});
    events.push(usage);
    events.iter().map(|e| format!("data: {e}")).chain(["data: [DONE]".to_string()]).collect()
}

/// The echo plugin stages from the manifest beside it and answers every call in the real
/// runtime: info, chat, the same reply streamed, models and embeddings.
#[tokio::test]
async fn echo_answers_every_call() {
    let host = echo().start().await.unwrap();
    assert_eq!((host.kind(), host.info().name.as_str()), (Kind::Provider, "Echo (offline demo)"));
    assert!(host.missing().is_empty());

    let request = ChatRequest::new("echo", vec![Message::system("Be brief."), Message::user("hello harness")]);
    let reply = host.chat(request.clone()).await.unwrap();
    assert!(reply.content.contains("hello harness"), "{}", reply.content);
    let (events, streamed) = host.chat_stream(request).await;
    assert!(events.len() > 1, "{events:?}");
    assert_eq!(stream_text(&events), streamed.unwrap().content);

    let models = host.list_models().await.unwrap();
    assert!(models.iter().any(|m| m.id == "echo"), "{models:?}");
    let embeddings = host.embed(EmbedRequest::new(["one", "two"])).await.unwrap();
    assert_eq!(embeddings.vectors.len(), 2);
    assert!(host.denials().is_empty());
}

/// A plain chat through `openai` reaches the mock at the overridden base URL with the key
/// substituted into its header, and the vendor's reply comes back mapped.
#[tokio::test]
async fn openai_chat_reaches_the_mock() {
    let vendor = MockServer::start(|_| Reply::json(200, completion("Hi there!"))).await;
    let host = openai_at(&vendor).await;
    let reply = host.chat(ChatRequest::user("gpt-4o-mini", "Hi")).await.unwrap();
    assert_eq!(reply.content, "Hi there!");
    assert_eq!(reply.finish_reason, FinishReason::Stop);
    assert_eq!(reply.model, "gpt-4o-mini-2024-07-18");
    assert!(matches!(reply.usage, Some(Usage { prompt_tokens: 9, completion_tokens: 3, .. })));

    let request = vendor.single_request();
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.json()["messages"], json!([{"role": "user", "content": "Hi"}]));
    assert!(host.denials().is_empty());
}

/// A streamed chat hands over every delta in order, then the usage, and the final reply is
/// their concatenation.
#[tokio::test]
async fn openai_stream_collects_every_event() {
    let events = stream_events(&["Hel", "lo", "!"]);
    let vendor = MockServer::start(move |_| Reply::sse(&events, Duration::from_millis(5), End::Complete)).await;
    let host = openai_at(&vendor).await;
    let (events, reply) = host.chat_stream(ChatRequest::user("gpt-4o-mini", "Hi")).await;
    let deltas: Vec<&str> = stream_deltas(&events).into_iter().filter(|d| !d.is_empty()).collect();
    assert_eq!(deltas, ["Hel", "lo", "!"]);
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Usage(Usage { completion_tokens: 3, .. }))));
    assert_eq!(reply.unwrap().content, "Hello!");
    assert_eq!(vendor.single_request().json()["stream"], true);
}

/// A 429 with `Retry-After: 20` comes back as the provider's own `rate-limited` error with
/// the wait in milliseconds; the harness never retries.
#[tokio::test]
async fn rate_limit_maps_to_rate_limited() {
    let vendor = MockServer::start(|_| {
        Reply::json(
            429,
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
        )
        .header("retry-after", "20")
    })
    .await;
    let host = openai_at(&vendor).await;
    let error = host.chat(ChatRequest::user("gpt-4o-mini", "Hi")).await.unwrap_err();
    assert!(
        matches!(
            error.provider_error(),
            Some(ProviderError::RateLimited(RateLimit { retry_after_ms: Some(20_000), .. }))
        ),
        "{error:?}"
    );
    assert_eq!(vendor.requests().len(), 1);
}

/// Without the endpoint override, a base URL set in the manifest does not widen the
/// allow-list: the request is refused before it leaves, the plugin sees a denial and the
/// harness records it.
#[tokio::test]
async fn unlisted_host_is_denied() {
    let vendor = MockServer::start(|_| Reply::json(200, completion("unreachable"))).await;
    let manifest = std::fs::read_to_string(root().join("plugins/openai/openai.toml"))
        .unwrap()
        .replace("base_url = \"https://api.openai.com/v1\"", &format!("base_url = \"{}/v1\"", vendor.url));
    let host = openai().manifest_text(manifest).env("OPENAI_API_KEY", KEY).start().await.unwrap();
    let error = host.chat(ChatRequest::user("gpt-4o-mini", "Hi")).await.unwrap_err();
    assert!(matches!(error.provider_error(), Some(ProviderError::Other(m)) if m.contains("denied")), "{error:?}");
    assert_eq!(host.denials(), [Denial { message: "denied outbound request".into(), destination: vendor.url.clone() }]);
    assert!(vendor.requests().is_empty());
}

/// A host the manifest allows but does not bind the key to gets a denial, not the key.
#[tokio::test]
async fn secret_sent_elsewhere_is_denied() {
    let vendor = MockServer::start(|_| Reply::json(200, completion("unreachable"))).await;
    let manifest = std::fs::read_to_string(root().join("plugins/openai/openai.toml"))
        .unwrap()
        .replace("allowed_hosts = [\"https://api.openai.com\"]", &format!("allowed_hosts = [\"{}\"]", vendor.url))
        .replace("base_url = \"https://api.openai.com/v1\"", &format!("base_url = \"{}/v1\"", vendor.url));
    let host = openai().manifest_text(manifest).env("OPENAI_API_KEY", KEY).start().await.unwrap();
    let error = host.chat(ChatRequest::user("gpt-4o-mini", "Hi")).await.unwrap_err();
    assert!(!format!("{error:?}").contains(KEY));
    let denials = host.denials();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert!(denials[0].message.starts_with("denied secret"), "{denials:?}");
    assert_eq!(denials[0].destination, vendor.url);
    assert!(vendor.requests().is_empty());
}

/// Secrets come from the harness's environment only: without `.env("OPENAI_API_KEY", ..)`
/// the key is reported missing, whatever the test process's environment holds.
#[tokio::test]
async fn secrets_come_only_from_the_harness_env() {
    let host = openai().start().await.unwrap();
    assert_eq!(host.missing(), ["OPENAI_API_KEY"]);
}

/// A plugin that spins is stopped at its CPU budget, here lowered from the manifest's 500 ms
/// with `.limits`.
#[tokio::test]
async fn cpu_budget_stops_a_spinning_plugin() {
    let host = dummy().limits(|l| l.cpu_ms = 100).start().await.unwrap();
    let error = host.chat(ChatRequest::user("loop", "spin")).await.unwrap_err();
    assert!(matches!(error.runtime_error(), Some(RuntimeError::CpuExhausted { budget_ms: 100, .. })), "{error:?}");
    assert_eq!(error.to_string(), "plugin dummy@0.1.0 exceeded its CPU budget of 100 ms");
}

/// A call that outlives the wall-clock limit is cut off with a timeout.
#[tokio::test]
async fn wall_clock_limit_stops_a_slow_call() {
    let host = dummy().limits(|l| l.timeout_ms = 300).start().await.unwrap();
    let error = host.chat(ChatRequest::user("slow", "wait")).await.unwrap_err();
    assert!(matches!(error.runtime_error(), Some(RuntimeError::Timeout { timeout_ms: 300, .. })), "{error:?}");
}

/// A reply larger than the server accepts is refused as the server refuses it.
#[tokio::test]
async fn oversized_reply_is_invalid_output() {
    let host = dummy().start().await.unwrap();
    let error = host.chat(ChatRequest::user("huge", "fill")).await.unwrap_err();
    assert!(matches!(error.runtime_error(), Some(RuntimeError::InvalidOutput { .. })), "{error:?}");
}

/// Lines logged through the `log` capability are captured with their levels, in order, and
/// what the plugin prints to stderr is kept as its output.
#[tokio::test]
async fn logs_and_output_are_captured() {
    let host = dummy().start().await.unwrap();
    assert_eq!(host.chat(ChatRequest::user("log", "log")).await.unwrap().content, "logged");
    let expected: Vec<LogLine> = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error]
        .into_iter()
        .map(|level| LogLine { level, message: format!("dummy {level}") })
        .collect();
    assert_eq!(host.logs(), expected);

    host.chat(ChatRequest::user("stderr", "print")).await.unwrap();
    assert!(host.output().iter().any(|o| o.contains("dummy wrote to stderr")), "{:?}", host.output());
}

/// Two hosts in the same test keep their captures apart.
#[tokio::test]
async fn captures_belong_to_their_host() {
    let (one, two) = (dummy().start().await.unwrap(), dummy().start().await.unwrap());
    one.chat(ChatRequest::user("log", "log")).await.unwrap();
    assert_eq!(one.logs().len(), 5);
    assert!(two.logs().is_empty());
}

/// Staging fails as the server's does, naming the file given, the step and the reason: a bad
/// manifest, a limit overridden out of range, a component of another kind, a failing
/// `info()`, and a missing component or manifest.
#[tokio::test]
async fn staging_errors_are_the_servers() {
    let manifest_path = root().join("plugins/testing/dummy/dummy.toml");

    let bad = dummy_manifest().replace("memory_mb = 64", "memory_mb = 100000");
    let error = dummy().manifest_text(bad).start().await.err().unwrap();
    assert_eq!((error.step, error.file.as_path()), (Step::Manifest, Path::new("dummy.toml")));
    assert!(error.reason.contains("limits.memory_mb"), "{error}");

    let error = dummy().limits(|l| l.cpu_ms = 0).start().await.err().unwrap();
    assert_eq!((error.step, &error.file), (Step::Manifest, &manifest_path));
    assert!(error.reason.contains("limits.cpu_ms"), "{error}");

    let memory = dummy_manifest().replace("kind = \"provider\"", "kind = \"memory\"");
    let error = dummy().manifest_text(memory).start().await.err().unwrap();
    assert_eq!(error.step, Step::Version, "{error}");

    let panics = dummy_manifest().replace("[config]", "[config]\ninfo = \"panic\"");
    let error = dummy().manifest_text(panics).start().await.err().unwrap();
    assert_eq!(error.step, Step::SelfCheck, "{error}");
    assert!(error.reason.contains("crashed"), "{error}");

    let error = TestHost::builder(root().join("no-such.wasm")).start().await.err().unwrap();
    assert_eq!(error.step, Step::Read);
    assert!(error.reason.contains("build_plugin"), "{error}");

    let error =
        TestHost::builder(built("plugins/target/wasm32-wasip2/release/dummy.wasm")).start().await.err().unwrap();
    assert_eq!(error.step, Step::Read);
    assert!(error.reason.contains("no manifest found") && error.reason.contains(".manifest(path)"), "{error}");
}

/// A memory plugin stages (its `init()` connects to the real Redis on this machine) and its
/// `memory-store` calls go through, under the host's capture.
#[tokio::test]
async fn memory_plugin_round_trip() {
    let prefix = format!("cc-sdk-testing-{}", std::process::id());
    let host = TestHost::builder(built("plugins/redis-memory/redis-memory.wasm"))
        .env("CODEXCONTINUE_REDIS_PREFIX", &prefix)
        .start()
        .await
        .unwrap();
    assert_eq!(host.kind(), Kind::Memory);
    let scope = Scope { user: "ada".into(), session: "s1".into() };
    let message = NewMessage {
        role: Role::User,
        content: "remember me".into(),
        name: None,
        metadata: None,
        created_at_ms: 1_764_086_400_000,
    };
    let stored = host.captured(host.memory().append(&scope, &[message], Some("first"))).await.unwrap().unwrap();
    assert_eq!(stored.len(), 1);
    let listed = host.captured(host.memory().list_messages(&scope, None, 10)).await.unwrap().unwrap();
    assert_eq!(listed.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["remember me"]);
    assert!(host.captured(host.memory().delete_session(&scope)).await.unwrap().unwrap());
}

/// `build_plugin` builds a plugin crate for wasm32-wasip2 (here into the plugins' own target
/// dir, which `cargo xtask build-plugins` already filled) and the builder then finds the
/// manifest beside the crate.
#[tokio::test]
async fn build_plugin_builds_and_finds_the_manifest() {
    let plugins = root().join("plugins");
    let wasm = PluginBuild::new(plugins.join("echo")).target_dir(plugins.join("target")).build().unwrap();
    assert!(wasm.ends_with("wasm32-wasip2/release/echo.wasm"), "{}", wasm.display());
    let host = TestHost::builder(&wasm).start().await.unwrap();
    assert_eq!(host.plugin().manifest.id, "echo");
}

/// Asking to build something that is not a crate says so.
#[test]
fn build_plugin_needs_a_crate() {
    let error = build_plugin(root().join("wit")).unwrap_err();
    assert!(matches!(error, BuildError::NotACrate(_)), "{error}");
    assert!(error.to_string().contains("no Cargo.toml"), "{error}");
}
