//! Extractors whose rejections use our JSON error shape, and the caller's user id.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::auth::valid_user_id;

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

/// The user whose API key the auth layer accepted (a request extension).
#[derive(Debug, Clone)]
pub struct Authenticated(pub String);

/// Who is calling: the API key's user when keys are on, else whoever the request says.
#[derive(Debug, Clone)]
pub struct Caller {
    authenticated: Option<String>,
    header: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            authenticated: parts.extensions.get::<Authenticated>().map(|a| a.0.clone()),
            // A header that is not text can never be a valid id; keep it invalid.
            header: parts.headers.get(USER_HEADER).map(|v| v.to_str().unwrap_or("\u{0}").to_string()),
        })
    }
}

impl Caller {
    /// The caller's user. With API keys on, the key decides, and a request that names another
    /// user is refused. Otherwise: `explicit` (body or query `user_id`), else the `X-User-Id`
    /// header, else [`DEFAULT_USER`]. Every id the request gives must be valid: 1-128
    /// characters of letters, digits and `._@:-`.
    pub fn user(&self, explicit: Option<&str>) -> Result<String, ApiError> {
        let claimed: Vec<&str> = [explicit, self.header.as_deref()].into_iter().flatten().collect();
        if !claimed.iter().all(|user| valid_user_id(user)) {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "invalid_user_id",
                "user_id must be 1-128 characters of letters, digits and ._@:-",
            ));
        }
        match &self.authenticated {
            Some(user) if claimed.iter().any(|other| other != user) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "user_mismatch",
                "this API key belongs to another user than the request names",
            )),
            Some(user) => Ok(user.clone()),
            None => Ok(claimed.first().copied().unwrap_or(DEFAULT_USER).to_string()),
        }
    }

    /// Whether an API key identified the caller.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }
}
