//! The OpenAI-compatible `/v1` surface, as OpenAI SDKs and editor extensions call it.

mod common;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

async fn server() -> TestServer {
    let configure = |c: &mut codexcontinue::config::Config| c.providers.retries = 0;
    TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await
}

async fn completion(server: &TestServer, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.client.post(server.url("/v1/chat/completions")).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    common::response(request.send().await.unwrap()).await
}

/// A plain completion comes back as a `chat.completion` object with usage.
#[tokio::test]
async fn chat_completion_has_the_openai_shape() {
    let server = server().await;
    let body = json!({ "model": "echo", "messages": [{ "role": "system", "content": "be kind" }, { "role": "user", "content": "hello there" }] });
    let (status, reply) = completion(&server, body, &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["object"], "chat.completion");
    assert!(reply["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(reply["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(reply["model"], "echo");
    let choice = &reply["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["content"].as_str().unwrap().contains("hello there"));
    assert_eq!(choice["finish_reason"], "stop");
    assert!(reply["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    server.stop().await;
}

/// Content given as a list of text and image parts reaches the provider in order, images by
/// https or data URL; other parts, and images no vendor could use, are refused clearly.
#[tokio::test]
async fn content_parts() {
    let server = server().await;
    let body = json!({ "messages": [{ "role": "user", "content": [{ "type": "text", "text": "from parts" }] }] });
    let (status, reply) = completion(&server, body, &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["choices"][0]["message"]["content"].as_str().unwrap().contains("from parts"));
    let image = |url: &str| {
        json!({ "model": "dummy/parts", "messages": [{ "role": "user", "content": [
        { "type": "text", "text": "look" }, { "type": "image_url", "image_url": { "url": url, "detail": "low" } }] }] })
    };
    let (status, reply) = completion(&server, image("https://example.com/cat.jpg"), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "text look\nurl https://example.com/cat.jpg");
    let (_, reply) = completion(&server, image("data:image/webp;base64,UklGRg=="), &[]).await;
    assert_eq!(reply["choices"][0]["message"]["content"], "text look\nbase64 image/webp 8");
    for url in ["x", "data:image/svg+xml;base64,PHN2Zz4=", "data:image/png;base64,###"] {
        let (status, reply) = completion(&server, image(url), &[]).await;
        assert_eq!((status, error_code(&reply)), (422, "invalid_parameter"), "{url}: {reply}");
    }
    let audio = json!({ "messages": [{ "role": "user", "content": [{ "type": "input_audio", "input_audio": {} }] }] });
    let (status, reply) = completion(&server, audio, &[]).await;
    assert_eq!((status, error_code(&reply)), (422, "invalid_parameter"));
    server.stop().await;
}

/// Reasoning comes out as `reasoning_content` (whole, and as `delta.reasoning_content` chunks
/// before the content); a refusal is `message.refusal` with `content: null`, and streamed,
/// a `delta.refusal` before the finish chunk.
#[tokio::test]
async fn reasoning_content_and_refusals() {
    let server = server().await;
    let ask = |model: &str, stream: bool| json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": "why?" }] });
    let (status, reply) = completion(&server, ask("dummy/think", false), &[]).await;
    assert_eq!(status, 200, "{reply}");
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["content"], "thought");
    assert_eq!(message["reasoning_content"], "Thinking hard.");
    assert_eq!(message["refusal"], Value::Null);

    let (_, reply) = completion(&server, ask("dummy/refuse", false), &[]).await;
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null, "{reply}");
    assert_eq!(message["refusal"], "I can't help with that.");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");

    let chunks = |text: String| -> Vec<Value> {
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    };
    let deltas = |chunks: &[Value], key: &str| -> Vec<String> {
        chunks.iter().filter_map(|c| c["choices"][0]["delta"][key].as_str().map(str::to_string)).collect()
    };
    let r =
        server.client.post(server.url("/v1/chat/completions")).json(&ask("dummy/think", true)).send().await.unwrap();
    let streamed = chunks(r.text().await.unwrap());
    assert_eq!(deltas(&streamed, "reasoning_content"), ["Thinking ", "hard."]);
    let first_content = streamed.iter().position(|c| c["choices"][0]["delta"]["content"] == "thought").unwrap();
    let last_reasoning =
        streamed.iter().rposition(|c| c["choices"][0]["delta"]["reasoning_content"].is_string()).unwrap();
    assert!(last_reasoning < first_content, "reasoning streams before the content");

    let r =
        server.client.post(server.url("/v1/chat/completions")).json(&ask("dummy/refuse", true)).send().await.unwrap();
    let streamed = chunks(r.text().await.unwrap());
    assert_eq!(deltas(&streamed, "refusal"), ["I can't help with that."]);
    let refusal = streamed.iter().position(|c| c["choices"][0]["delta"]["refusal"].is_string()).unwrap();
    assert_eq!(streamed[refusal + 1]["choices"][0]["finish_reason"], "stop");
    server.stop().await;
}

/// Streaming sends a role chunk, content chunks, a finish chunk, a usage chunk on request,
/// then `[DONE]`.
#[tokio::test]
async fn streaming_chunks_end_with_done() {
    let server = server().await;
    let body = json!({ "messages": [{ "role": "user", "content": "count these words" }], "stream": true, "stream_options": { "include_usage": true } });
    let r = server.client.post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(*data.last().unwrap(), "[DONE]", "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(content.contains("count these words"), "{content}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    server.stop().await;
}

/// `X-Session-Id` stores turns; a client that sends only its newest message gets the history.
/// The id is the user's own.
#[tokio::test]
async fn session_header_turns_on_memory() {
    let server = server().await;
    let session = [("x-session-id", "editor-chat-1")];
    let first = json!({ "messages": [{ "role": "user", "content": "remember the number 42" }] });
    let (status, _) = completion(&server, first, &session).await;
    assert_eq!(status, 200);
    let second = json!({ "messages": [{ "role": "user", "content": "what number?" }] });
    let (_, reply) = completion(&server, second, &session).await;
    // The echo demo reports how many earlier messages it was given.
    assert!(reply["choices"][0]["message"]["content"].as_str().unwrap().contains("2 earlier messages"), "{reply}");
    let (status, history) = server.get("/memory/editor-chat-1").await;
    assert_eq!(status, 200);
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), 4);
    assert_eq!(contents[0], "remember the number 42");
    assert_eq!(contents[2], "what number?");

    // Session ids are per user: another user naming the same id gets a session of their own,
    // and neither sees the other's.
    let (status, reply) =
        completion(&server, json!({ "messages": [{ "role": "user", "content": "x" }], "user": "mallory" }), &session)
            .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["choices"][0]["message"]["content"].as_str().unwrap().contains("0 earlier messages"), "{reply}");
    let (_, theirs) = server.get("/memory/editor-chat-1?user_id=mallory").await;
    assert_eq!(theirs["messages"].as_array().unwrap().len(), 2, "{theirs}");
    assert_eq!(theirs["messages"][0]["content"], "x");
    let (_, history) = server.get("/memory/editor-chat-1").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 4, "{history}");
    server.stop().await;
}

/// A client that sends its own history keeps it, gets the long-term section (what slid out of
/// its window) added, and each turn stores only what is new: its message or tool results.
#[tokio::test]
async fn client_history_gets_long_term_memory() {
    let configure = |c: &mut codexcontinue::config::Config| {
        c.providers.retries = 0;
        c.memory.window_messages = 4;
    };
    let server = TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await;
    let session = [("x-session-id", "client-history")];
    let mut history = vec![json!({ "role": "user", "content": "We picked Postgres for the audit log." })];
    for i in 0..6 {
        let (status, reply) = completion(&server, json!({ "model": "echo", "messages": history }), &session).await;
        assert_eq!(status, 200, "{reply}");
        history.push(json!({ "role": "assistant", "content": reply["choices"][0]["message"]["content"] }));
        history.push(json!({ "role": "user", "content": format!("small talk {i}") }));
    }
    // The client now sends only its recent turns, as editors trim long chats.
    let recent: Vec<Value> = history[history.len() - 3..].to_vec();
    let mut messages = vec![json!({ "role": "system", "content": "be brief" })];
    messages.extend(recent.iter().cloned());
    messages.push(json!({ "role": "assistant", "content": "" , "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "db", "arguments": "{}" } }] }));
    messages.push(json!({ "role": "tool", "tool_call_id": "call_1", "content": "which database for the audit log?" }));
    let (status, reply) = completion(&server, json!({ "model": "dummy/prompt", "messages": messages }), &session).await;
    assert_eq!(status, 200, "{reply}");
    let prompt = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let lines: Vec<&str> = prompt.lines().collect();
    assert_eq!(lines[0], "system: be brief", "{prompt}");
    assert!(lines[1].starts_with("system: ") && prompt.contains("postgres for the audit log"), "{prompt}");
    assert_eq!(lines.last(), Some(&"tool: which database for the audit log?"), "{prompt}");

    let (_, stored) = server.get("/memory/client-history").await;
    let stored = stored["messages"].as_array().unwrap();
    let last_two: Vec<(&str, &str)> = stored[stored.len() - 2..]
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(last_two[0], ("tool", "which database for the audit log?"), "only the new input is stored: {stored:?}");
    assert_eq!(last_two[1].0, "assistant");
    assert_eq!(stored.iter().filter(|m| m["content"] == "small talk 4").count(), 1, "no turn stored twice");
    server.stop().await;
}

/// Without a session nothing is stored, but the user's facts apply: "remember that …" keeps
/// one, later requests carry it after the client's system message and otherwise as sent, and
/// "forget …" removes it.
#[tokio::test]
async fn requests_without_a_session_keep_and_get_facts() {
    let server = server().await;
    let ask = |text: &str| {
        json!({ "model": "dummy/prompt", "messages": [
            { "role": "system", "content": "be brief" },
            { "role": "user", "content": "earlier question" },
            { "role": "assistant", "content": "earlier answer" },
            { "role": "user", "content": text },
        ] })
    };
    let (status, reply) = completion(&server, ask("Hello there."), &[]).await;
    assert_eq!(status, 200, "{reply}");
    let before = reply["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert_eq!(
        before.lines().collect::<Vec<_>>(),
        ["system: be brief", "user: earlier question", "assistant: earlier answer", "user: hello there."],
        "{before}"
    );
    completion(&server, ask("Please remember that the deploy day is Tuesday."), &[]).await;
    let (_, facts) = server.get("/memory/facts").await;
    assert_eq!(facts["facts"][0]["statement"], "The deploy day is Tuesday.", "{facts}");

    let (_, reply) = completion(&server, ask("When do we deploy?"), &[]).await;
    let prompt = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let lines: Vec<&str> = prompt.lines().collect();
    assert_eq!(lines[0], "system: be brief", "{prompt}");
    // The prompt model reports what it was sent, in lower case.
    assert!(
        lines[1].starts_with("system: long-term memory") && prompt.contains("- the deploy day is tuesday."),
        "{prompt}"
    );
    assert!(
        prompt.ends_with("user: earlier question\nassistant: earlier answer\nuser: when do we deploy?"),
        "{prompt}"
    );
    let (_, sessions) = server.get("/sessions").await;
    assert!(sessions["sessions"].as_array().unwrap().is_empty(), "nothing was stored as a chat: {sessions}");

    completion(&server, ask("Forget the deploy day."), &[]).await;
    let (_, reply) = completion(&server, ask("When do we deploy?"), &[]).await;
    assert!(!reply.to_string().to_lowercase().contains("tuesday"), "{reply}");
    server.stop().await;
}

/// `provider/model` and `X-Provider` route to a provider; unknown prefixes stay model names.
#[tokio::test]
async fn routing_by_model_prefix_and_header() {
    let server = server().await;
    let user = |model: &str| json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] });
    let (_, reply) = completion(&server, user("dummy/ok"), &[]).await;
    assert_eq!((reply["model"].as_str(), reply["choices"][0]["message"]["content"].as_str()), (Some("ok"), Some("ok")));
    let (_, reply) = completion(&server, user("ok"), &[("x-provider", "dummy")]).await;
    assert_eq!(reply["choices"][0]["message"]["content"], "ok");
    let (status, reply) = completion(&server, user("nope/model"), &[]).await;
    assert_eq!(status, 200, "an unknown prefix is part of the model name: {reply}");
    assert_eq!(reply["model"], "echo", "the echo demo answers as `echo` whatever it is asked");
    let (status, reply) = completion(&server, user("dummy/error-429"), &[]).await;
    assert_eq!((status, error_code(&reply)), (429, "rate_limited"));
    server.stop().await;
}

/// `[providers.aliases]` route the model names agents send to any provider: exact names first,
/// then the most specific pattern; `/v1/models` and `/status` show them.
#[tokio::test]
async fn model_aliases_route_agents_models() {
    let configure = |c: &mut codexcontinue::config::Config| {
        c.providers.retries = 0;
        let aliases = [("claude-*", "dummy/ok"), ("claude-haiku-*", "dummy/prompt"), ("fast", "echo")];
        c.providers.aliases = aliases.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    };
    let server = TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await;
    let ask = |model: &str| json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] });
    let (_, reply) = completion(&server, ask("claude-opus-5-5"), &[]).await;
    assert_eq!(reply["choices"][0]["message"]["content"], "ok", "{reply}");
    let (_, reply) = completion(&server, ask("claude-haiku-4-5"), &[]).await;
    assert_eq!(reply["choices"][0]["message"]["content"], "user: hi", "the longer pattern wins: {reply}");
    let (_, reply) = completion(&server, ask("fast"), &[]).await;
    assert_eq!(reply["model"], "echo", "{reply}");
    let (_, models) = server.get("/v1/models").await;
    let fast = models["data"].as_array().unwrap().iter().find(|m| m["id"] == "fast").expect("exact aliases are listed");
    assert_eq!(fast["alias_of"], "echo");
    assert!(!models["data"].as_array().unwrap().iter().any(|m| m["id"] == "claude-*"), "patterns are not models");
    let (_, status) = server.get("/status").await;
    assert_eq!(status["aliases"]["claude-*"], "dummy/ok");
    server.stop().await;
}

/// `/v1/models` lists the default provider's models bare and the others' prefixed.
#[tokio::test]
async fn models_are_listed() {
    let server = server().await;
    let (status, body) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"echo") && ids.contains(&"echo-embed"), "{ids:?}");
    assert!(ids.contains(&"dummy/ok"), "{ids:?}");
    let (_, status) = server.get("/status").await;
    let echo = status["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "echo").unwrap().clone();
    assert_eq!(echo["models"], json!(["echo", "echo-embed"]));
    server.stop().await;
}

/// Bad requests get OpenAI-shaped errors.
#[tokio::test]
async fn bad_requests() {
    let server = server().await;
    let cases = [
        (json!({ "messages": [] }), 422, "invalid_parameter"),
        (json!({ "messages": [{ "role": "wizard", "content": "x" }] }), 422, "invalid_parameter"),
        (json!({ "messages": [{ "role": "user", "content": "x" }], "n": 2 }), 422, "invalid_parameter"),
        (json!({ "messages": [{ "role": "user", "content": "x" }], "temperature": 3 }), 422, "invalid_parameter"),
        (json!({ "model": "x" }), 422, "invalid_body"),
        // The same checks as /chat: one pipeline checks every dialect.
        (json!({ "messages": [{ "role": "user", "content": "x" }], "max_tokens": 0 }), 422, "invalid_parameter"),
        (json!({ "messages": [{ "role": "user", "content": "x" }], "model": " " }), 422, "invalid_parameter"),
        (json!({ "messages": [{ "role": "user", "content": "x".repeat(300_000) }] }), 413, "message_too_long"),
    ];
    for (body, status, code) in cases {
        let (got, reply) = completion(&server, body.clone(), &[]).await;
        assert_eq!((got, error_code(&reply)), (status, code), "{body}: {reply}");
    }
    let (status, reply) = completion(
        &server,
        json!({ "messages": [{ "role": "user", "content": "x" }] }),
        &[("x-session-id", "bad id!")],
    )
    .await;
    assert_eq!((status, error_code(&reply)), (400, "invalid_session_id"));
    // `facts` would be shadowed by `/memory/facts`, so no session may take it.
    let body = json!({ "messages": [{ "role": "user", "content": "x" }] });
    let (status, reply) = completion(&server, body, &[("x-session-id", "facts")]).await;
    assert_eq!((status, error_code(&reply)), (400, "invalid_session_id"), "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("cannot be `facts`"), "{reply}");
    server.stop().await;
}

/// `/v1/embeddings` with the echo demo's embedding model: one vector per input in input order,
/// the same vector for the same text alone or in a batch, base64 the same floats, and clear
/// errors for inputs OpenAI accepts but we do not.
#[tokio::test]
async fn embeddings() {
    let server = server().await;
    let (status, batch) = server.post("/v1/embeddings", json!({"input": ["alpha beta", "gamma"]})).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["object"], "list");
    assert_eq!(batch["model"], "echo-embed");
    assert!(batch["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let data = batch["data"].as_array().unwrap();
    assert_eq!(data.iter().map(|d| d["index"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1]);
    let (_, alone) = server.post("/v1/embeddings", json!({"input": "gamma", "model": "echo-embed"})).await;
    assert_eq!(alone["data"][0]["embedding"], data[1]["embedding"]);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let (_, encoded) = server.post("/v1/embeddings", json!({"input": "gamma", "encoding_format": "base64"})).await;
    let bytes = BASE64_STANDARD.decode(encoded["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let floats: Vec<f64> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect();
    let expected: Vec<f64> =
        alone["data"][0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(floats, expected);

    for (body, status, code) in [
        (json!({"input": []}), 422, "invalid_parameter"),
        (json!({"input": ["ok", ""]}), 422, "invalid_parameter"),
        (json!({"input": [1, 2, 3]}), 422, "invalid_parameter"),
        (json!({"input": "x", "dimensions": 0}), 422, "invalid_parameter"),
        (json!({"input": "x", "encoding_format": "int8"}), 422, "invalid_body"),
        (json!({"input": "x", "model": "no-such-model"}), 404, "model_not_found"),
        (json!({"input": "x", "model": "nope/some-model"}), 404, "model_not_found"),
        (json!({"model": "echo-embed"}), 422, "invalid_body"),
    ] {
        let (got, reply) = server.post("/v1/embeddings", body.clone()).await;
        assert_eq!((got, common::error_code(&reply)), (status, code), "for {body}: {reply}");
    }
    let r = server.client.post(server.url("/v1/embeddings")).header("x-provider", "nope").json(&json!({"input": "x"}));
    let (status, reply) = common::response(r.send().await.unwrap()).await;
    assert_eq!((status, common::error_code(&reply)), (404, "provider_not_found"));
    server.stop().await;
}
