//! Extractors whose rejections use our JSON error shape, and the caller's user id.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// `axum::Json`, but a malformed body gets `{"error": ...}` with 400/413/415/422.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query`, with our error shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The header naming the caller's user when the body or query does not.
pub const USER_HEADER: &str = "x-user-id";

/// The user everyone is when nobody says otherwise.
pub const DEFAULT_USER: &str = "default";

/// The caller's user: `explicit` (body or query `user_id`), else the `X-User-Id` header, else
/// [`DEFAULT_USER`]. Ids are 1-128 characters of letters, digits and `._@:-`.
pub fn user_id(headers: &HeaderMap, explicit: Option<&str>) -> Result<String, ApiError> {
    let header = headers.get(USER_HEADER).map(|v| v.to_str().unwrap_or("\u{0}"));
    let user = explicit.or(header).unwrap_or(DEFAULT_USER);
    let valid =
        !user.is_empty() && user.len() <= 128 && user.chars().all(|c| c.is_ascii_alphanumeric() || "._@:-".contains(c));
    if !valid {
        return Err(ApiError::invalid(
            StatusCode::BAD_REQUEST,
            "invalid_user_id",
            "user_id must be 1-128 characters of letters, digits and ._@:-",
        ));
    }
    Ok(user.to_string())
}
