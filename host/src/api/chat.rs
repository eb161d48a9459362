//! `POST /chat`: one turn of a conversation with memory. Replies as JSON, or as server-sent
//! events with `"stream": true` (`start`, `reasoning`... and `delta`..., then `done` or
//! `error`).
//!
//! The turn (message and reply) is stored atomically after the provider answers, so a failed
//! call leaves the history unchanged and the client can simply retry.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{Caller, Json};
use super::{AppState, rfc3339_ms};

use crate::conversation::{Event, MemoryUse, Outcome, Session, TurnRequest, content};
use crate::providers::{ChatOptions, Usage};
use crate::runtime::types::{ContentPart, Message, ReasoningBlock, Role, StreamEvent};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// The user's message: not blank, at most `max_message_chars` characters (262144 by default; 413 beyond).
    #[schema(pattern = r"\S")]
    message: String,
    /// Images to show the model after the message: `http(s)` URLs, or
    /// `data:<media type>;base64,<data>` URLs (JPEG, PNG, GIF or WebP). Memory keeps only the
    /// message text and the images' media types.
    #[serde(default)]
    images: Vec<String>,
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
    /// Reply as server-sent events: `start`, `reasoning`... and `delta`..., then `done` or `error`.
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
    /// What the model reasoned before replying, when it shows its reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<String>,
    provider: String,
    model: String,
    /// `stop`, `length`, `tool_calls`, `content_filter`, `refusal` or `context_window`.
    #[schema(value_type = String)]
    finish_reason: &'static str,
    usage: Usage,
    created_at: String,
    /// What the memory manager brought into the prompt.
    memory: MemoryUse,
}

/// One turn of a conversation.
#[utoipa::path(post, path = "/chat", operation_id = "chat", tag = "chat", request_body = ChatBody,
    params(super::openapi::UserHeader),
    responses(
        (status = 200, description = "The reply; with `stream: true`, server-sent events `start`, `reasoning` (`{\"content\"}`, when the model shows its reasoning) and `delta` (`{\"content\"}`)..., then `done` (this object) or `error`.",
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
    if body.message.trim().is_empty() {
        return Err(ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, "empty_message", "message must not be empty"));
    }
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = body.system {
        messages.push(Message::text(Role::System, &system));
    }
    let mut message = Message::text(Role::User, &body.message);
    message.content.extend(body.images.iter().map(|url| ContentPart::Image(content::from_url(url))));
    messages.push(message);
    let request = TurnRequest {
        user: caller.user(body.user_id.as_deref())?,
        session: body.session_id.map_or(Session::New, Session::Existing),
        workspace: body.workspace_id,
        provider: body.provider,
        messages,
        options: ChatOptions {
            model: body.model,
            temperature: body.temperature,
            top_p: body.top_p,
            max_tokens: body.max_tokens,
            stop: body.stop.into_vec(),
            ..ChatOptions::default()
        },
        metadata: Default::default(),
    };
    let turn = state.conversation.prepare(request).await?;
    if !body.stream {
        return Ok(Json(reply(turn.reply().await?)).into_response());
    }
    // `start` names the provider first asked; `done` the one that answered (a fallback, maybe).
    let start = json!({ "session_id": turn.session(), "provider": turn.provider() });
    let events = turn.stream().filter_map(|event| async move {
        match event {
            // This API streams text; tool calls arrive whole in `done` (and on /v1).
            Event::Stream(StreamEvent::Delta(delta)) => Some(sse("delta", &json!({ "content": delta }))),
            Event::Stream(StreamEvent::Reasoning(text)) => Some(sse("reasoning", &json!({ "content": text }))),
            Event::Stream(_) | Event::Reasoned(_) => None,
            Event::Done(outcome) => Some(sse("done", &reply(*outcome))),
            Event::Failed(error) => Some(sse("error", &ApiError::from(error).streamed())),
        }
    });
    let events = futures::stream::once(async move { sse("start", &start) }).chain(events);
    Ok(Sse::new(events.map(Ok::<_, Infallible>)).keep_alive(KeepAlive::default()).into_response())
}

fn reply(outcome: Outcome) -> ChatReply {
    ChatReply {
        session_id: outcome.session.unwrap_or_default(),
        message_id: outcome.message_id.unwrap_or_default(),
        reasoning: reasoning_text(&outcome.reply.reasoning),
        reply: outcome.reply.content,
        provider: outcome.reply.provider,
        model: outcome.reply.model,
        finish_reason: outcome.reply.finish_reason,
        usage: outcome.reply.usage,
        created_at: rfc3339_ms(outcome.created_at_ms),
        memory: outcome.memory,
    }
}

/// The readable text of reasoning blocks, one paragraph each; `None` when there is none (the
/// model hid it, or did not reason).
pub fn reasoning_text(blocks: &[ReasoningBlock]) -> Option<String> {
    let texts: Vec<&str> = blocks.iter().map(|b| b.text.as_str()).filter(|t| !t.is_empty()).collect();
    (!texts.is_empty()).then(|| texts.join("\n\n"))
}

fn sse(name: &str, data: &impl Serialize) -> SseEvent {
    SseEvent::default().event(name).json_data(data).expect("our event payloads serialise")
}
