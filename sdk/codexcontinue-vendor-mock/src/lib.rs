//! A scripted HTTP server standing in for an LLM vendor, for testing provider plugins.
//!
//! [`MockServer::start`] binds `127.0.0.1` on a free port and answers every request with the
//! [`Reply`] your handler picks for it: a complete response (JSON or any bytes), or a stream of
//! chunks sent with delays that ends normally, breaks mid-way or stalls ([`End`]). You write the
//! bodies in the vendor's real wire format (JSON, server-sent events, NDJSON), so the plugin's
//! parsing is tested against what the vendor really sends. Every request is recorded
//! ([`Recorded`]) so the test can check what the plugin sent: path, headers, body.
//!
//! The CodexContinue host's own vendor tests use this server, and `codexcontinue-sdk-testing`
//! re-exports it: point a plugin at [`MockServer::url`] through its endpoint variable (e.g.
//! `OPENAI_BASE_URL`), which also allows that origin exactly as it does in production.
//!
//! ```
//! use codexcontinue_vendor_mock::{MockServer, Reply};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let vendor = MockServer::start(|request| match request.uri.as_str() {
//!     "/v1/models" => Reply::json(200, json!({"object": "list", "data": []})),
//!     _ => Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after", "20"),
//! })
//! .await;
//!
//! // The plugin under test would make this request; any HTTP client does for the example.
//! let reply = reqwest::get(format!("{}/v1/models", vendor.url)).await.unwrap();
//! assert_eq!(reply.status(), 200);
//!
//! let request = vendor.single_request();
//! assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/v1/models"));
//! # }
//! ```
//!
//! The server runs as a task on the tokio runtime that started it and stops when the
//! [`MockServer`] is dropped.

#![warn(missing_docs)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;

pub use axum::body::Bytes;
pub use axum::http::HeaderMap;

/// A request as the vendor saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions?api-version=2024-10-21`.
    pub uri: String,
    /// Every request header.
    pub headers: HeaderMap,
    /// The complete request body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value, by case-insensitive name; `None` if absent or not valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not JSON; the message shows the body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("request body is not JSON ({e}): {:?}", self.body))
    }
}

/// How a streamed reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Normally.
    Complete,
    /// The connection breaks: the body ends with an error (no terminating chunk).
    Drop,
    /// The server stops sending and never finishes.
    Stall,
}

/// What the mock answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response.
    Full {
        /// The HTTP status.
        status: u16,
        /// Response headers, in order; a name may repeat.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// A streamed response: each chunk after its delay, then `end`.
    Stream {
        /// The HTTP status.
        status: u16,
        /// Response headers, in order; a name may repeat.
        headers: Vec<(String, String)>,
        /// Each chunk with the delay before it is sent.
        chunks: Vec<(Duration, Vec<u8>)>,
        /// What happens after the last chunk.
        end: End,
    },
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// Adds a response header, e.g. `.header("retry-after", "20")`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match &mut self {
            Reply::Full { headers, .. } | Reply::Stream { headers, .. } => headers.push((name.into(), value.into())),
        }
        self
    }

    /// 200 with `content_type`, sending `chunks` `gap` apart, ending as `end`.
    pub fn stream(content_type: &str, chunks: Vec<String>, gap: Duration, end: End) -> Self {
        Reply::Stream {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            chunks: chunks.into_iter().map(|c| (gap, c.into_bytes())).collect(),
            end,
        }
    }

    /// Server-sent events: each item is one event's text (`data: ...` lines etc.), separated by
    /// a blank line as the format requires.
    pub fn sse(events: &[String], gap: Duration, end: End) -> Self {
        Self::stream("text/event-stream", events.iter().map(|e| format!("{e}\n\n")).collect(), gap, end)
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A running mock vendor on 127.0.0.1. Dropping it stops the server.
pub struct MockServer {
    /// The base URL, `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Streamed bodies dropped before they finished, i.e. the client went away.
    abandoned: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Starts a server answering every request with `handler`, on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If no port can be bound on 127.0.0.1, or outside a tokio runtime. A handler's reply with
    /// an invalid status or header panics the request's task, which the client sees as a
    /// dropped connection.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let abandoned = Arc::new(AtomicUsize::new(0));
        let (log, gone) = (requests.clone(), abandoned.clone());
        let app = axum::Router::new().fallback(move |request: Request| {
            let (handler, log, gone) = (handler.clone(), log.clone(), gone.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    uri: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                    headers: parts.headers,
                    body,
                };
                let reply = handler(&recorded);
                log.lock().unwrap().push(recorded);
                respond(reply, gone)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding 127.0.0.1:0 for the mock");
        let url = format!("http://{}", listener.local_addr().expect("the mock's local address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serving the mock");
        });
        Self { url, requests, abandoned, task }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The only request so far.
    ///
    /// # Panics
    ///
    /// If there were none or several; the message lists them.
    pub fn single_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:?}");
        requests.into_iter().next().unwrap()
    }

    /// How many streamed replies the client abandoned before they ended (a plugin that stops
    /// reading, or a call that was cancelled or timed out).
    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts the stream as abandoned if it is dropped before its last chunk.
struct Watch(Arc<AtomicUsize>, bool);

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn respond(reply: Reply, abandoned: Arc<AtomicUsize>) -> Response {
    let (status, headers, body) = match reply {
        Reply::Full { status, headers, body } => (status, headers, Body::from(body)),
        Reply::Stream { status, headers, chunks, end } => {
            let chunks = futures::stream::iter(chunks).then(|(gap, chunk)| async move {
                tokio::time::sleep(gap).await;
                Ok::<_, std::io::Error>(Bytes::from(chunk))
            });
            let watch = Watch(abandoned, false);
            let tail = futures::stream::once(async move {
                let mut watch = watch; // moved whole, so its drop marks the end of the body
                match end {
                    End::Complete => {
                        watch.1 = true;
                        None
                    }
                    End::Drop => {
                        watch.1 = true;
                        // Let the last chunk reach the client before the connection breaks.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some(Err(std::io::Error::other("connection dropped by the mock")))
                    }
                    End::Stall => {
                        std::future::pending::<Infallible>().await;
                        unreachable!()
                    }
                }
            })
            .filter_map(std::future::ready);
            (status, headers, Body::from_stream(chunks.chain(tail)))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid HTTP status in the mock's reply");
    for (name, value) in headers {
        response.headers_mut().append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name in the mock's reply"),
            value.parse().expect("a valid header value in the mock's reply"),
        );
    }
    response
}
