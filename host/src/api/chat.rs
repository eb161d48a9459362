//! `POST /chat`: one turn of a conversation with memory. Replies as JSON, or as server-sent
//! events with `"stream": true` (`start`, `delta`..., then `done` or `error`).
//!
//! The turn (message and reply) is stored atomically after the provider answers, so a failed
//! call leaves the history unchanged and the client can simply retry.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Caller, Json};
use super::{AppState, rfc3339_ms};

use crate::memory::{Model, PromptMessage, PromptRequest, Turn};
use crate::plugins::Route;
use crate::providers::{self, ChatOptions, Reply, Usage};
use crate::runtime::types::StreamEvent;
use crate::store::{self, Scope};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// The user's message: not blank, at most `max_message_chars` characters (32768 by default; 413 beyond).
    #[schema(pattern = r"\S")]
    message: String,
    /// Continue this session; without one a new session starts.
    #[schema(value_type = Option<super::openapi::Id>)]
    session_id: Option<String>,
    #[schema(value_type = Option<super::openapi::UserId>)]
    user_id: Option<String>,
    /// A provider plugin id; the default provider otherwise.
    provider: Option<String>,
    #[schema(pattern = r"\S")]
    model: Option<String>,
    /// A system prompt for this turn.
    system: Option<String>,
    #[schema(minimum = 0.0, maximum = 2.0)]
    temperature: Option<f32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    top_p: Option<f32>,
    #[schema(minimum = 1)]
    max_tokens: Option<u32>,
    /// One stop sequence or a list of them.
    #[serde(default)]
    stop: Stop,
    /// Reply as server-sent events: `start`, `delta`..., then `done` or `error`.
    #[serde(default)]
    stream: bool,
    /// A workspace whose files are recalled into this chat.
    #[schema(value_type = Option<super::openapi::Id>)]
    workspace_id: Option<String>,
}

/// `stop` as OpenAI accepts it: one string or a list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Stop {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::None => Vec::new(),
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatReply {
    session_id: String,
    /// The id of the reply in the session's history.
    message_id: u64,
    reply: String,
    provider: String,
    model: String,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
    #[schema(value_type = String)]
    finish_reason: &'static str,
    usage: Usage,
    created_at: String,
    /// What the memory manager brought into the prompt.
    memory: MemoryUse,
}

/// How memory shaped a prompt.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct MemoryUse {
    /// Earlier messages (and workspace chunks) recalled into the long-term section.
    recalled: usize,
    /// Whether the session's rolling summary was included.
    summary: bool,
}

/// Everything a validated request needs, owned, so the streaming path can move it into the
/// response body.
struct Prepared {
    state: AppState,
    route: Route,
    scope: Scope,
    prompt: Vec<PromptMessage>,
    memory: MemoryUse,
    model: Arc<dyn Model>,
    message: String,
    options: ChatOptions,
}

/// One turn of a conversation.
#[utoipa::path(post, path = "/chat", operation_id = "chat", tag = "chat", request_body = ChatBody,
    params(super::openapi::UserHeader),
    responses(
        (status = 200, description = "The reply; with `stream: true`, server-sent events `start`, `delta`..., then `done` (this object) or `error`.",
            content((ChatReply = "application/json"), (serde_json::Value = "text/event-stream"))),
        (status = 400, body = super::openapi::ErrorResponse), (status = 404, description = "Unknown session or provider", body = super::openapi::ErrorResponse),
        (status = 413, body = super::openapi::ErrorResponse), (status = 415, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse),
        (status = 429, body = super::openapi::ErrorResponse), (status = 502, body = super::openapi::ErrorResponse), (status = 503, body = super::openapi::ErrorResponse), (status = 504, body = super::openapi::ErrorResponse),
    ))]
pub async fn chat(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ChatBody>,
) -> Result<Response, ApiError> {
    let stream = body.stream;
    let prepared = prepare(state, &caller, body).await?;
    if stream {
        return Ok(Sse::new(events(prepared)).keep_alive(KeepAlive::default()).into_response());
    }
    let messages = providers::messages(&prepared.prompt);
    let reply = prepared.state.providers.chat(prepared.route.clone(), &messages, prepared.options.clone()).await?;
    Ok(Json(record(&prepared, reply).await?).into_response())
}

/// Validates the body, resolves the user, session and provider, and builds the prompt.
async fn prepare(state: AppState, caller: &Caller, body: ChatBody) -> Result<Prepared, ApiError> {
    let limits = state.config.limits;
    if body.message.trim().is_empty() {
        return Err(ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, "empty_message", "message must not be empty"));
    }
    let chars = body.message.chars().count();
    if chars > limits.max_message_chars {
        return Err(ApiError::invalid(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_long",
            format!("message has {chars} characters; the limit is {}", limits.max_message_chars),
        ));
    }
    check_sampling(body.temperature, body.top_p)?;
    if body.max_tokens == Some(0) {
        return Err(ApiError::invalid_parameter("max_tokens must be at least 1"));
    }
    if body.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(ApiError::invalid_parameter("model must not be empty"));
    }
    let user = caller.user(body.user_id.as_deref())?;

    let (scope, existing) = match body.session_id {
        Some(id) => {
            check_session_id("session_id", &id)?;
            state.memory.session(&user, &id).await?;
            (Scope::new(user, id), true)
        }
        None => (Scope::new(user, uuid::Uuid::now_v7().to_string()), false),
    };
    let route = state.providers.select(body.provider.as_deref())?;
    if let Some(workspace) = body.workspace_id.as_deref() {
        check_id("workspace_id", workspace)?;
    }
    let model = state.providers.model(&route.primary.manifest.id);
    let model_name = state.providers.resolve_model(&route.primary, body.model.as_deref());
    let budget = state.memory.budget(state.providers.context_window(&route.primary, &model_name), body.max_tokens);
    let request = PromptRequest {
        scope: &scope,
        existing,
        system: body.system.as_deref(),
        message: &body.message,
        budget,
        workspace: body.workspace_id.as_deref(),
    };
    let prompt = state.memory.prompt(request, model.as_ref()).await?;
    let memory = MemoryUse { recalled: prompt.recalled, summary: prompt.summarized };
    let options = ChatOptions {
        model: body.model,
        temperature: body.temperature,
        top_p: body.top_p,
        max_tokens: body.max_tokens,
        stop: body.stop.into_vec(),
        ..ChatOptions::default()
    };
    Ok(Prepared { state, route, scope, prompt: prompt.messages, memory, model, message: body.message, options })
}

/// Checks a client-chosen id: 1-128 letters, digits and `._-`.
pub fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(ApiError::invalid_parameter(format!("{field} must be 1-128 letters, digits and ._-")));
    }
    Ok(())
}

/// A session id as the API accepts it: [`check_id`]'s rules, but 400 `invalid_session_id`.
pub fn check_session_id(field: &str, id: &str) -> Result<(), ApiError> {
    check_id(field, id).map_err(|e| ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_session_id", ..e })
}

/// Checks `temperature` (0-2) and `top_p` (0-1) as OpenAI defines them.
pub fn check_sampling(temperature: Option<f32>, top_p: Option<f32>) -> Result<(), ApiError> {
    if let Some(t) = temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return Err(ApiError::invalid_parameter(format!("temperature {t} is outside 0..=2")));
    }
    if let Some(p) = top_p.filter(|p| !(0.0..=1.0).contains(p)) {
        return Err(ApiError::invalid_parameter(format!("top_p {p} is outside 0..=1")));
    }
    Ok(())
}

/// Stores the turn and shapes the reply.
async fn record(prepared: &Prepared, reply: Reply) -> Result<ChatReply, ApiError> {
    let metadata = json!({
        "provider": reply.provider, "model": reply.model, "usage": reply.usage,
        "finish_reason": reply.finish_reason, "memory": prepared.memory,
    });
    let turn = Turn { user: prepared.message.clone(), reply: reply.content.clone(), metadata };
    let stored = prepared.state.memory.record(&prepared.scope, turn, Some(prepared.model.clone())).await?;
    let answer = stored.last().ok_or_else(|| ApiError::from(store::Error::Other("append returned nothing".into())))?;
    Ok(ChatReply {
        session_id: prepared.scope.session.clone(),
        message_id: answer.seq,
        reply: reply.content,
        provider: reply.provider,
        model: reply.model,
        finish_reason: reply.finish_reason,
        usage: reply.usage,
        created_at: rfc3339_ms(answer.created_at_ms),
        memory: prepared.memory,
    })
}

/// The SSE body. The provider call runs inside the stream, so a client that disconnects drops
/// the stream and with it the call and its upstream request.
fn events(prepared: Prepared) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, mut rx) = mpsc::channel::<StreamEvent>(crate::runtime::STREAM_BUFFER);
    // The provider first asked; `done` names the one that answered (a fallback, maybe).
    let start = json!({ "session_id": prepared.scope.session, "provider": providers::label(&prepared.route.primary) });
    async_stream(move |out| async move {
        out.send(event("start", &start)).await;
        let call = async {
            let messages = providers::messages(&prepared.prompt);
            let reply = prepared
                .state
                .providers
                .chat_stream(prepared.route.clone(), &messages, prepared.options.clone(), tx)
                .await?;
            record(&prepared, reply).await
        };
        tokio::pin!(call);
        let mut outcome = None;
        loop {
            tokio::select! {
                Some(next) = rx.recv() => {
                    // This API streams text; tool calls arrive whole in `done` (and on /v1).
                    if let StreamEvent::Delta(delta) = next {
                        out.send(event("delta", &json!({ "content": delta }))).await;
                    }
                }
                result = &mut call, if outcome.is_none() => outcome = Some(result),
                else => break,
            }
        }
        match outcome.expect("the loop ends only after the call") {
            Ok(reply) => out.send(event("done", &reply)).await,
            Err(error) => {
                if error.status.is_server_error() {
                    tracing::error!(
                        code = error.code,
                        "streamed chat failed: {}",
                        error.detail.as_deref().unwrap_or(&error.message)
                    );
                }
                out.send(event(
                    "error",
                    &json!({ "error": { "message": error.message, "type": error.kind, "code": error.code } }),
                ))
                .await
            }
        }
    })
}

fn event(name: &str, data: &impl Serialize) -> Event {
    Event::default().event(name).json_data(data).expect("our event payloads serialise")
}

/// Where an [`async_stream`] body sends its items.
pub(super) struct Out(mpsc::Sender<Event>);

impl Out {
    pub(super) async fn send(&self, event: Event) {
        let _ = self.0.send(event).await;
    }
}

/// A stream driven by `body`: the body runs only while the stream is polled, and stops when
/// the stream is dropped.
pub(super) fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(Out) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(1);
    let producer = body(Out(tx));
    let items = tokio_stream::wrappers::ReceiverStream::new(rx);
    futures::stream::select(items.map(Ok), futures::stream::once(producer).filter_map(|()| async { None }))
}
