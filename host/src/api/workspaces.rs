//! Workspace memory: `POST /workspaces/{id}/files` attaches a text file (chunked and indexed),
//! `GET /workspaces/{id}/files` lists them, `DELETE /workspaces/{id}/files/{name}` removes one
//! and `DELETE /workspaces/{id}` the workspace.
//! Chats name a workspace with `workspace_id` (or `X-Workspace-Id` on `/v1`) to recall from it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Caller, Json, Query};
use super::{AppState, rfc3339_ms};
use crate::ids::check_id;
use crate::memory::WorkspaceFile;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    /// The file's name; a later upload with the same name replaces it.
    #[schema(pattern = r"^\s*\S.{0,255}$", max_length = 256)]
    name: String,
    /// UTF-8 text, not blank.
    #[schema(pattern = r"\S")]
    content: String,
    #[schema(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    #[param(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FileView {
    name: String,
    chunks: usize,
    uploaded_at: String,
}

impl From<WorkspaceFile> for FileView {
    fn from(f: WorkspaceFile) -> Self {
        Self { name: f.name, chunks: f.chunks, uploaded_at: rfc3339_ms(f.uploaded_at_ms) }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Files {
    workspace_id: String,
    files: Vec<FileView>,
}

/// Attaches a text file to a workspace; a file of the same name is replaced (its old text is
/// removed from the store). 413 `workspace_quota_exceeded` when the user's workspaces would
/// hold more than `[memory] workspace_quota_mb`.
#[utoipa::path(post, path = "/workspaces/{workspace_id}/files", operation_id = "add_workspace_file", tag = "workspaces", request_body = FileBody,
    params(("workspace_id" = super::openapi::Id, Path), super::openapi::UserHeader),
    responses((status = 201, body = FileView), (status = 400, body = super::openapi::ErrorResponse), (status = 413, body = super::openapi::ErrorResponse),
        (status = 415, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn add_file(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Caller,
    Json(body): Json<FileBody>,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    check_id("workspace id", &workspace)?;
    let user = caller.user(body.user_id.as_deref())?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 256 {
        return Err(ApiError::invalid_parameter("name must be 1-256 characters"));
    }
    if body.content.trim().is_empty() {
        return Err(ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, "empty_file", "content must not be empty"));
    }
    if body.content.contains('\0') {
        return Err(ApiError::invalid_parameter("content must be text; it contains NUL bytes"));
    }
    // The default provider embeds the chunks when it can; recall falls back to BM25 otherwise.
    let model = state.providers.default_provider().ok().map(|p| state.providers.model(&p.manifest.id));
    let file = state.memory.add_file(&user, &workspace, name, &body.content, model).await?;
    Ok((StatusCode::CREATED, Json(file.into())))
}

/// A workspace's files.
#[utoipa::path(get, path = "/workspaces/{workspace_id}/files", operation_id = "list_workspace_files", tag = "workspaces",
    params(("workspace_id" = super::openapi::Id, Path), UserQuery, super::openapi::UserHeader),
    responses((status = 200, body = Files), (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn files(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<Json<Files>, ApiError> {
    check_id("workspace id", &workspace)?;
    let user = caller.user(query.user_id.as_deref())?;
    let files = state.memory.files(&user, &workspace).await.map_err(not_found)?;
    Ok(Json(Files { workspace_id: workspace, files: files.into_iter().map(Into::into).collect() }))
}

/// Removes one file from a workspace, its text from the store too.
#[utoipa::path(delete, path = "/workspaces/{workspace_id}/files/{file_name}", operation_id = "delete_workspace_file", tag = "workspaces",
    params(("workspace_id" = super::openapi::Id, Path), ("file_name" = String, Path, description = "The file's name, URL-encoded"), UserQuery, super::openapi::UserHeader),
    responses((status = 204, description = "Deleted"), (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn delete_file(
    State(state): State<AppState>,
    Path((workspace, name)): Path<(String, String)>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<StatusCode, ApiError> {
    check_id("workspace id", &workspace)?;
    let user = caller.user(query.user_id.as_deref())?;
    match state.memory.delete_file(&user, &workspace, &name).await.map_err(not_found)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("file_not_found", format!("workspace {workspace:?} has no file {name:?}"))),
    }
}

/// Deletes a workspace and all its files.
#[utoipa::path(delete, path = "/workspaces/{workspace_id}", operation_id = "delete_workspace", tag = "workspaces",
    params(("workspace_id" = super::openapi::Id, Path), UserQuery, super::openapi::UserHeader),
    responses((status = 204, description = "Deleted"), (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<StatusCode, ApiError> {
    check_id("workspace id", &workspace)?;
    let user = caller.user(query.user_id.as_deref())?;
    state.memory.delete_workspace(&user, &workspace).await.map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(e: crate::memory::Error) -> ApiError {
    match e {
        crate::memory::Error::SessionNotFound(id) => {
            ApiError::not_found("workspace_not_found", format!("workspace {id:?} not found"))
        }
        other => other.into(),
    }
}
