//! `GET /memory/{session_id}` (history, paginated), `DELETE /memory/{session_id}`,
//! `GET /sessions` (the caller's chats), and the caller's facts: `GET` and `POST /memory/facts`,
//! `DELETE /memory/facts/{fact_id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{Caller, Json, Query};
use super::{AppState, rfc3339_ms};
use crate::ids::check_session_id;
use crate::memory::{Fact, Found, STATEMENT_CHARS, id_of};
use crate::store::{Message, Role, Scope, Session};

/// Messages per page when the client does not say.
const DEFAULT_PAGE: usize = 100;
/// Most messages per page.
const MAX_PAGE: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[param(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
    /// Messages per page, 1-1000 (default 100): the newest ones before `before`.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only messages with an id below this one (the `next_before` of the previous page).
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    before: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: String,
    title: Option<String>,
    created_at: String,
    updated_at: String,
    message_count: u64,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        Self {
            id: s.id,
            title: s.title,
            created_at: rfc3339_ms(s.created_at_ms),
            updated_at: rfc3339_ms(s.updated_at_ms),
            message_count: s.message_count,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    id: u64,
    role: Role,
    content: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            id: m.seq,
            role: m.role,
            content: m.content,
            created_at: rfc3339_ms(m.created_at_ms),
            metadata: m.metadata,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct History {
    session: SessionView,
    messages: Vec<MessageView>,
    /// Pass as `before` to get the previous page; absent on the first page of the session.
    next_before: Option<u64>,
    /// The rolling summary of older messages, once the session has outgrown the window.
    summary: Option<SummaryView>,
    /// What is indexed for recall beyond the words themselves.
    index: IndexView,
}

#[derive(Serialize, ToSchema)]
pub struct SummaryView {
    text: String,
    /// The summary covers messages up to and including this id.
    through_message_id: u64,
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct IndexView {
    /// Messages with an embedding, and the model that made them.
    embedded_messages: usize,
    embedding_model: Option<String>,
    /// Whether the server is still embedding or summarising this session's newest messages.
    updating: bool,
}

fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::invalid_parameter(format!("limit must be between 1 and {MAX_PAGE}"))),
    }
}

/// A session's messages, newest page first, with its summary and index.
#[utoipa::path(get, path = "/memory/{session_id}", operation_id = "get_memory", tag = "memory",
    params(("session_id" = super::openapi::Id, Path), HistoryQuery, super::openapi::UserHeader),
    responses((status = 200, body = History), (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn history(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    caller: Caller,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    check_session_id("session id", &session_id)?;
    let user = caller.user(query.user_id.as_deref())?;
    let limit = page_size(query.limit)?;
    let session = state.memory.session(&user, &session_id).await?;
    let scope = Scope::new(user, session_id);
    let messages = state.memory.history(&scope, query.before, limit).await?;
    let next_before = messages.first().map(|m| m.seq).filter(|&seq| seq > 1);
    let details = state.memory.details(&scope).await?;
    Ok(Json(History {
        session: session.into(),
        messages: messages.into_iter().map(Into::into).collect(),
        next_before,
        summary: details.summary.map(|s| SummaryView {
            text: s.text,
            through_message_id: s.through_seq,
            updated_at: rfc3339_ms(s.updated_at_ms),
        }),
        index: IndexView {
            embedded_messages: details.embedded,
            embedding_model: details.embedding_model,
            updating: details.updating,
        },
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    #[param(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
    /// Sessions listed, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Deletes a session: its messages, summary and embeddings.
#[utoipa::path(delete, path = "/memory/{session_id}", operation_id = "delete_memory", tag = "memory",
    params(("session_id" = super::openapi::Id, Path), UserQuery, super::openapi::UserHeader),
    responses((status = 204, description = "Deleted"), (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<StatusCode, ApiError> {
    check_session_id("session id", &session_id)?;
    let user = caller.user(query.user_id.as_deref())?;
    state.memory.delete(&Scope::new(user, session_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Sessions {
    user_id: String,
    sessions: Vec<SessionView>,
}

/// The caller's sessions, most recently active first.
#[utoipa::path(get, path = "/sessions", operation_id = "list_sessions", tag = "memory", params(UserQuery, super::openapi::UserHeader),
    responses((status = 200, body = Sessions), (status = 400, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> Result<Json<Sessions>, ApiError> {
    let user = caller.user(query.user_id.as_deref())?;
    let limit = page_size(query.limit)?;
    let sessions = state.memory.sessions(&user, limit).await?;
    Ok(Json(Sessions { user_id: user, sessions: sessions.into_iter().map(Into::into).collect() }))
}

#[derive(Serialize, ToSchema)]
pub struct FactSource {
    session_id: String,
    message_id: u64,
}

#[derive(Serialize, ToSchema)]
pub struct FactVersion {
    statement: String,
    valid_from: String,
    /// When the next version replaced it.
    valid_until: String,
}

#[derive(Serialize, ToSchema)]
pub struct FactView {
    /// The subject's words joined by `-`: a newer statement with the same id replaces this one.
    id: String,
    subject: String,
    /// The current statement.
    statement: String,
    valid_from: String,
    /// The message it was said in; none when added through `POST /memory/facts`.
    source: Option<FactSource>,
    /// Earlier statements about the subject, newest first.
    history: Vec<FactVersion>,
}

impl From<Fact> for FactView {
    fn from(f: Fact) -> Self {
        Self {
            id: f.id,
            subject: f.subject,
            statement: f.statement,
            valid_from: rfc3339_ms(f.valid_from_ms),
            source: f.source.map(|s| FactSource { session_id: s.session, message_id: s.seq }),
            history: f
                .history
                .into_iter()
                .map(|v| FactVersion {
                    statement: v.statement,
                    valid_from: rfc3339_ms(v.valid_from_ms),
                    valid_until: rfc3339_ms(v.valid_until_ms),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Facts {
    user_id: String,
    facts: Vec<FactView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FactsQuery {
    #[param(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
}

/// The caller's facts, most recently changed first, each with its history.
#[utoipa::path(get, path = "/memory/facts", operation_id = "list_facts", tag = "memory", params(FactsQuery, super::openapi::UserHeader),
    responses((status = 200, body = Facts), (status = 400, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn facts(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<FactsQuery>,
) -> Result<Json<Facts>, ApiError> {
    let user = caller.user(query.user_id.as_deref())?;
    let facts = state.memory.facts(&user).await?;
    Ok(Json(Facts { user_id: user, facts: facts.into_iter().map(Into::into).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactBody {
    /// What holds from now on, not blank.
    #[schema(pattern = r"\S", max_length = 300)]
    statement: String,
    /// What it is about; a fact with the same subject is replaced (and kept as history). Read
    /// from the statement when absent: the words before its verb.
    #[schema(pattern = r"[A-Za-z0-9]", max_length = 100)]
    subject: Option<String>,
    #[schema(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
}

/// Adds a fact, or corrects one: a statement about a subject that already has a fact replaces
/// it, and the old statement stays as history.
#[utoipa::path(post, path = "/memory/facts", operation_id = "add_fact", tag = "memory", request_body = FactBody,
    params(super::openapi::UserHeader),
    responses((status = 201, body = FactView), (status = 400, body = super::openapi::ErrorResponse), (status = 413, body = super::openapi::ErrorResponse),
        (status = 415, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn add_fact(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<FactBody>,
) -> Result<(StatusCode, Json<FactView>), ApiError> {
    let user = caller.user(body.user_id.as_deref())?;
    let statement = body.statement.trim();
    if statement.is_empty() || statement.chars().count() > STATEMENT_CHARS || statement.contains('\0') {
        return Err(ApiError::invalid_parameter(format!("statement must be 1-{STATEMENT_CHARS} characters of text")));
    }
    let mut found = Found::new(statement);
    if let Some(subject) = &body.subject {
        let subject = subject.trim();
        if id_of(subject).is_empty() || subject.chars().count() > 100 {
            return Err(ApiError::invalid_parameter("subject must be 1-100 characters with a letter or digit"));
        }
        found.subject = subject.to_lowercase();
    }
    let id = id_of(&found.subject);
    // The default provider embeds it when it can; recall falls back to BM25 otherwise.
    let model = state.providers.default_provider().ok().map(|p| state.providers.model(&p.manifest.id));
    let facts = state.memory.remember(&user, vec![found], None, model).await?;
    let fact = facts.into_iter().find(|f| f.id == id).ok_or_else(|| ApiError::internal("the fact was not kept"))?;
    Ok((StatusCode::CREATED, Json(fact.into())))
}

/// Deletes a fact and its history.
#[utoipa::path(delete, path = "/memory/facts/{fact_id}", operation_id = "delete_fact", tag = "memory",
    params(("fact_id" = String, Path, description = "A fact's id, from `GET /memory/facts`"), FactsQuery, super::openapi::UserHeader),
    responses((status = 204, description = "Deleted"), (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse)))]
pub async fn delete_fact(
    State(state): State<AppState>,
    Path(fact_id): Path<String>,
    caller: Caller,
    Query(query): Query<FactsQuery>,
) -> Result<StatusCode, ApiError> {
    let user = caller.user(query.user_id.as_deref())?;
    match state.memory.delete_fact(&user, &fact_id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("fact_not_found", format!("fact {fact_id:?} not found"))),
    }
}
