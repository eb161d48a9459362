//! The `openai` plugin against a mock speaking OpenAI's Chat Completions API: the shared
//! OpenAI-family suite (request and reply mapping, streams, errors, retries, broken and stalled
//! streams), plus how the key is handled, the optional headers, `OPENAI_MODEL` and `/models`.

mod common;

use common::mock::{MockServer, Reply};
use common::openai_wire::{self, Dialect, Failure, Style};
use common::vendor::{self, Vendor, last};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key-0123456789abcdef";

const OPENAI: Dialect = Dialect {
    vendor: Vendor {
        id: "openai",
        env: |url| vec![("OPENAI_API_KEY", KEY.into()), ("OPENAI_BASE_URL", format!("{url}/v1"))],
    },
    key: KEY,
    default_model: "gpt-4.1-mini",
    answering_model: "gpt-4.1-mini-2025-04-14",
    chat_path: |_| "/v1/chat/completions".into(),
    model_in_body: true,
    stream_usage: true,
    headers: &[("authorization", "Bearer sk-test-key-0123456789abcdef")],
    stream_accept: "text/event-stream",
    style: Style::OpenAi,
    failure,
};

/// OpenAI's error replies, bodies as its API sends them.
fn failure(failure: Failure, model: &str) -> Reply {
    let (status, message, kind, code) = match failure {
        Failure::Unauthorized => (
            401,
            "Incorrect API key provided: sk-test-****************cdef. You can find your API key at \
             https://platform.openai.com/account/api-keys."
                .to_owned(),
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        Failure::UnknownModel => (
            404,
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            json!("model_not_found"),
        ),
        Failure::RateLimited => (
            429,
            format!(
                "Rate limit reached for {model} in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
            ),
            "requests",
            json!("rate_limit_exceeded"),
        ),
        Failure::ServerError => (
            500,
            "The server had an error while processing your request. Sorry about that!".into(),
            "server_error",
            Value::Null,
        ),
        Failure::Overloaded => {
            (503, "The engine is currently overloaded, please try again later.".into(), "server_error", Value::Null)
        }
    };
    Reply::json(status, json!({"error": {"message": message, "type": kind, "param": null, "code": code}}))
}

openai_wire_suite!(OPENAI);

/// The key reaches the vendor only as the bearer header: never in a URL or body, and neither
/// an error reply, a stream's error event nor `/status` shows it.
#[tokio::test]
async fn key_goes_only_to_the_vendor_as_bearer() {
    let mock = MockServer::start(|_| failure(Failure::Unauthorized, "gpt-3.5-turbo")).await;
    let server = OPENAI.vendor.server(&mock).await;
    let (status, body) = OPENAI.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!(status, 502, "{body}");
    let events = OPENAI.vendor.chat_stream(&server, "hi", json!({})).await;
    assert_eq!(common::error_code(last(&events, "error")), "upstream_unauthorized");
    let (_, status_page) = server.get("/status").await;
    for shown in [body.to_string(), format!("{events:?}"), status_page.to_string()] {
        assert!(!shown.contains(KEY), "{shown}");
    }
    let requests = mock.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
        assert!(!request.uri.contains(KEY) && !String::from_utf8_lossy(&request.body).contains(KEY));
    }
    server.stop().await;
}

/// `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID` become OpenAI's headers, and `OPENAI_MODEL` the
/// default model.
#[tokio::test]
async fn organization_project_and_model_from_the_environment() {
    let request = openai_wire::chat_under(
        &OPENAI,
        &[("OPENAI_ORG_ID", "org-test123"), ("OPENAI_PROJECT_ID", "proj_test456"), ("OPENAI_MODEL", "gpt-4o-mini")],
    )
    .await;
    assert_eq!(request.header("openai-organization"), Some("org-test123"));
    assert_eq!(request.header("openai-project"), Some("proj_test456"));
    assert_eq!(request.json()["model"], "gpt-4o-mini");
}

/// `/v1/models` lists what the vendor's `GET /models` returns.
#[tokio::test]
async fn models_come_from_the_vendor() {
    let list = json!({"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1_705_948_997, "owned_by": "system"},
    ]});
    let mock = MockServer::start(move |_| Reply::json(200, list.clone())).await;
    let server = OPENAI.vendor.server(&mock).await;
    let (status, models) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{models}");
    let listed: Vec<(&str, bool)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["supports_embeddings"].as_bool().unwrap()))
        .collect();
    assert_eq!(listed, [("gpt-4o-mini", false), ("text-embedding-3-small", true)]);
    let request = &mock.requests()[0];
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/v1/models"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    server.stop().await;
}

/// A reply that is not the Chat Completions shape is a 502 `upstream_error`, not a crash.
#[tokio::test]
async fn unreadable_reply_is_upstream_error() {
    let cases = vec![(Reply::json(200, json!({"object": "chat.completion", "choices": []})), 502, "upstream_error")];
    vendor::check_errors(&OPENAI.vendor, cases, "").await;
}

/// A vendor or proxy that echoes our request headers in its error reply cannot get the key into
/// the error our client sees.
#[tokio::test]
async fn echoed_key_is_not_shown() {
    let mock = MockServer::start(|request| {
        let echoed = format!("Invalid header value: authorization: {}", request.header("authorization").unwrap_or(""));
        Reply::json(
            400,
            json!({"error": {"message": echoed, "type": "invalid_request_error", "param": null, "code": null}}),
        )
    })
    .await;
    let server = OPENAI.vendor.server(&mock).await;
    let (status, body) = OPENAI.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!((status, common::error_code(&body)), (400, "upstream_bad_request"), "{body}");
    assert!(!body.to_string().contains(KEY), "{body}");
    server.stop().await;
}

/// `/v1/embeddings` maps to OpenAI's `POST /embeddings`: the exact request (model, inputs, the
/// key as bearer), vectors back in input order whatever order the vendor lists them, its usage,
/// and base64 when the client asks (as OpenAI's SDKs do by default).
#[tokio::test]
async fn embeddings_map_to_the_vendor() {
    let reply = json!({"object": "list", "model": "text-embedding-3-small", "data": [
        {"object": "embedding", "index": 1, "embedding": [0.5, -0.25, 1.0]},
        {"object": "embedding", "index": 0, "embedding": [0.125, 0.0, -2.0]},
    ], "usage": {"prompt_tokens": 7, "total_tokens": 7}});
    let mock = MockServer::start(move |_| Reply::json(200, reply.clone())).await;
    let server = OPENAI.vendor.server(&mock).await;
    let body = json!({"model": "text-embedding-3-small", "input": ["first text", "second text"]});
    let (status, out) = server.post("/v1/embeddings", body.clone()).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!({"object": "list", "model": "text-embedding-3-small", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.125, 0.0, -2.0]},
            {"object": "embedding", "index": 1, "embedding": [0.5, -0.25, 1.0]},
        ], "usage": {"prompt_tokens": 7, "total_tokens": 7}})
    );
    let request = &mock.requests()[0];
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/v1/embeddings"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.json()["model"], "text-embedding-3-small");
    assert_eq!(request.json()["input"], json!(["first text", "second text"]));

    let mut base64 = body;
    base64["encoding_format"] = json!("base64");
    let (_, out) = server.post("/v1/embeddings", base64).await;
    // 0.125, 0.0, -2.0 as little-endian f32s.
    assert_eq!(out["data"][0]["embedding"], "AAAAPgAAAAAAAADA");

    // A vendor failure keeps OpenAI's error mapping.
    let mock = MockServer::start(|_| failure(Failure::Unauthorized, "text-embedding-3-small")).await;
    let server = OPENAI.vendor.server(&mock).await;
    let (status, out) = server.post("/v1/embeddings", json!({"input": "x"})).await;
    assert_eq!((status, common::error_code(&out)), (502, "upstream_unauthorized"), "{out}");
    assert!(!out.to_string().contains(KEY));
    server.stop().await;
}

/// A tool loop kept by the server (the client sends only its new input, under `X-Session-Id`)
/// is replayed to the vendor as it happened: the call with its id and arguments, the result
/// answering that id, then the reply — so the next turn's request is one OpenAI accepts.
#[tokio::test]
async fn stored_tool_loops_are_replayed_with_their_ids() {
    let call = json!({"id": "call_Xy12", "type": "function", "function": {"name": "db", "arguments": "{\"table\":\"audit\"}"}});
    let mut asks = openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", "", "tool_calls", (20, 5));
    asks["choices"][0]["message"]["content"] = Value::Null;
    asks["choices"][0]["message"]["tool_calls"] = json!([call]);
    let answer =
        |text: &str| Reply::json(200, openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", text, "stop", (30, 4)));
    let mock =
        MockServer::start(vendor::script(vec![Reply::json(200, asks), answer("It is Postgres."), answer("Redis.")]))
            .await;
    let server = OPENAI.vendor.server(&mock).await;
    let tools = json!([{"type": "function", "function": {"name": "db", "parameters": {"type": "object"}}}]);
    let turn = |messages: Value| {
        let body = json!({ "model": "gpt-4.1-mini", "messages": messages, "tools": tools });
        server.client.post(server.url("/v1/chat/completions")).header("x-session-id", "tools-loop").json(&body).send()
    };
    let ok = |r: reqwest::Response| async move { assert_eq!(r.status(), 200, "{}", r.text().await.unwrap()) };
    ok(turn(json!([{ "role": "user", "content": "Which database?" }])).await.unwrap()).await;
    ok(turn(json!([{ "role": "tool", "tool_call_id": "call_Xy12", "content": "postgres 16" }])).await.unwrap()).await;
    ok(turn(json!([{ "role": "user", "content": "And the cache?" }])).await.unwrap()).await;

    let sent = mock.requests().pop().unwrap().json();
    let messages: Vec<Value> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().unwrap().retain(|k, v| !v.is_null() && k != "name");
            m
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            json!({ "role": "user", "content": "Which database?" }),
            json!({ "role": "assistant", "tool_calls": [call] }),
            json!({ "role": "tool", "tool_call_id": "call_Xy12", "content": "postgres 16" }),
            json!({ "role": "assistant", "content": "It is Postgres." }),
            json!({ "role": "user", "content": "And the cache?" }),
        ],
        "{sent:#}"
    );
    server.stop().await;
}

/// A model only another provider lists goes to that provider, without a `provider/` prefix:
/// agents name their own vendor's models. The default keeps what it lists, and what nobody
/// lists. (Lists are fetched at startup and every few minutes; here `/v1/models` fetches them,
/// as editors do when they start.)
#[tokio::test]
async fn a_model_goes_to_the_provider_that_lists_it() {
    let mock = MockServer::start(|r| match r.uri.ends_with("/models") {
        true => Reply::json(
            200,
            json!({"object": "list", "data": [{"id": "gpt-special", "object": "model", "created": 1_764_086_400, "owned_by": "system"}]}),
        ),
        false => Reply::json(200, openai_wire::completion(Style::OpenAi, "gpt-special", "from openai", "stop", (5, 2))),
    })
    .await;
    let setup = common::Setup {
        plugins: vec!["echo"],
        custom: vec![common::plugin_with("openai", |m| m)],
        env: (OPENAI.vendor.env)(&mock.url),
        configure: |c| c.providers.default = Some("echo".into()),
        background_memory: false,
        ..common::Setup::default()
    };
    let server = common::TestServer::start(setup).await;
    let (status, models) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{models}");
    let ask = |model: &str| {
        server
            .post("/v1/chat/completions", json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] }))
    };
    let (status, reply) = ask("gpt-special").await;
    assert_eq!((status, reply["choices"][0]["message"]["content"].as_str()), (200, Some("from openai")), "{reply}");
    let (_, reply) = ask("echo").await;
    assert!(reply["choices"][0]["message"]["content"].as_str().unwrap().contains("hi"), "{reply}");
    let (status, reply) = ask("unlisted-model").await;
    assert_eq!(status, 200, "the default answers what nobody lists: {reply}");
    assert_eq!(mock.requests().iter().filter(|r| r.uri.ends_with("/chat/completions")).count(), 1);
    server.stop().await;
}

/// Cached and reasoning tokens the vendor reports reach every dialect in its own shape: Chat
/// Completions' and Responses' token details, Anthropic's `cache_read_input_tokens` (whose
/// `input_tokens` leaves the cached ones out).
#[tokio::test]
async fn usage_details_reach_every_dialect() {
    let mut reply = openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", "Cached.", "stop", (2006, 300));
    reply["usage"]["prompt_tokens_details"] = json!({"cached_tokens": 1920, "audio_tokens": 0});
    reply["usage"]["completion_tokens_details"] = json!({"reasoning_tokens": 256, "audio_tokens": 0,
        "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0});
    let mock = MockServer::start(move |_| Reply::json(200, reply.clone())).await;
    let server = OPENAI.vendor.server(&mock).await;
    let messages = json!([{ "role": "user", "content": "hi" }]);

    let (status, body) =
        server.post("/v1/chat/completions", json!({ "model": "gpt-4.1-mini", "messages": messages })).await;
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    assert_eq!(
        (&usage["prompt_tokens"], &usage["prompt_tokens_details"]["cached_tokens"]),
        (&json!(2006), &json!(1920))
    );
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 256);

    let (status, body) =
        server.post("/v1/responses", json!({ "model": "gpt-4.1-mini", "input": "hi", "store": false })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 1920, "{body}");
    assert_eq!(body["usage"]["output_tokens_details"]["reasoning_tokens"], 256);

    let (status, body) =
        server.post("/v1/messages", json!({ "model": "gpt-4.1-mini", "max_tokens": 100, "messages": messages })).await;
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    assert_eq!((&usage["input_tokens"], &usage["cache_read_input_tokens"]), (&json!(86), &json!(1920)), "{body}");
    server.stop().await;
}
