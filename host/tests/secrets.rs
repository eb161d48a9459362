//! Secrets never leave the host: a vendor that echoes our request headers (the API key) into its
//! reply, its stream (split across two deltas) and its tool-call arguments gets the key masked
//! before any client, the store or the log sees it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::mock::{End, MockServer, Recorded, Reply};
use common::{Setup, TestServer};
use serde_json::{Value, json};

const KEY: &str = "sk-echo-key-0123456789abcdef";
const MASK: &str = "[redacted:OPENAI_API_KEY]";

/// Everything the server logs in this test binary.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(buffer.clone());
        // The server's own filter with `RUST_LOG=trace`: the most an operator can turn on.
        tracing_subscriber::fmt()
            .with_env_filter(codexcontinue::cli::log_filter(Some("trace")))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .ok();
        buffer
    })
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the vendor heard in the `Authorization` header, echoed back.
fn heard(request: &Recorded) -> String {
    request.header("authorization").unwrap_or_default().to_string()
}

fn chunk(delta: Value) -> String {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
                      "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
    format!("data: {body}")
}

/// A vendor that echoes the `Authorization` header: in the text and in a tool call's arguments;
/// streamed, with the header split across two deltas and two argument fragments.
fn echo(request: &Recorded) -> Reply {
    let auth = heard(request);
    if request.json()["stream"] == json!(true) {
        let (a, b) = auth.split_at(auth.len() / 2);
        let args = format!("{{\"auth\":\"{auth}\"}}");
        let (x, y) = args.split_at(args.len() / 2 + 3);
        let events = vec![
            chunk(json!({"role": "assistant", "content": format!("You sent {a}")})),
            chunk(json!({"content": format!("{b} to me.")})),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                          "function": {"name": "save", "arguments": x}}]})),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": y}}]})),
            format!(
                "data: {}",
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
            ),
            "data: [DONE]".to_string(),
        ];
        return Reply::sse(&events, Duration::from_millis(5), End::Complete);
    }
    Reply::json(
        200,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": format!("You sent {auth} to me."),
                   "tool_calls": [{"id": "call_1", "type": "function",
                                   "function": {"name": "save", "arguments": format!("{{\"auth\":\"{auth}\"}}")}}]}}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}),
    )
}

async fn server(vendor: &MockServer) -> TestServer {
    log();
    let env = vec![("OPENAI_API_KEY", KEY.to_string()), ("OPENAI_BASE_URL", format!("{}/v1", vendor.url))];
    TestServer::start(Setup { plugins: vec!["openai"], env, background_memory: false, ..Setup::default() }).await
}

fn body(stream: bool) -> Value {
    json!({
        "model": "openai/gpt-4.1-mini", "stream": stream,
        "messages": [{"role": "user", "content": "what did I send you?"}],
        "tools": [{"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}],
    })
}

/// Replies, streams (the key split across deltas and argument fragments), stored messages and
/// the log never show the key; the masks show where it was.
#[tokio::test]
async fn echoed_keys_are_masked_everywhere() {
    let vendor = MockServer::start(echo).await;
    let server = server(&vendor).await;

    // A complete reply: text and tool-call arguments.
    let r = server.client.post(server.url("/v1/chat/completions")).header("x-session-id", "plain").json(&body(false));
    let text = r.send().await.unwrap().text().await.unwrap();
    assert!(!text.contains(KEY), "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["content"], format!("You sent Bearer {MASK} to me."), "{text}");
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], format!("{{\"auth\":\"Bearer {MASK}\"}}"));
    assert_eq!(heard(&vendor.requests()[0]), format!("Bearer {KEY}"), "the vendor did get the key");

    // A streamed reply: the key arrives in halves, in text and in arguments.
    let r = server.client.post(server.url("/v1/chat/completions")).header("x-session-id", "streamed").json(&body(true));
    let sse = r.send().await.unwrap().text().await.unwrap();
    assert!(!sse.contains(KEY) && !sse.contains(&KEY[..KEY.len() / 2]), "{sse}");
    let (mut content, mut arguments) = (String::new(), String::new());
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|l| *l != "[DONE]") {
        let event: Value = serde_json::from_str(line).unwrap();
        let delta = &event["choices"][0]["delta"];
        content.push_str(delta["content"].as_str().unwrap_or_default());
        arguments.push_str(delta["tool_calls"][0]["function"]["arguments"].as_str().unwrap_or_default());
    }
    assert_eq!(content, format!("You sent Bearer {MASK} to me."), "{sse}");
    assert_eq!(arguments, format!("{{\"auth\":\"Bearer {MASK}\"}}"), "{sse}");

    // The native API, streamed, and what memory stored for every session.
    let r = server.client.post(server.url("/chat")).json(&json!({"message": "again?", "stream": true}));
    let native = r.send().await.unwrap().text().await.unwrap();
    assert!(!native.contains(KEY) && native.contains(MASK), "{native}");
    let start: Value = serde_json::from_str(native.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    let native_session = start["session_id"].as_str().unwrap().to_string();
    for session in ["plain", "streamed", native_session.as_str()] {
        let (status, stored) = server.get(&format!("/memory/{session}")).await;
        assert_eq!(status, 200, "{stored}");
        let stored = stored.to_string();
        assert!(!stored.contains(KEY) && stored.contains(MASK), "{session}: {stored}");
    }
    // Anthropic's and the Responses dialects, streamed and not: no key in any byte.
    let messages = json!({"model": "openai/gpt-4.1-mini", "max_tokens": 100,
                          "messages": [{"role": "user", "content": "what did I send you?"}]});
    let responses = json!({"model": "openai/gpt-4.1-mini", "input": "what did I send you?"});
    for (path, body) in [("/v1/messages", messages), ("/v1/responses", responses)] {
        for stream in [false, true] {
            let mut body = body.clone();
            body["stream"] = json!(stream);
            let r = server.client.post(server.url(path)).header("anthropic-version", "2023-06-01").json(&body);
            let text = r.send().await.unwrap().text().await.unwrap();
            assert!(!text.contains(KEY) && text.contains("redacted:OPENAI_API_KEY"), "{path} {stream}: {text}");
        }
    }
    server.stop().await;

    let log = String::from_utf8_lossy(&log().lock().unwrap()).to_string();
    assert!(!log.is_empty(), "the log was not captured");
    assert!(!log.contains(KEY), "the key is in the log");
}

/// A vendor error that quotes the key reaches neither the client nor the log.
#[tokio::test]
async fn echoed_keys_in_errors_are_masked() {
    let vendor = MockServer::start(|request| {
        Reply::json(
            400,
            json!({"error": {"message": format!("bad header {}", heard(request)), "type": "invalid_request_error"}}),
        )
    })
    .await;
    let server = server(&vendor).await;
    let r = server.client.post(server.url("/v1/chat/completions")).json(&body(false));
    let text = r.send().await.unwrap().text().await.unwrap();
    assert!(!text.contains(KEY), "{text}");
    server.stop().await;
    let log = String::from_utf8_lossy(&log().lock().unwrap()).to_string();
    assert!(!log.contains(KEY), "the key is in the log");
}

/// A server secret a client pastes into its messages (the value of `OPENAI_API_KEY`) is masked
/// before the turn is stored or sent: echo, which quotes the message back, never receives it,
/// and no reply, stream or stored message in any dialect shows it.
#[tokio::test]
async fn pasted_server_secrets_are_masked_before_storing_and_sending() {
    log();
    let env = vec![("OPENAI_API_KEY", KEY.to_string())];
    let setup = Setup { plugins: vec!["echo", "openai"], env, background_memory: false, ..Setup::default() };
    let server = TestServer::start(setup).await;
    let pasted = format!("my key is {KEY} keep it");
    let bodies = [
        ("/chat", json!({"message": pasted, "provider": "echo", "system": pasted})),
        (
            "/v1/chat/completions",
            json!({"model": "echo/demo", "messages": [
                {"role": "system", "content": pasted},
                {"role": "user", "content": [{"type": "text", "text": pasted}], "name": "n"},
            ]}),
        ),
        (
            "/v1/messages",
            json!({"model": "echo/demo", "max_tokens": 100, "system": pasted,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": pasted}]}]}),
        ),
        ("/v1/responses", json!({"model": "echo/demo", "instructions": pasted, "input": pasted})),
    ];
    for (path, body) in bodies {
        for stream in [false, true] {
            let mut body = body.clone();
            body["stream"] = json!(stream);
            let session = format!("pasted{}-{stream}", path.replace('/', "-"));
            let r = server
                .client
                .post(server.url(path))
                .header("anthropic-version", "2023-06-01")
                .header("x-session-id", &session)
                .json(&body);
            let response = r.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path} {stream}");
            let text = response.text().await.unwrap();
            assert!(!text.contains(KEY), "{path} {stream}: {text}");
            if !stream {
                // Echo quotes what it was sent: the mask, so the key never left the host.
                assert!(text.contains(MASK), "{path}: {text}");
            }
        }
    }
    let (status, sessions) = server.get("/sessions").await;
    assert_eq!(status, 200, "{sessions}");
    assert!(!sessions.to_string().contains(KEY), "{sessions}");
    let sessions = sessions["sessions"].as_array().unwrap().clone();
    assert!(sessions.len() >= 7, "{sessions:?}");
    for session in sessions {
        let id = session["id"].as_str().unwrap().to_string();
        let (status, stored) = server.get(&format!("/memory/{id}")).await;
        assert_eq!(status, 200, "{stored}");
        let stored = stored.to_string();
        assert!(!stored.contains(KEY) && stored.contains(MASK), "{id}: {stored}");
    }
    server.stop().await;
    let log = String::from_utf8_lossy(&log().lock().unwrap()).to_string();
    assert!(!log.contains(KEY), "the key is in the log");
}

/// A hostile plugin that gets its own key echoed back by the vendor it may reach, and then
/// tries to carry it out in its reply (plain and streamed), its log lines at every level and its
/// stdout and stderr: the key reaches the vendor, and no client, stored message or log.
#[tokio::test]
async fn a_hostile_plugin_cannot_exfiltrate_its_key() {
    const DUMMY_KEY: &str = "sk-hostile-dummy-0123456789";
    const DUMMY_MASK: &str = "[redacted:DUMMY_KEY]";
    log();
    let vendor = MockServer::start(|request| Reply::json(200, json!({ "heard": heard(request) }))).await;
    let grants = format!("allowed_hosts = [\"{0}\"]\n[secrets]\nDUMMY_KEY = [\"{0}\"]", vendor.url);
    let custom = vec![common::plugin_with("dummy", move |m| m.replace("allowed_hosts = []", &grants))];
    let env = vec![("DUMMY_KEY", DUMMY_KEY.to_string())];
    let configure = |c: &mut codexcontinue::config::Config| c.providers.retries = 0;
    let setup = Setup { plugins: vec![], custom, env, configure, background_memory: false, ..Setup::default() };
    let server = TestServer::start(setup).await;
    let model = format!("leak:{}/v1", vendor.url);

    let body = json!({ "message": "leak it", "provider": "dummy", "model": model });
    let (status, reply) = server.post("/chat", body).await;
    assert_eq!(status, 200, "{reply}");
    let text = reply["reply"].as_str().unwrap();
    assert!(text.contains(DUMMY_MASK) && !text.contains(DUMMY_KEY), "{text}");
    assert_eq!(heard(&vendor.requests()[0]), format!("Bearer {DUMMY_KEY}"), "the vendor did get the key");

    let body = json!({ "model": format!("dummy/{model}"), "stream": true,
                       "messages": [{"role": "user", "content": "leak it"}] });
    let r = server.client.post(server.url("/v1/chat/completions")).header("x-session-id", "leak-streamed").json(&body);
    let sse = r.send().await.unwrap().text().await.unwrap();
    assert!(sse.contains("redacted:DUMMY_KEY") && !sse.contains(DUMMY_KEY), "{sse}");

    let native = reply["session_id"].as_str().unwrap().to_string();
    for session in [native.as_str(), "leak-streamed"] {
        let (status, stored) = server.get(&format!("/memory/{session}")).await;
        assert_eq!(status, 200, "{stored}");
        assert!(!stored.to_string().contains(DUMMY_KEY), "{session}: {stored}");
    }
    server.stop().await;
    let log = String::from_utf8_lossy(&log().lock().unwrap()).to_string();
    let leaked: Vec<&str> = log.lines().filter(|l| l.contains(DUMMY_KEY)).collect();
    assert!(leaked.is_empty(), "the key is in the log: {leaked:#?}");
    assert!(log.contains(&format!("stdout: 200 {{\"heard\":\"Bearer {DUMMY_MASK}\"}}")), "guest output was not logged");
    assert!(log.contains(&format!("Bearer {DUMMY_MASK}")), "guest log lines were not logged");
}
