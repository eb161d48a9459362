//! The HTTP API: routes, shared state and the middleware stack. Handlers translate HTTP to calls
//! on `memory` and `providers` and back; nothing below this module knows about HTTP.

mod admin;
mod anthropic;
mod auth;
mod chat;
mod embeddings;
mod error;
mod extract;
mod headers;
mod limits;
mod memory;
mod openai;
mod openapi;
mod responses;
mod status;
mod trace;
mod web;
mod workspaces;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::{ApiError, ErrorDetail};
pub use extract::{DEFAULT_USER, USER_HEADER};

use crate::config::Config;
use crate::conversation::Conversation;
use crate::memory::Memory;
use crate::plugins::{Registry, Reloader};
use crate::providers::Providers;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub conversation: Conversation,
    pub memory: Arc<Memory>,
    pub providers: Arc<Providers>,
    pub registry: Arc<Registry>,
    pub reloader: Arc<Reloader>,
    /// Per-key rates; `None` when every `[limits]` rate is off.
    pub limiter: Option<Arc<crate::limits::Limiter>>,
    pub started: Instant,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with every route and middleware, ready to serve.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    let mut api = Router::new()
        .route("/chat", post(chat::chat))
        .route("/memory/facts", get(memory::facts).post(memory::add_fact))
        .route("/memory/facts/{fact_id}", axum::routing::delete(memory::delete_fact))
        .route("/memory/{session_id}", get(memory::history).delete(memory::delete))
        .route("/sessions", get(memory::sessions))
        .route("/workspaces/{workspace_id}/files", post(workspaces::add_file).get(workspaces::files))
        .route("/workspaces/{workspace_id}/files/{file_name}", axum::routing::delete(workspaces::delete_file))
        .route("/workspaces/{workspace_id}", axum::routing::delete(workspaces::delete))
        .route("/v1/chat/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{response_id}", get(responses::get).delete(responses::delete))
        .route("/v1/responses/{response_id}/input_items", get(responses::input_items));
    if state.limiter.is_some() {
        // Inside the key check (added after it, so it runs first), so it knows whose key it is.
        api = api.route_layer(middleware::from_fn_with_state(state.clone(), limits::enforce));
    }
    if !state.config.api_keys.is_empty() {
        // A route layer, so unknown routes stay 404 rather than 401.
        let keys = Arc::new(state.config.api_keys.clone());
        api = api.route_layer(middleware::from_fn_with_state(keys, auth::require_api_key));
    }
    // Open to all: the page (which asks for a key itself), probes, metrics, the API's
    // description, and the admin API
    // (which has its own token). `/status` takes a client key or the admin token itself.
    Router::new()
        .merge(api)
        .route("/status", get(status::status))
        .route("/", get(web::index))
        .route("/healthz", get(status::healthz))
        .route("/openapi.json", get(openapi::openapi))
        .route("/admin/plugins/reload", post(admin::reload))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(log_server_errors))
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a handler panicked").into_response()))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::make_span)
                // One line per request at debug: at info its formatting took about 2% of a proxied
                // request's CPU (BENCHMARKS.md, the proxy profile).
                .on_response(trace::RecordStatus(DefaultOnResponse::new().level(tracing::Level::DEBUG))),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::invalid(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}

/// `GET /metrics`: Prometheus text format, plus which plugin versions are loaded right now.
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    let mut text = crate::metrics::render();
    text.push_str("# HELP codexcontinue_plugin_loaded Plugin versions loaded now, by role (stable or candidate).\n");
    text.push_str("# TYPE codexcontinue_plugin_loaded gauge\n");
    for (id, slot) in state.registry.slots().iter() {
        let versions =
            std::iter::once((&slot.stable, "stable")).chain(slot.candidate.as_ref().map(|c| (&c.plugin, "candidate")));
        for (plugin, role) in versions {
            text.push_str(&format!(
                "codexcontinue_plugin_loaded{{plugin=\"{id}\",version=\"{}\",role=\"{role}\"}} 1\n",
                plugin.manifest.version
            ));
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Counts requests and their latency by route template (never the raw path, which would make
/// one series per session id).
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("codexcontinue_http_requests_total", &labels).increment(1);
    metrics::histogram!("codexcontinue_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}

/// Logs the detail that 5xx responses carry in an [`ErrorDetail`] extension.
async fn log_server_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(ErrorDetail(detail)) = response.extensions().get::<ErrorDetail>() {
        tracing::error!(status = response.status().as_u16(), "{detail}");
    }
    response
}

/// RFC 3339 in UTC.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 in UTC with exactly three fractional digits, so timestamps also sort as strings.
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}
