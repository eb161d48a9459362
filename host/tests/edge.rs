//! The network edge over real TCP: Host and Origin checks (DNS rebinding), CORS, the
//! header-read, idle and body timeouts, the connection cap, and graceful SIGTERM.
//! Timeouts are configured short; every wait is for an event (a reply, EOF) with a bound.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use codexcontinue::config::Config;
use common::{Setup, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any test waits for the server to do something it was configured to do in well under
/// a second; shorter than the default header (15 s) and body (60 s) timeouts, so a test fails
/// if its short setting were not applied.
const BOUND: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.url.trim_start_matches("http://")).await.unwrap()
}

/// Everything the server sends until it closes the connection, within [`BOUND`].
async fn read_to_eof(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    match tokio::time::timeout(BOUND, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => {}
        // A reset after the reply still counts as closed.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("reading: {e}"),
        Err(_) => panic!("the server kept the connection open; so far: {}", String::from_utf8_lossy(&out)),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) and returns the reply.
async fn exchange(server: &TestServer, request: &str) -> String {
    let mut stream = connect(server).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_to_eof(&mut stream).await
}

/// Reads one response with a `Content-Length` body off a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut chunk)).await.expect("no reply").unwrap();
        assert!(n > 0, "closed mid-reply: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn body_of(reply: &str) -> serde_json::Value {
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {reply}"))
}

fn get(path: &str, host: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

/// A page that rebinds its own name to 127.0.0.1 is refused (421, in the API's error shape),
/// whether it names itself in `Host` or in an absolute-form request line; the loopback names
/// on any port are served.
#[tokio::test]
async fn rebinding_hosts_are_refused_and_loopback_names_served() {
    let server = TestServer::start(Setup::default()).await;
    let port = server.url.rsplit(':').next().unwrap().to_string();

    for request in [
        get("/sessions", &format!("rebind.example:{port}"), ""),
        get("/sessions", "rebind.example", ""),
        get(&format!("http://rebind.example:{port}/sessions"), &format!("127.0.0.1:{port}"), ""),
        get("http://127.0.0.1/sessions", "rebind.example", ""),
        get("/sessions", &format!("admin@127.0.0.1:{port}"), ""),
    ] {
        let reply = exchange(&server, &request).await;
        assert!(reply.starts_with("HTTP/1.1 421"), "{request}\n{reply}");
        assert_eq!(common::error_code(&body_of(&reply)), "host_not_allowed", "{reply}");
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}"), "localhost".into()]
    {
        let reply = exchange(&server, &get("/sessions", &host, "")).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{host}\n{reply}");
    }
    let reply = exchange(&server, &get(&format!("http://localhost:{port}/sessions"), "localhost", "")).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    server.stop().await;
}

/// Browser requests from another site are refused (403) even when addressed correctly; the
/// server's own page origin is served; CORS answers only for configured origins.
#[tokio::test]
async fn cross_site_requests_are_refused_and_cors_is_explicit() {
    let server = TestServer::start(Setup {
        configure: |c: &mut Config| c.edge.cors_origins = vec!["https://app.example".into()],
        ..Setup::default()
    })
    .await;
    let host = server.url.trim_start_matches("http://").to_string();
    let chat = |origin: &str| {
        let body = r#"{"message":"hi"}"#;
        format!(
            "POST /chat HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    for origin in ["https://evil.example", "null", "http://rebind.example:8080"] {
        let reply = exchange(&server, &chat(origin)).await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{origin}\n{reply}");
        assert_eq!(common::error_code(&body_of(&reply)), "origin_not_allowed");
    }
    let reply = exchange(&server, &chat(&server.url)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(!reply.to_ascii_lowercase().contains("access-control-allow-origin"), "{reply}");

    let preflight = |origin: &str| {
        format!(
            "OPTIONS /chat HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: authorization, content-type\r\nConnection: close\r\n\r\n"
        )
    };
    let reply = exchange(&server, &preflight("https://app.example")).await.to_ascii_lowercase();
    assert!(reply.starts_with("http/1.1 200"), "{reply}");
    assert!(reply.contains("access-control-allow-origin: https://app.example"), "{reply}");
    assert!(reply.contains("access-control-allow-headers: authorization, content-type"), "{reply}");
    let reply = exchange(&server, &chat("https://app.example")).await.to_ascii_lowercase();
    assert!(reply.starts_with("http/1.1 200") && reply.contains("access-control-allow-origin: https://app.example"));
    let reply = exchange(&server, &preflight("https://other.example")).await;
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    server.stop().await;
}

/// An unfinished request head is closed at the header timeout, and so is a keep-alive
/// connection left idle after its reply.
#[tokio::test]
async fn header_and_idle_timeouts_close_connections() {
    let server =
        TestServer::start(Setup { configure: |c: &mut Config| c.edge.header_timeout_ms = 300, ..Setup::default() })
            .await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let reply = read_to_eof(&mut stream).await;
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 408"), "{reply}");

    let mut stream = connect(&server).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let reply = read_to_eof(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(reply.matches("HTTP/1.1").count(), 1, "{reply}");
    server.stop().await;
}

/// A body trickled a byte at a time, never idle for long, is still cut at the body deadline:
/// 408 in the API's error shape, then the connection closes.
#[tokio::test]
async fn slow_bodies_are_cut_at_the_deadline() {
    let server =
        TestServer::start(Setup { configure: |c: &mut Config| c.edge.body_timeout_ms = 500, ..Setup::default() }).await;
    let stream = connect(&server).await;
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let head =
            "POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n";
        writer.write_all(head.as_bytes()).await?;
        for _ in 0..400 {
            writer.write_all(b" ").await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::io::Result::Ok(())
    });
    let mut out = Vec::new();
    let read = tokio::time::timeout(BOUND, reader.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the slow body was held for {BOUND:?}");
    let reply = String::from_utf8_lossy(&out).into_owned();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert_eq!(common::error_code(&body_of(&reply)), "request_timeout");
    trickle.abort();
    server.stop().await;
}

/// Over the connection cap, new connections get a 503 and are closed at once (nothing waits in
/// memory); once connections close, new ones are served again.
#[tokio::test]
async fn the_connection_cap_holds() {
    const CAP: usize = 3;
    let server =
        TestServer::start(Setup { configure: |c: &mut Config| c.edge.max_connections = CAP, ..Setup::default() }).await;
    // The test client keeps its own pooled connection from startup, so the cap may be
    // reached one connection early; never late.
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..=CAP {
        let mut stream = connect(&server).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let reply = read_response(&mut stream).await;
        if reply.starts_with("HTTP/1.1 503") {
            refused = Some(reply);
            break;
        }
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        held.push(stream);
    }
    let refused = refused.unwrap_or_else(|| panic!("{} connections were served with a cap of {CAP}", held.len()));
    assert!(held.len() >= CAP - 1, "refused after only {} connections", held.len());
    assert_eq!(common::error_code(&body_of(&refused)), "too_many_connections");

    drop(held);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let reply = exchange(&server, &get("/healthz", "127.0.0.1", "")).await;
        if reply.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still refused after the held connections closed: {reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

/// SIGTERM during a streamed reply: the stream still ends with its `done` event, the process
/// then exits 0, and the turn it acknowledged is on disk.
#[tokio::test]
async fn sigterm_lets_a_stream_finish() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let (manifest, wasm) = common::plugin("dummy");
    std::fs::copy(manifest, plugins.path().join("dummy.toml")).unwrap();
    std::fs::copy(wasm, plugins.path().join("dummy.wasm")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_codexcontinue"))
        .current_dir(std::env::temp_dir())
        .env("CODEXCONTINUE_CONFIG", "/nonexistent/codexcontinue.toml")
        .env("RUST_LOG", "info")
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--plugins-dir")
        .arg(plugins.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(url) = line.split("listening on http://").nth(1) {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));

    // `slow` sleeps 2 s in the plugin before its one delta: the stream is surely in flight
    // when the `start` event has arrived.
    let body = r#"{"message":"hi","provider":"dummy","model":"slow","stream":true}"#;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /chat HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: start") {
        let n = tokio::time::timeout(BOUND, stream.read(&mut chunk)).await.expect("no start event").unwrap();
        assert!(n > 0, "closed before the start event");
        seen.extend_from_slice(&chunk[..n]);
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let rest = read_to_eof(&mut stream).await;
    assert!(rest.contains("event: done"), "the stream was cut: {rest}");
    let done = rest.split("event: done").nth(1).unwrap();
    let done: serde_json::Value =
        serde_json::from_str(done.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(done["reply"], "slow", "{done}");

    let deadline = std::time::Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");

    let store = codexcontinue::store::SledStore::open(&data.path().join("store")).unwrap();
    let session = done["session_id"].as_str().unwrap();
    let scope = codexcontinue::store::Scope::new(codexcontinue::api::DEFAULT_USER, session);
    use codexcontinue::store::Store as _;
    let messages = store.list_messages(&scope, None, 10).await.unwrap();
    assert_eq!(messages.last().map(|m| m.content.as_str()), Some("slow"), "{messages:?}");
}
