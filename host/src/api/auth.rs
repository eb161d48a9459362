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
    let user = match authenticate(&keys, request.headers()) {
        Ok(user) => user.to_string(),
        Err(refusal) => return refusal.into_response(),
    };
    request.extensions_mut().insert(Authenticated(user));
    next.run(request).await
}

/// A request without a valid key: answered 401 with `WWW-Authenticate: Bearer`.
#[derive(Debug)]
pub struct Unauthorized {
    code: &'static str,
    message: &'static str,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response =
            ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", self.code, self.message).into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

/// The key a request presents, as `Authorization: Bearer` or `X-Api-Key`.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    bearer(headers).or_else(|| headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok())).filter(|k| !k.is_empty())
}

/// The user whose key the request presents.
pub fn authenticate<'k>(keys: &'k ApiKeys, headers: &HeaderMap) -> Result<&'k str, Unauthorized> {
    match presented(headers) {
        None => Err(Unauthorized {
            code: "missing_api_key",
            message: "an API key is required: send `Authorization: Bearer <key>`",
        }),
        Some(key) => {
            keys.user(key).ok_or(Unauthorized { code: "invalid_api_key", message: "the API key is not valid" })
        }
    }
}
