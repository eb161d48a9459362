//! `/admin/*`: operator actions, behind a bearer token (`CODEXCONTINUE_ADMIN_TOKEN`); without a
//! token configured the admin API is off. `POST /admin/plugins/reload` rescans the plugins
//! directory, for deployments where file watching is unavailable.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use super::error::ApiError;
use super::extract::Json;
use crate::plugins::Summary;

/// Checks the bearer token, comparing in constant time.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "admin_disabled",
            "the admin API is off; set CODEXCONTINUE_ADMIN_TOKEN to enable it",
        ));
    };
    if !token_matches(expected, headers) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_admin_token",
            "a valid admin bearer token is required",
        ));
    }
    Ok(())
}

/// Whether the request carries the admin bearer token (never true with the admin API off).
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.admin_token.as_deref().is_some_and(|expected| token_matches(expected, headers))
}

/// Compares the bearer token with `expected` in constant time.
fn token_matches(expected: &str, headers: &HeaderMap) -> bool {
    let given = super::auth::bearer(headers).unwrap_or("");
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `POST /admin/plugins/reload`: what was staged, unchanged, failed and unloaded.
#[utoipa::path(post, path = "/admin/plugins/reload", operation_id = "reload_plugins", tag = "operations", security(("admin_token" = [])),
    responses((status = 200, body = Summary), (status = 401, body = super::openapi::ErrorResponse), (status = 403, body = super::openapi::ErrorResponse)))]
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Summary>, ApiError> {
    authorize(&state, &headers)?;
    let summary =
        state.reloader.sync().await.map_err(|e| ApiError::internal(format!("reading the plugins directory: {e}")))?;
    Ok(Json(summary))
}
