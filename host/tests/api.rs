//! The HTTP API end to end: a real server on an ephemeral port with the real echo plugin.

mod common;

use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

/// A first chat answers through the echo demo, opens a session and reports usage.
#[tokio::test]
async fn chat_answers_with_a_new_session_and_usage() {
    let server = TestServer::start(Setup::default()).await;
    let (status, body) = server.chat("hello", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "echo (offline demo)");
    assert_eq!(body["model"], "echo");
    assert!(body["reply"].as_str().unwrap().contains("hello"), "{body}");
    assert!(uuid_like(body["session_id"].as_str().unwrap()), "{body}");
    assert_eq!(body["message_id"], 2);
    assert_eq!(body["finish_reason"], "stop");
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    server.stop().await;
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4
}

/// Continuing a session sends its history to the provider and appends to it in order.
#[tokio::test]
async fn sessions_remember_and_history_reads_back_in_order() {
    let server = TestServer::start(Setup::default()).await;
    let (_, first) = server.chat("my name is Ada", json!({})).await;
    let session = first["session_id"].as_str().unwrap().to_string();
    let (status, second) = server.chat("what is my name?", json!({ "session_id": session })).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["session_id"], session.as_str());
    // The echo demo reports how much history it was given.
    assert!(second["reply"].as_str().unwrap().contains("2 earlier messages"), "{second}");
    assert_eq!(second["message_id"], 4);

    let (status, history) = server.get(&format!("/memory/{session}")).await;
    assert_eq!(status, 200, "{history}");
    let messages = history["messages"].as_array().unwrap();
    let summary: Vec<(u64, &str)> =
        messages.iter().map(|m| (m["id"].as_u64().unwrap(), m["role"].as_str().unwrap())).collect();
    assert_eq!(summary, [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]);
    assert_eq!(messages[0]["content"], "my name is Ada");
    assert_eq!(messages[3]["content"], second["reply"]);
    for m in messages {
        assert!(m["created_at"].as_str().unwrap().ends_with('Z'), "{m}");
    }
    assert_eq!(history["session"]["id"], session.as_str());
    assert_eq!(history["session"]["title"], "my name is Ada");
    assert_eq!(history["session"]["message_count"], 4);
    assert_eq!(history["next_before"], Value::Null);
    server.stop().await;
}

/// `limit` and `before` page backwards through long histories.
#[tokio::test]
async fn history_paginates() {
    let server = TestServer::start(Setup::default()).await;
    let (_, first) = server.chat("one", json!({})).await;
    let session = first["session_id"].as_str().unwrap().to_string();
    for text in ["two", "three"] {
        server.chat(text, json!({ "session_id": session })).await;
    }
    let (_, page) = server.get(&format!("/memory/{session}?limit=4")).await;
    let ids: Vec<u64> = page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [3, 4, 5, 6]);
    assert_eq!(page["next_before"], 3);
    let (_, page) = server.get(&format!("/memory/{session}?limit=4&before=3")).await;
    let ids: Vec<u64> = page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(page["next_before"], Value::Null);
    let (status, body) = server.get(&format!("/memory/{session}?limit=0")).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_parameter"));
    server.stop().await;
}

/// Deleting a session answers 204; afterwards it is gone for reads, writes and deletes.
#[tokio::test]
async fn delete_removes_the_session() {
    let server = TestServer::start(Setup::default()).await;
    let (_, first) = server.chat("forget me", json!({})).await;
    let session = first["session_id"].as_str().unwrap().to_string();
    let (status, body) = server.delete(&format!("/memory/{session}")).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.get(&format!("/memory/{session}")).await;
    assert_eq!((status, error_code(&body)), (404, "session_not_found"));
    let (status, body) = server.delete(&format!("/memory/{session}")).await;
    assert_eq!((status, error_code(&body)), (404, "session_not_found"));
    let (status, body) = server.chat("again", json!({ "session_id": session })).await;
    assert_eq!((status, error_code(&body)), (404, "session_not_found"));
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"], json!([]));
    server.stop().await;
}

/// `/sessions` lists a user's chats, newest activity first, and only theirs.
#[tokio::test]
async fn sessions_are_listed_per_user() {
    let server = TestServer::start(Setup::default()).await;
    let (_, a) = server.chat("first chat", json!({ "user_id": "alice" })).await;
    let (_, b) = server.chat("second chat", json!({ "user_id": "alice" })).await;
    server.chat("bob's chat", json!({ "user_id": "bob" })).await;
    // Activity in the first chat moves it to the top.
    server.chat("more", json!({ "user_id": "alice", "session_id": a["session_id"] })).await;

    let (status, body) = server.get("/sessions?user_id=alice").await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    let ids: Vec<&Value> = sessions.iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&a["session_id"], &b["session_id"]]);
    assert_eq!(sessions[0]["title"], "first chat");
    assert_eq!(sessions[0]["message_count"], 4);
    assert!(sessions[0]["updated_at"].as_str().unwrap() >= sessions[1]["updated_at"].as_str().unwrap());

    // The header works too.
    let r = server.client.get(server.url("/sessions")).header("x-user-id", "bob").send().await.unwrap();
    let (_, body) = common::response(r).await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(body["sessions"][0]["title"], "bob's chat");
    server.stop().await;
}

/// One user can neither read, extend nor delete another user's session: it does not exist
/// for them.
#[tokio::test]
async fn users_cannot_reach_each_others_sessions() {
    let server = TestServer::start(Setup::default()).await;
    let (_, a) = server.chat("alice's secret plan", json!({ "user_id": "alice" })).await;
    let session = a["session_id"].as_str().unwrap();
    let (status, body) = server.get(&format!("/memory/{session}?user_id=mallory")).await;
    assert_eq!((status, error_code(&body)), (404, "session_not_found"));
    let (status, body) = server.chat("hi", json!({ "user_id": "mallory", "session_id": session })).await;
    assert_eq!((status, error_code(&body)), (404, "session_not_found"));
    let (status, _) = server.delete(&format!("/memory/{session}?user_id=mallory")).await;
    assert_eq!(status, 404);
    let (status, body) = server.get(&format!("/memory/{session}?user_id=alice")).await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
    server.stop().await;
}

/// Every kind of bad input gets the documented status and a JSON error, and stores nothing.
#[tokio::test]
async fn bad_inputs_get_clear_json_errors() {
    let configure = |c: &mut codexcontinue::config::Config| {
        c.limits.max_message_chars = 100;
        c.limits.max_body_bytes = 1 << 20;
    };
    let server = TestServer::start(Setup { configure, ..Setup::default() }).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({ "message": "" }), 422, "empty_message"),
        (json!({ "message": "   \n " }), 422, "empty_message"),
        (json!({ "message": "x".repeat(101) }), 413, "message_too_long"),
        (json!({}), 422, "invalid_body"),
        (json!({ "message": 42 }), 422, "invalid_body"),
        (json!({ "message": "hi", "temprature": 1 }), 422, "invalid_body"),
        (json!({ "message": "hi", "temperature": 7 }), 422, "invalid_parameter"),
        (json!({ "message": "hi", "max_tokens": 0 }), 422, "invalid_parameter"),
        (json!({ "message": "hi", "session_id": "no-such-session" }), 404, "session_not_found"),
        (json!({ "message": "hi", "session_id": "" }), 400, "invalid_session_id"),
        (json!({ "message": "hi", "session_id": "a\u{0}b" }), 400, "invalid_session_id"),
        (json!({ "message": "hi", "session_id": "facts" }), 400, "invalid_session_id"),
        (json!({ "message": "hi", "provider": "nope" }), 404, "provider_not_found"),
        (json!({ "message": "hi", "user_id": "bad user!" }), 400, "invalid_user_id"),
    ];
    for (body, status, code) in cases {
        let (got, reply) = server.post("/chat", body.clone()).await;
        assert_eq!((got, error_code(&reply)), (status, code), "for {body}: {reply}");
    }

    let raw = |body: &'static str, content_type: &'static str| {
        server.client.post(server.url("/chat")).header("content-type", content_type).body(body).send()
    };
    let (status, body) = common::response(raw("{\"message\": ", "application/json").await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_json"));
    let (status, body) = common::response(raw("message=hi", "application/x-www-form-urlencoded").await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (415, "unsupported_media_type"));

    let huge = json!({ "message": "x".repeat(2 << 20) }).to_string();
    let r = server
        .client
        .post(server.url("/chat"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, body) = common::response(r).await;
    assert_eq!((status, error_code(&body)), (413, "body_too_large"));

    // A malformed X-User-Id is refused even when the body names a valid user.
    let r = server.client.post(server.url("/chat")).header("x-user-id", "bad user!").json(&json!({
        "message": "hi", "user_id": "alice"
    }));
    let (status, body) = common::response(r.send().await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_user_id"));

    // Ids no session can have are refused as malformed, on every route that takes one.
    for (method, path) in [("GET", "/memory/a%00b"), ("DELETE", "/memory/a%00b"), ("GET", "/memory/%20")] {
        let r = server.client.request(method.parse().unwrap(), server.url(path)).send().await.unwrap();
        let (status, body) = common::response(r).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_session_id"), "{method} {path}");
    }

    let (status, body) = server.get("/nowhere").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = server.get("/chat").await;
    assert_eq!((status, error_code(&body)), (405, "method_not_allowed"));

    // None of it created a session.
    let (_, sessions) = server.get("/sessions").await;
    assert_eq!(sessions["sessions"], json!([]));
    server.stop().await;
}

/// `/status` reports the version, store and every plugin, including one that failed to load
/// and why; `/healthz` answers.
#[tokio::test]
async fn status_reports_plugins_and_failures() {
    let broken = (
        "broken".to_string(),
        "id = \"broken\"\nversion = \"1.0.0\"\nkind = \"provider\"\nwit = \"0.1.0\"\n".to_string(),
        b"not wasm".to_vec(),
    );
    let server = TestServer::start(Setup { custom: vec![broken], ..Setup::default() }).await;
    let (status, body) = server.get("/status").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["store"], "sled");
    assert_eq!(body["default_provider"], "echo");
    assert!(body["uptime_seconds"].as_u64().is_some());
    let plugins = body["plugins"].as_array().unwrap();
    let echo = plugins.iter().find(|p| p["id"] == "echo").expect("echo listed");
    assert_eq!(echo["state"], "active");
    assert_eq!(echo["kind"], "provider");
    assert_eq!(echo["demo"], true);
    assert_eq!(echo["default_model"], "echo");
    assert!(echo["loaded_at"].as_str().is_some() && echo["load_ms"].as_u64().is_some());
    assert_eq!(echo["last_error"], Value::Null);
    let broken = plugins.iter().find(|p| p["id"] == "broken").expect("broken listed");
    assert_eq!(broken["state"], "failed");
    assert_eq!(broken["last_error"]["step"], "compile");
    assert!(broken["last_error"]["message"].as_str().unwrap().len() > 5);

    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    server.stop().await;
}

/// `--store memory` works the same but reports itself.
#[tokio::test]
async fn memory_store_mode() {
    let server = TestServer::start(Setup { store: codexcontinue::config::StoreKind::Memory, ..Setup::default() }).await;
    let (_, first) = server.chat("hello", json!({})).await;
    let session = first["session_id"].as_str().unwrap();
    let (status, _) = server.get(&format!("/memory/{session}")).await;
    assert_eq!(status, 200);
    let (_, status) = server.get("/status").await;
    assert_eq!(status["store"], "memory");
    server.stop().await;
}

/// `"stream": true` answers with server-sent events whose deltas add up to the stored reply.
#[tokio::test]
async fn chat_streams_server_sent_events() {
    let server = TestServer::start(Setup::default()).await;
    let r = server
        .client
        .post(server.url("/chat"))
        .json(&json!({ "message": "stream this please", "stream": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = parse_sse(&r.text().await.unwrap());
    assert_eq!(events.first().unwrap().0, "start");
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done", "{events:?}");
    let deltas: String =
        events.iter().filter(|(e, _)| e == "delta").map(|(_, d)| d["content"].as_str().unwrap().to_string()).collect();
    assert!(events.iter().filter(|(e, _)| e == "delta").count() > 3);
    assert_eq!(deltas, done["reply"].as_str().unwrap());
    let session = done["session_id"].as_str().unwrap();
    assert_eq!(events[0].1["session_id"], session);
    assert_eq!(events[0].1["provider"], "echo (offline demo)");
    assert_eq!(done["provider"], "echo (offline demo)");
    let (_, history) = server.get(&format!("/memory/{session}")).await;
    assert_eq!(history["messages"][1]["content"], done["reply"]);
    // A stored reply keeps what the live one reported.
    let stored = &history["messages"][1]["metadata"];
    for key in ["provider", "model", "usage", "finish_reason", "memory"] {
        assert_eq!(stored[key], done[key], "{key} in {stored}");
    }
    server.stop().await;
}

/// (event, data) pairs of an SSE body.
fn parse_sse(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            Some((event?, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

/// The default provider is the first preferred one whose keys are all set, else the demo; a
/// request can pick any loaded provider, and one without its key gets a clear 503.
#[tokio::test]
async fn default_provider_follows_the_keys_found() {
    let (manifest, wasm) = common::plugin("dummy");
    let openai = common::without_env(&std::fs::read_to_string(manifest).unwrap())
        .replace("id = \"dummy\"", "id = \"openai\"")
        + "\n[secrets]\nOPENAI_API_KEY = [\"https://api.openai.com\"]\n";
    let custom = vec![("openai".to_string(), openai, std::fs::read(wasm).unwrap())];

    let server = TestServer::start(Setup { custom: custom.clone(), ..Setup::default() }).await;
    let (_, body) = server.chat("hi", json!({})).await;
    assert_eq!(body["provider"], "echo (offline demo)");
    let (status, body) = server.chat("hi", json!({ "provider": "openai" })).await;
    assert_eq!((status, error_code(&body)), (503, "provider_not_configured"));
    assert!(body["error"]["message"].as_str().unwrap().contains("OPENAI_API_KEY"), "{body}");
    let (_, status) = server.get("/status").await;
    assert_eq!(status["default_provider"], "echo");
    server.stop().await;

    let env = vec![("OPENAI_API_KEY", "sk-test".to_string())];
    let server = TestServer::start(Setup { custom, env, ..Setup::default() }).await;
    let (status, body) = server.chat("hi", json!({})).await;
    assert_eq!((status, &body["provider"]), (200, &json!("openai")), "{body}");
    let (_, body) = server.chat("hi", json!({ "provider": "echo" })).await;
    assert_eq!(body["provider"], "echo (offline demo)");
    let (_, body) = server.chat("hi", json!({ "model": "stream" })).await;
    assert_eq!(body["model"], "stream", "the request's model reaches the provider");
    server.stop().await;
}

/// `/metrics` counts requests by route template and plugin calls by outcome, and lists the
/// plugin versions loaded.
#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let server = TestServer::start(Setup::default()).await;
    let (_, first) = server.chat("hello", json!({})).await;
    server.get(&format!("/memory/{}", first["session_id"].as_str().unwrap())).await;
    let r = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let has = |needle: &str| text.lines().any(|l| l.starts_with(needle));
    assert!(has("codexcontinue_http_requests_total{method=\"POST\",route=\"/chat\",status=\"200\"}"), "{text}");
    assert!(
        has("codexcontinue_http_requests_total{method=\"GET\",route=\"/memory/{session_id}\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("codexcontinue_plugin_calls_total{")
            && l.contains("plugin=\"echo\"")
            && l.contains("outcome=\"ok\"")),
        "{text}"
    );
    assert!(has("codexcontinue_plugin_call_duration_seconds_bucket{"), "{text}");
    assert!(has("codexcontinue_plugin_loaded{plugin=\"echo\",version=\"0.1.0\",role=\"stable\"} 1"), "{text}");
    server.stop().await;
}

/// Memory plugins that are not the store are loaded but never initialised: the server does not
/// connect to (or migrate) databases it does not use; the one that is the store must connect.
#[tokio::test]
async fn unused_memory_plugins_touch_no_database() {
    let unreachable = vec![("REDIS_URL", "redis://127.0.0.1:9".to_string())];
    let server = TestServer::start(Setup {
        plugins: vec!["echo", "redis-memory"],
        env: unreachable.clone(),
        ..Setup::default()
    })
    .await;
    let (_, status) = server.get("/status").await;
    let redis = status["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "redis-memory").unwrap().clone();
    assert_eq!((redis["state"].as_str(), redis["kind"].as_str()), (Some("active"), Some("memory")), "{redis}");
    server.stop().await;

    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    for ext in ["toml", "wasm"] {
        let (manifest, wasm) = common::plugin("redis-memory");
        let from = if ext == "toml" { manifest } else { wasm };
        std::fs::copy(from, plugins.path().join(format!("redis-memory.{ext}"))).unwrap();
    }
    let config = codexcontinue::config::Config {
        data_dir: data.path().to_path_buf(),
        plugins_dir: plugins.path().to_path_buf(),
        store: codexcontinue::config::StoreKind::Plugin("redis-memory".into()),
        cache_dir: Some(common::shared_cache()),
        ..Default::default()
    };
    let error =
        codexcontinue::start(config, unreachable.into_iter().collect()).await.err().expect("the store cannot connect");
    assert!(error.to_string().contains("redis-memory"), "{error}");
}

/// A server with the dummy provider and a copy of it under another id, `other`.
async fn two_dummies() -> TestServer {
    let (manifest, wasm) = common::plugin("dummy");
    let other =
        common::without_env(&std::fs::read_to_string(manifest).unwrap()).replace("id = \"dummy\"", "id = \"other\"");
    let custom = vec![("other".into(), other, std::fs::read(wasm).unwrap())];
    TestServer::start(Setup { plugins: vec!["dummy"], custom, ..Setup::default() }).await
}

/// A reply's reasoning is stored with the turn and replayed, signatures unchanged, when the
/// next turn goes to the same provider, and never to another one; `/chat` shows the
/// reasoning text, as JSON and as `reasoning` events before the deltas.
#[tokio::test]
async fn stored_reasoning_replays_only_to_its_provider() {
    let server = two_dummies().await;
    let (status, first) = server.chat("why?", json!({ "provider": "dummy", "model": "think" })).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!((first["reply"].as_str(), first["reasoning"].as_str()), (Some("thought"), Some("Thinking hard.")));
    let session = first["session_id"].as_str().unwrap().to_string();
    let (_, history) = server.get(&format!("/memory/{session}")).await;
    let stored = &history["messages"][1]["metadata"];
    assert_eq!(stored["reasoning"][0]["signature"], "sig-dummy-1", "{history}");
    assert_eq!(stored["reasoning"][1]["encrypted_content"], "enc-dummy-2");

    let next = json!({ "session_id": session, "provider": "dummy", "model": "think" });
    let (_, second) = server.chat("and then?", next).await;
    assert_eq!(second["reply"], "thought; replayed sig-dummy-1 enc-dummy-2", "{second}");
    let elsewhere = json!({ "session_id": session, "provider": "other", "model": "think" });
    let (_, third) = server.chat("and else?", elsewhere).await;
    assert_eq!(third["reply"], "thought", "another provider gets no signature: {third}");

    let body = json!({ "message": "why?", "provider": "dummy", "model": "think", "stream": true });
    let text = server.client.post(server.url("/chat")).json(&body).send().await.unwrap().text().await.unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names, ["start", "reasoning", "reasoning", "delta", "done"], "{text}");
    server.stop().await;
}

/// `/chat` takes images as URLs after the message, in order; memory keeps the text and the
/// images' media types, never their bytes; an image no vendor could use is refused.
#[tokio::test]
async fn chat_images_reach_the_provider() {
    let server = two_dummies().await;
    let images = json!(["https://example.com/cat.jpg", "data:image/png;base64,iVBORw0KGgo="]);
    let (status, body) = server.chat("look", json!({ "provider": "dummy", "model": "parts", "images": images })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"], "text look\nurl https://example.com/cat.jpg\nbase64 image/png 12");
    let (_, history) = server.get(&format!("/memory/{}", body["session_id"].as_str().unwrap())).await;
    let input = &history["messages"][0];
    assert_eq!(input["content"], "look");
    assert_eq!(input["metadata"]["images"], json!(["url", "image/png"]), "{history}");
    assert!(!history.to_string().contains("iVBORw0KGgo"), "no image bytes are stored: {history}");
    let bad = json!({ "provider": "dummy", "model": "parts", "images": ["ftp://example.com/cat.jpg"] });
    let (status, body) = server.chat("look", bad).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_parameter"));
    server.stop().await;
}
