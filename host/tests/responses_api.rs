//! OpenAI's Responses API (`/v1/responses`), as Codex CLI and the OpenAI SDKs call it.

mod common;

use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

async fn server() -> TestServer {
    let configure = |c: &mut codexcontinue::config::Config| c.providers.retries = 0;
    TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await
}

async fn create(server: &TestServer, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.client.post(server.url("/v1/responses")).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    common::response(request.send().await.unwrap()).await
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()))
        .collect()
}

/// A plain response has OpenAI's shape, and a stored one can be read back, listed and deleted.
#[tokio::test]
async fn a_stored_response_can_be_read_back_and_deleted() {
    let server = server().await;
    let (status, response) =
        create(&server, json!({ "model": "echo", "input": "hello there", "instructions": "be kind" }), &[]).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!((response["object"].as_str(), response["status"].as_str()), (Some("response"), Some("completed")));
    let id = response["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"));
    assert!(output_text(&response).contains("hello there"), "{response}");
    assert!(response["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        response["usage"]["total_tokens"].as_u64().unwrap(),
        response["usage"]["input_tokens"].as_u64().unwrap() + response["usage"]["output_tokens"].as_u64().unwrap()
    );

    let (status, again) = server.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id);
    assert_eq!(output_text(&again), output_text(&response));
    let (status, items) = server.get(&format!("/v1/responses/{id}/input_items")).await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(items["data"][0]["content"][0]["text"], "hello there");

    let (status, other) = common::response(
        server
            .client
            .get(server.url(&format!("/v1/responses/{id}")))
            .header("x-user-id", "mallory")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&other)), (404, "response_not_found"), "another user cannot read it");

    let r = server.client.delete(server.url(&format!("/v1/responses/{id}"))).send().await.unwrap();
    let (status, deleted) = common::response(r).await;
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)), "{deleted}");
    let (status, _) = server.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 404, "a deleted response stays deleted");
    let (status, reply) =
        create(&server, json!({ "model": "echo", "input": "more", "previous_response_id": id }), &[]).await;
    assert_eq!((status, error_code(&reply)), (400, "invalid_request"), "{reply}");
    server.stop().await;
}

/// `previous_response_id` continues a chain: the provider sees the earlier turns, tool calls
/// and results included, in order.
#[tokio::test]
async fn previous_response_id_continues_the_chain() {
    let server = server().await;
    let (_, first) = create(&server, json!({ "model": "echo", "input": "remember the llama" }), &[]).await;
    let first_id = first["id"].as_str().unwrap();
    let input = json!([
        { "type": "function_call", "call_id": "call_1", "name": "zoo", "arguments": "{}" },
        { "type": "function_call_output", "call_id": "call_1", "output": "the llama is asleep" },
        { "type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque" },
    ]);
    let (status, second) =
        create(&server, json!({ "model": "echo", "input": input, "previous_response_id": first_id }), &[]).await;
    assert_eq!(status, 200, "{second}");
    let (status, third) = create(&server,
        json!({ "model": "dummy/prompt", "input": [{ "role": "user", "content": [{ "type": "input_text", "text": "which animal?" }] }],
                "previous_response_id": second["id"] }), &[]).await;
    assert_eq!(status, 200, "{third}");
    let prompt = output_text(&third);
    let lines: Vec<&str> = prompt.lines().collect();
    assert_eq!(lines[0], "user: remember the llama", "{prompt}");
    assert!(lines[1].starts_with("assistant: echo"), "{prompt}");
    // The call was the client's own (the first reply made none), so only its result is stored.
    assert_eq!(lines[2], "tool: the llama is asleep", "{prompt}");
    assert!(lines[3].starts_with("assistant: echo"), "{prompt}");
    assert_eq!(lines.last(), Some(&"user: which animal?"), "{prompt}");
    assert_eq!(third["previous_response_id"], second["id"]);
    server.stop().await;
}

/// A stored response survives a restart: it can be read back and continued.
#[tokio::test]
async fn previous_response_id_survives_a_restart() {
    let server = server().await;
    let (_, first) = create(&server, json!({ "model": "echo", "input": "remember the llama" }), &[]).await;
    let id = first["id"].as_str().unwrap().to_string();
    let server = server.restart().await;
    let (status, again) = server.get(&format!("/v1/responses/{id}")).await;
    assert_eq!((status, output_text(&again)), (200, output_text(&first)), "{again}");
    let next = json!({ "model": "dummy/prompt", "input": "which animal?", "previous_response_id": id });
    let (status, second) = create(&server, next, &[]).await;
    assert_eq!(status, 200, "{second}");
    let prompt = output_text(&second);
    assert!(prompt.starts_with("user: remember the llama\nassistant: echo"), "{prompt}");
    assert!(prompt.ends_with("user: which animal?"), "{prompt}");
    server.stop().await;
}

/// Streaming sends the typed events in order, numbered, ending with `response.completed`.
#[tokio::test]
async fn streaming_sends_the_typed_events() {
    let server = server().await;
    let r = server
        .client
        .post(server.url("/v1/responses"))
        .json(&json!({ "model": "echo", "input": "count these words", "stream": true, "store": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let events: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[..4],
        ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"],
        "{kinds:?}"
    );
    assert_eq!(
        kinds[kinds.len() - 4..],
        ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"],
        "{kinds:?}"
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], i, "{event}");
    }
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.contains("count these words"), "{deltas}");
    let done = &events.last().unwrap()["response"];
    assert_eq!(output_text(done), deltas);
    assert_eq!(done["store"], false);
    let (status, _) = server.get(&format!("/v1/responses/{}", done["id"].as_str().unwrap())).await;
    assert_eq!(status, 404, "store: false keeps nothing retrievable");
    server.stop().await;
}

/// Codex's session header gives it memory: with `store: false` and its whole history sent each
/// turn, every turn is stored once in that session.
#[tokio::test]
async fn codex_sessions_are_remembered() {
    let server = server().await;
    let session = [("session-id", "codex-thread-1")];
    let first = json!({ "model": "echo", "store": false, "input": [{ "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "use tabs" }] }] });
    let (status, reply) = create(&server, first, &session).await;
    assert_eq!(status, 200, "{reply}");
    let second = json!({ "model": "echo", "store": false, "input": [
        { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "use tabs" }] },
        { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": output_text(&reply) }] },
        { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "and spaces?" }] } ] });
    let (status, _) = create(&server, second, &session).await;
    assert_eq!(status, 200);
    let (status, history) = server.get("/memory/codex-thread-1").await;
    assert_eq!(status, 200, "{history}");
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!((contents.len(), contents[0], contents[2]), (4, "use tabs", "and spaces?"), "{contents:?}");
    server.stop().await;
}

/// Bad requests get clear errors; built-in tools the server does not run are refused.
#[tokio::test]
async fn bad_requests() {
    let server = server().await;
    let cases = [
        (json!({ "model": "echo" }), 422, "invalid_body"),
        (
            json!({ "model": "echo", "input": "x", "tools": [{ "type": "web_search" }], "tool_choice": { "type": "web_search" } }),
            400,
            "invalid_request",
        ),
        (json!({ "model": "echo", "input": [{ "type": "input_image_call" }] }), 400, "invalid_request"),
        (json!({ "model": "echo", "input": "x", "max_output_tokens": 0 }), 422, "invalid_parameter"),
        (json!({ "model": "echo", "input": "x", "previous_response_id": "resp_nope" }), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let (got, reply) = create(&server, body.clone(), &[]).await;
        assert_eq!((got, error_code(&reply)), (status, code), "{body}: {reply}");
    }
    // Offered but not forced, as Codex does by default, a built-in tool is left out.
    let offered = json!({ "model": "echo", "input": "x", "tools": [{ "type": "web_search" }], "tool_choice": "auto" });
    assert_eq!(create(&server, offered, &[]).await.0, 200);
    server.stop().await;
}

/// The server-sent events of a streamed response.
async fn stream(server: &TestServer, mut body: Value) -> Vec<Value> {
    body["stream"] = json!(true);
    let r = server.client.post(server.url("/v1/responses")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// Reasoning comes out as `reasoning` items before the message, with `encrypted_content` only
/// when `include` asks for it; streamed, the reasoning item opens first, its `reasoning_text`
/// deltas come before the text, and every item keeps its output index.
#[tokio::test]
async fn reasoning_items_come_first() {
    let server = server().await;
    let body = json!({ "model": "dummy/think", "input": "why?", "store": false });
    let (status, plain) = create(&server, body.clone(), &[]).await;
    assert_eq!(status, 200, "{plain}");
    let kinds: Vec<&str> = plain["output"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "reasoning", "message"]);
    assert_eq!(plain["output"][0]["id"], "rs_dummy_1");
    assert_eq!(plain["output"][0]["content"], json!([{ "type": "reasoning_text", "text": "Thinking hard." }]));
    assert_eq!(plain["output"][0]["summary"], json!([]));
    assert!(plain["output"][1].get("encrypted_content").is_none(), "not asked for: {plain}");
    assert_eq!(output_text(&plain), "thought");

    let mut asked = body;
    asked["include"] = json!(["reasoning.encrypted_content"]);
    let (_, encrypted) = create(&server, asked.clone(), &[]).await;
    assert_eq!(encrypted["output"][1]["encrypted_content"], "enc-dummy-2");

    let events = stream(&server, asked).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[2..7],
        [
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
        ],
        "{kinds:?}"
    );
    assert_eq!(events[2]["item"]["type"], "reasoning");
    let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.output_item.done").collect();
    let indexed: Vec<(u64, &str)> =
        done.iter().map(|e| (e["output_index"].as_u64().unwrap(), e["item"]["type"].as_str().unwrap())).collect();
    assert_eq!(indexed, [(0, "reasoning"), (1, "reasoning"), (2, "message")]);
    assert_eq!(done[1]["item"]["encrypted_content"], "enc-dummy-2");
    let first_text = kinds.iter().position(|k| *k == "response.output_text.delta").unwrap();
    let reasoning_done = kinds.iter().rposition(|k| *k == "response.reasoning_text.done").unwrap();
    assert!(reasoning_done < first_text, "{kinds:?}");
    let completed = &events.last().unwrap()["response"];
    assert_eq!(completed["output"].as_array().unwrap().len(), 3);
    server.stop().await;
}

/// A client's reasoning items (with encrypted content) join the assistant message they belong
/// to and reach the provider unchanged.
#[tokio::test]
async fn reasoning_items_replay_to_the_provider() {
    let server = server().await;
    let body = json!({ "model": "dummy/think", "store": false, "input": [
        { "role": "user", "content": "why?" },
        { "type": "reasoning", "id": "rs_1", "summary": [{ "type": "summary_text", "text": "hmm" }], "encrypted_content": "enc-client" },
        { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "because" }] },
        { "role": "user", "content": "and then?" },
    ] });
    let (status, reply) = create(&server, body, &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(output_text(&reply), "thought; replayed enc-client");
    server.stop().await;
}

/// A refusal is a `refusal` content part.
#[tokio::test]
async fn refusals_are_refusal_parts() {
    let server = server().await;
    let (status, reply) = create(&server, json!({ "model": "dummy/refuse", "input": "do it" }), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["output"][0]["content"], json!([{ "type": "refusal", "refusal": "I can't help with that." }]));
    let (_, stored) = server.get(&format!("/v1/responses/{}", reply["id"].as_str().unwrap())).await;
    assert_eq!(stored["output"][0]["content"][0]["type"], "refusal", "{stored}");
    let events = stream(&server, json!({ "model": "dummy/refuse", "input": "do it", "store": false })).await;
    let last = &events.last().unwrap()["response"];
    assert_eq!(last["output"][0]["content"][0]["refusal"], "I can't help with that.");
    server.stop().await;
}

/// `input_image` parts reach the provider in order with the text; a `file_id` image gets a
/// clear 400.
#[tokio::test]
async fn input_images() {
    let server = server().await;
    let image = |part: Value| {
        json!({ "model": "dummy/parts", "store": false, "input": [{ "role": "user",
        "content": [{ "type": "input_text", "text": "look" }, part] }] })
    };
    let url = json!({ "type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "auto" });
    let (status, reply) = create(&server, image(url), &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(output_text(&reply), "text look\nbase64 image/jpeg 8");
    let (status, reply) = create(&server, image(json!({ "type": "input_image", "file_id": "file_1" })), &[]).await;
    assert_eq!((status, error_code(&reply)), (400, "invalid_request"), "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("file_id"));
    server.stop().await;
}
