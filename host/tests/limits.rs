//! Per-key limits (`[limits]`): requests and tokens per minute and concurrent streams, answered
//! with 429, `Retry-After` and rate-limit headers in each dialect's style; on one host, and on
//! two hosts sharing one budget in Redis.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use codexcontinue::config::Config;
use common::mock::{End, MockServer, Reply};
use common::{Setup, TestServer};
use futures::future::join_all;
use serde_json::{Value, json};

async fn server(configure: fn(&mut Config)) -> TestServer {
    TestServer::start(Setup { configure, background_memory: false, ..Setup::default() }).await
}

fn completion(content: &str) -> Value {
    json!({ "model": "echo", "messages": [{ "role": "user", "content": content }] })
}

/// A turn's status, headers and body.
async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers.get(name).unwrap_or_else(|| panic!("no {name} in {headers:?}")).to_str().unwrap()
}

/// Fires `n` chat completions at once; returns each (status, headers, body).
async fn burst(server: &TestServer, n: usize) -> Vec<(u16, reqwest::header::HeaderMap, Value)> {
    let requests = (0..n)
        .map(|i| send(server.client.post(server.url("/v1/chat/completions")).json(&completion(&format!("hi {i}")))));
    join_all(requests).await
}

/// Asserts a 429 in OpenAI's shape with `Retry-After` and the request headers.
fn assert_refused_openai(status: u16, headers: &reqwest::header::HeaderMap, body: &Value, limit: &str) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(header(headers, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(headers, "x-ratelimit-limit-requests"), limit);
    assert_eq!(header(headers, "x-ratelimit-remaining-requests"), "0");
}

/// Twenty turns at once against a limit of five: exactly five pass, each with its own
/// remaining count, and fifteen are refused; another user has a budget of their own.
#[tokio::test]
async fn never_above_the_limit_under_concurrent_load() {
    let server = server(|c| c.limits.requests_per_minute = 5).await;
    let replies = burst(&server, 20).await;
    let passed: Vec<_> = replies.iter().filter(|(s, _, _)| *s == 200).collect();
    assert_eq!(passed.len(), 5, "{:?}", replies.iter().map(|r| r.0).collect::<Vec<_>>());
    let remaining: BTreeSet<&str> =
        passed.iter().map(|(_, h, _)| header(h, "x-ratelimit-remaining-requests")).collect();
    assert_eq!(remaining, BTreeSet::from(["0", "1", "2", "3", "4"]));
    for (_, h, _) in &passed {
        assert_eq!(header(h, "x-ratelimit-limit-requests"), "5");
        assert!(header(h, "x-ratelimit-reset-requests").ends_with('s'));
    }
    for (status, headers, body) in replies.iter().filter(|(s, _, _)| *s != 200) {
        assert_refused_openai(*status, headers, body, "5");
    }
    let other = server.client.post(server.url("/v1/chat/completions")).header("x-user-id", "bob");
    let (status, headers, body) = send(other.json(&completion("hi"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-ratelimit-remaining-requests"), "4");
    server.stop().await;
}

/// As many turns at once as the limit allows all pass: no false 429 below the limit; the
/// next one is refused.
#[tokio::test]
async fn no_false_429_below_the_limit() {
    let server = server(|c| c.limits.requests_per_minute = 30).await;
    let replies = burst(&server, 30).await;
    assert!(replies.iter().all(|(s, _, _)| *s == 200), "{:?}", replies.iter().map(|r| r.0).collect::<Vec<_>>());
    let remaining: BTreeSet<u32> =
        replies.iter().map(|(_, h, _)| header(h, "x-ratelimit-remaining-requests").parse().unwrap()).collect();
    assert_eq!(remaining, (0..30).collect());
    let (status, headers, body) = burst(&server, 1).await.remove(0);
    assert_refused_openai(status, &headers, &body, "30");
    server.stop().await;
}

/// `/v1/messages` answers in Anthropic's style: `anthropic-ratelimit-*` headers (reset as RFC
/// 3339) and a 429 whose body is Anthropic's error shape.
#[tokio::test]
async fn anthropic_style_headers_and_error() {
    let server = server(|c| {
        c.limits.requests_per_minute = 2;
        c.limits.tokens_per_minute = 100_000;
    })
    .await;
    let body = json!({ "model": "echo", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let post = || server.client.post(server.url("/v1/messages")).header("anthropic-version", "2023-06-01").json(&body);
    for remaining in ["1", "0"] {
        let (status, headers, reply) = send(post()).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(header(&headers, "anthropic-ratelimit-requests-limit"), "2");
        assert_eq!(header(&headers, "anthropic-ratelimit-requests-remaining"), remaining);
        assert!(header(&headers, "anthropic-ratelimit-requests-reset").ends_with('Z'));
        assert_eq!(header(&headers, "anthropic-ratelimit-tokens-limit"), "100000");
        assert!(headers.get("x-ratelimit-limit-requests").is_none());
    }
    let (status, headers, reply) = send(post()).await;
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["error"]["type"], "rate_limit_error", "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("2 requests per minute"), "{reply}");
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(&headers, "anthropic-ratelimit-requests-remaining"), "0");
    server.stop().await;
}

/// Tokens are estimated from the body up front and settled with the provider's usage after: the
/// dummy reports 2 tokens a turn, so turns whose estimates alone would pass the limit all fit;
/// a body whose estimate exceeds what is left is refused with the token headers.
#[tokio::test]
async fn tokens_settle_with_the_real_usage() {
    let server = TestServer::start(Setup {
        plugins: vec!["dummy"],
        configure: |c| c.limits.tokens_per_minute = 200,
        background_memory: false,
        ..Setup::default()
    })
    .await;
    let body = json!({ "model": "dummy/ok", "messages": [{ "role": "user", "content": "hello there" }] });
    let estimate = serde_json::to_vec(&body).unwrap().len().div_ceil(4) as u64;
    let turns = 200 / estimate as usize + 5;
    for turn in 0..turns {
        let (status, headers, reply) = send(server.client.post(server.url("/v1/chat/completions")).json(&body)).await;
        assert_eq!(status, 200, "turn {turn}: {reply}");
        assert_eq!(header(&headers, "x-ratelimit-limit-tokens"), "200");
        let remaining: u64 = header(&headers, "x-ratelimit-remaining-tokens").parse().unwrap();
        assert_eq!(remaining, 200 - 2 * turn as u64 - estimate, "turn {turn}");
    }
    let big = json!({ "model": "dummy/ok", "messages": [{ "role": "user", "content": "x".repeat(1000) }] });
    let (status, headers, reply) = send(server.client.post(server.url("/v1/chat/completions")).json(&big)).await;
    assert_eq!(status, 429, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("200 tokens per minute"), "{reply}");
    assert_eq!(header(&headers, "x-ratelimit-limit-tokens"), "200");
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() >= 1);
    server.stop().await;
}

fn chunk(i: usize) -> String {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
        "choices": [{ "index": 0, "delta": { "content": format!("word{i} ") }, "finish_reason": null }],
    });
    format!("data: {body}")
}

/// With one stream allowed, a second stream is refused while the first is open, a turn that
/// does not stream still passes, and the slot comes back once the first client goes away.
#[tokio::test]
async fn concurrent_stream_cap() {
    // A long stream (a word every 50 ms for a minute) holds the slot while the test runs.
    let events: Vec<String> = (0..1200).map(chunk).collect();
    let vendor = MockServer::start(move |request| match request.json()["stream"] == json!(true) {
        true => Reply::sse(&events, Duration::from_millis(50), End::Complete),
        false => Reply::json(
            200,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini",
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
        ),
    })
    .await;
    let env =
        vec![("OPENAI_API_KEY", "sk-test-0123456789".to_string()), ("OPENAI_BASE_URL", format!("{}/v1", vendor.url))];
    let server = TestServer::start(Setup {
        plugins: vec!["openai"],
        env,
        configure: |c| c.limits.concurrent_streams = 1,
        background_memory: false,
        ..Setup::default()
    })
    .await;
    let stream =
        json!({ "model": "openai/gpt-4.1-mini", "stream": true, "messages": [{ "role": "user", "content": "talk" }] });
    let open = || server.client.post(server.url("/v1/chat/completions")).json(&stream).send();

    let mut first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    let mut seen = String::new();
    while !seen.contains("word0") {
        let chunk = first.chunk().await.unwrap().expect("the stream ended before any delta");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    let (status, headers, body) = send(server.client.post(server.url("/v1/chat/completions")).json(&stream)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("1 concurrent streams"), "{body}");
    assert!(headers.get("retry-after").is_some());
    let plain = json!({ "model": "openai/gpt-4.1-mini", "messages": [{ "role": "user", "content": "hi" }] });
    let (status, _, body) = send(server.client.post(server.url("/v1/chat/completions")).json(&plain)).await;
    assert_eq!(status, 200, "{body}");

    drop(first);
    let started = Instant::now();
    loop {
        let next = open().await.unwrap();
        if next.status() == 200 {
            break;
        }
        assert_eq!(next.status(), 429);
        assert!(started.elapsed() < Duration::from_secs(30), "the stream slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// This run's key prefix in the shared Redis, so runs never see each other's counts.
fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("codexcontinue-test:{}:", uuid::Uuid::new_v4().simple()))
}

/// Two servers counting in one Redis share one budget: of twenty turns spread over both at
/// once, exactly four pass.
#[tokio::test]
async fn two_servers_sharing_redis_share_one_budget() {
    prefix();
    let configure = |c: &mut Config| {
        c.limits.requests_per_minute = 4;
        c.limits.shared = Some("redis://127.0.0.1:6379".into());
        c.limits.shared_prefix = prefix().to_string();
    };
    let (a, b) = tokio::join!(server(configure), server(configure));
    let requests = (0..20).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        send(server.client.post(server.url("/v1/chat/completions")).json(&completion(&format!("hi {i}"))))
    });
    let replies = join_all(requests).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 4, "{statuses:?}");
    for (status, headers, body) in replies.iter().filter(|(s, _, _)| *s != 200) {
        assert_refused_openai(*status, headers, body, "4");
    }
    a.stop().await;
    b.stop().await;
}
