//! The network edge: what reaches the API at all. `server` owns the accept loop (connection
//! cap, `TCP_NODELAY`, header-read timeout, graceful drain on shutdown); `hosts` refuses
//! requests addressed to names this server does not answer to (DNS rebinding) and browser
//! requests from origins it does not trust; `body` puts a deadline on request bodies. The API
//! below never sees what this module refuses, and this module knows nothing of the API's routes.

mod body;
mod hosts;
mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

pub use hosts::{HostEntry, Policy};
pub use server::{accept, run};

use crate::config::EdgeConfig;

/// `app` inside the edge's per-request layers: host and origin check (outermost), CORS when
/// origins are configured, and the request-body deadline.
pub fn layers(app: Router, policy: Policy, config: &EdgeConfig) -> Router {
    let body_timeout = Duration::from_millis(config.body_timeout_ms);
    let mut app = app.layer(middleware::from_fn_with_state(body_timeout, body::deadline));
    if let Some(cors) = cors(policy.cors_origins()) {
        app = app.layer(cors);
    }
    app.layer(middleware::from_fn_with_state(Arc::new(policy), hosts::check))
}

/// Explicit CORS for the configured origins only; none configured means no CORS headers, so
/// browsers keep other sites' pages from reading replies.
fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    // Mirrored rather than `*`: a wildcard never covers `Authorization` in browsers.
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}
