//! The span each request runs in: named and attributed by the HTTP semantic conventions, a child
//! of the client's W3C `traceparent` when it sent one (exported only when telemetry is on).

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::Response;
use opentelemetry_http::HeaderExtractor;
use tower_http::trace::{DefaultOnResponse, OnResponse};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::REQUEST_ID;

/// `GET /memory/{session_id}`: method and route template (never the raw path as the name, which
/// would make one name per session).
pub fn make_span(request: &Request) -> Span {
    let method = request.method();
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = Empty,
        request_id = id,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    // Without the OpenTelemetry layer (telemetry off) there is nothing to attach to.
    let _ = span.set_parent(parent);
    span
}

/// Records the status on the request span, then logs the response as tower-http does.
#[derive(Clone)]
pub struct RecordStatus(pub DefaultOnResponse);

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        self.0.on_response(response, latency, span);
    }
}
