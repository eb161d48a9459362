//! Workspace memory: `POST /workspaces/{id}/files` attaches a text file (chunked and indexed),
//! `GET /workspaces/{id}/files` lists them, `DELETE /workspaces/{id}` removes the workspace.
//! Chats name a workspace with `workspace_id` (or `X-Workspace-Id` on `/v1`) to recall from it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::chat::check_id;
use super::error::ApiError;
use super::extract::{Caller, Json, Query};
use super::{AppState, rfc3339_ms};
use crate::memory::WorkspaceFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    /// The file's name; a later upload with the same name replaces it in recall.
    name: String,
    /// UTF-8 text.
    content: String,
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    user_id: Option<String>,
}

#[derive(Serialize)]
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

#[derive(Serialize)]
pub struct Files {
    workspace_id: String,
    files: Vec<FileView>,
}

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
        return Err(ApiError::invalid(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_parameter",
            "name must be 1-256 characters",
        ));
    }
    if body.content.trim().is_empty() {
        return Err(ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, "empty_file", "content must not be empty"));
    }
    // The default provider embeds the chunks when it can; recall falls back to BM25 otherwise.
    let model = state.providers.default_provider().ok().map(|p| state.providers.model(&p.manifest.id));
    let file = state.memory.add_file(&user, &workspace, name, &body.content, model).await?;
    Ok((StatusCode::CREATED, Json(file.into())))
}

pub async fn files(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<Json<Files>, ApiError> {
    let user = caller.user(query.user_id.as_deref())?;
    let files = state.memory.files(&user, &workspace).await.map_err(not_found)?;
    Ok(Json(Files { workspace_id: workspace, files: files.into_iter().map(Into::into).collect() }))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<StatusCode, ApiError> {
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
