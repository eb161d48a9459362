//! Client authentication: with API keys configured, every route but `/`, `/healthz`,
//! `/metrics` and `/admin/*` (which has its own token) needs a key, sent as OpenAI SDKs send
//! theirs (`Authorization: Bearer <key>`) or as `X-Api-Key`. The key's user is then the caller.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Authenticated;
use crate::auth::ApiKeys;

const API_KEY_HEADER: &str = "x-api-key";

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Rejects requests without a known key; tells the handlers whose key it was.
pub async fn require_api_key(State(keys): State<Arc<ApiKeys>>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let given = bearer(headers).or_else(|| headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()));
    let user = match given {
        None | Some("") => {
            return unauthorized("missing_api_key", "an API key is required: send `Authorization: Bearer <key>`");
        }
        Some(key) => match keys.user(key) {
            Some(user) => user.to_string(),
            None => return unauthorized("invalid_api_key", "the API key is not valid"),
        },
    };
    request.extensions_mut().insert(Authenticated(user));
    next.run(request).await
}

fn unauthorized(code: &'static str, message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", code, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
