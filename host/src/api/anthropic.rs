//! Anthropic's Messages API, so Claude Code and the Anthropic SDKs work unchanged
//! (`ANTHROPIC_BASE_URL=http://127.0.0.1:8080`): `POST /v1/messages` (JSON, or the exact
//! streaming event sequence) and `POST /v1/messages/count_tokens`, with errors in Anthropic's
//! shape. Any provider answers; the request is translated into the one conversation pipeline.
//!
//! Memory: `X-Session-Id`, or Claude Code's own `X-Claude-Code-Session-Id`, stores the turns in
//! that session; clients that send their whole history get the long-term section added.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::Caller;
use super::headers::{PROVIDER_HEADER, WORKSPACE_HEADER, header, session};
use crate::conversation::{Event, Session, TurnRequest, content};
use crate::providers::{ChatOptions, Reply};
use crate::runtime::types::{
    ContentPart, Image, ImageData, Message, ReasoningBlock, Role, StreamEvent, ToolCall, ToolSpec,
};
use crate::tokens;

/// Claude Code's id for its conversation, stable across the turns of one session.
pub const AGENT_SESSION_HEADER: &str = "x-claude-code-session-id";

#[derive(Debug, Deserialize, ToSchema)]
pub struct MessagesBody {
    /// A model of the default provider, or `provider/model`.
    model: String,
    #[schema(minimum = 1)]
    max_tokens: Option<u32>,
    #[schema(value_type = Vec<Object>)]
    messages: Vec<InMessage>,
    /// A string or a list of text blocks.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    system: Option<Text>,
    #[serde(default)]
    stop_sequences: Vec<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    temperature: Option<f32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    top_p: Option<f32>,
    /// Accepted and ignored: the provider contract (WIT 0.1) has no top-k yet.
    #[allow(dead_code)]
    top_k: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    tools: Vec<InTool>,
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<ToolChoice>,
    #[serde(default)]
    stream: bool,
    /// Everything else (thinking, metadata, context_management...) is accepted and ignored.
    #[serde(flatten)]
    #[schema(ignore)]
    _other: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    content: Text,
}

/// Content as Anthropic accepts it: a string, or a list of blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Text {
    Plain(String),
    Blocks(Vec<Block>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<Text>,
        #[serde(default)]
        is_error: bool,
    },
    Image {
        source: ImageSource,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    #[serde(other)]
    Unsupported,
}

/// Where an image block's bytes are: inline, or at a URL the vendor fetches.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// Anthropic's Files API (`file`), which no provider here can read.
    #[serde(other)]
    Unsupported,
}

#[derive(Debug, Deserialize)]
struct InTool {
    name: String,
    description: Option<String>,
    /// Absent for Anthropic's server tools (web search...), which no provider here runs.
    input_schema: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolChoice {
    Auto {},
    Any {},
    None {},
    Tool { name: String },
}

/// An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`.
pub struct AnthropicError(ApiError);

impl From<ApiError> for AnthropicError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<crate::conversation::Error> for AnthropicError {
    fn from(e: crate::conversation::Error) -> Self {
        Self(e.into())
    }
}

impl AnthropicError {
    fn body(&self) -> Value {
        json!({ "type": "error", "error": { "type": error_type(self.0.status), "message": self.0.message } })
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let body = self.body();
        // Keep the status, headers (Retry-After) and logging of the common error; change the
        // body. Anthropic answers every malformed request with 400, never 422.
        let (mut parts, _) = self.0.into_response().into_parts();
        if parts.status == StatusCode::UNPROCESSABLE_ENTITY {
            parts.status = StatusCode::BAD_REQUEST;
        }
        let mut response = Response::from_parts(parts, axum::body::Body::from(body.to_string()));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Anthropic's error type for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 405 | 409 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

fn invalid(message: impl Into<String>) -> AnthropicError {
    AnthropicError(ApiError::invalid(StatusCode::BAD_REQUEST, "invalid_request", message))
}

fn parse<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, AnthropicError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(AnthropicError(ApiError::invalid(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a request with `Content-Type: application/json`",
        )));
    }
    serde_json::from_slice(body).map_err(|e| invalid(format!("malformed request: {e}")))
}

/// `POST /v1/messages`.
#[utoipa::path(post, path = "/v1/messages", operation_id = "create_message", tag = "anthropic", request_body = MessagesBody,
    params(super::openapi::DialectHeaders),
    responses(
        (status = 200, description = "A `message` object, or Anthropic's server-sent events from `message_start` to `message_stop`",
            content((Object = "application/json"), (serde_json::Value = "text/event-stream"))),
        (status = 400, body = Object), (status = 404, body = Object), (status = 413, body = Object), (status = 415, body = Object),
        (status = 429, body = Object), (status = 502, body = Object), (status = 503, body = Object), (status = 504, body = Object),
    ))]
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AnthropicError> {
    let body: MessagesBody = parse(&headers, &body)?;
    let stream = body.stream;
    let request = turn_request(&state, &caller, &headers, body)?;
    let turn = state.conversation.prepare(request).await?;
    if !stream {
        let outcome = turn.reply().await?;
        return Ok(axum::Json(message(&outcome.reply)).into_response());
    }
    Ok(Sse::new(events(turn)).keep_alive(KeepAlive::default()).into_response())
}

fn turn_request(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: MessagesBody,
) -> Result<TurnRequest, AnthropicError> {
    if body.max_tokens == Some(0) {
        return Err(invalid("max_tokens: must be at least 1"));
    }
    let mut messages = Vec::with_capacity(body.messages.len() + 1);
    if let Some(system) = body.system {
        messages.push(Message::text(Role::System, &text(system)?));
    }
    for message in body.messages {
        decode(message, &mut messages)?;
    }
    let session = session(headers, AGENT_SESSION_HEADER, state.config.memory.agent_sessions);
    let options = ChatOptions {
        model: Some(body.model),
        temperature: body.temperature,
        top_p: body.top_p,
        max_tokens: body.max_tokens,
        stop: body.stop_sequences,
        tools: body
            .tools
            .into_iter()
            .filter_map(|t| {
                let parameters = t.input_schema?.to_string();
                Some(ToolSpec { name: t.name, description: t.description, parameters })
            })
            .collect(),
        tool_choice: body.tool_choice.map(|c| match c {
            ToolChoice::Auto {} => "auto".into(),
            ToolChoice::Any {} => "required".into(),
            ToolChoice::None {} => "none".into(),
            ToolChoice::Tool { name } => name,
        }),
        extra_json: None,
    };
    Ok(TurnRequest {
        user: caller.user(None)?,
        session: session.map_or(Session::None, |id| Session::Named(id.to_string())),
        workspace: header(headers, WORKSPACE_HEADER).map(str::to_string),
        provider: header(headers, PROVIDER_HEADER).map(str::to_string),
        messages,
        options,
        metadata: Default::default(),
    })
}

/// The text of a string or of text blocks.
fn text(content: Text) -> Result<String, AnthropicError> {
    match content {
        Text::Plain(text) => Ok(text),
        Text::Blocks(blocks) => {
            let mut out = Vec::new();
            for block in blocks {
                match block {
                    Block::Text { text } => out.push(text),
                    _ => return Err(invalid("only text blocks are supported here")),
                }
            }
            Ok(out.join("\n"))
        }
    }
}

/// One Anthropic message as canonical messages: tool results become tool messages (before any
/// text of the same turn), tool uses become the assistant's tool calls, images stay in order
/// with the text, and an assistant's `thinking` / `redacted_thinking` blocks become its
/// reasoning, signatures intact, so they replay unchanged to the vendor that made them.
fn decode(message: InMessage, out: &mut Vec<Message>) -> Result<(), AnthropicError> {
    let role = match message.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        // Claude Code sends mid-conversation instructions as `system` messages.
        "system" => Role::System,
        other => return Err(invalid(format!("messages: role {other:?} must be user, assistant or system"))),
    };
    let blocks = match message.content {
        Text::Plain(text) => vec![Block::Text { text }],
        Text::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut reasoning = Vec::new();
    for block in blocks {
        match block {
            Block::Text { text } => parts.push(ContentPart::Text(text)),
            Block::Image { source } => parts.push(ContentPart::Image(match source {
                ImageSource::Base64 { media_type, data } => Image::Base64(ImageData { media_type, data }),
                ImageSource::Url { url } => content::from_url(&url),
                ImageSource::Unsupported => return Err(invalid("image sources must be base64 or url")),
            })),
            Block::ToolUse { id, name, input } if role == Role::Assistant => {
                let arguments = if input.is_null() { "{}".to_string() } else { input.to_string() };
                calls.push(ToolCall { id, name, arguments });
            }
            Block::ToolResult { tool_use_id, content, is_error } if role == Role::User => {
                let mut content = content.map(text).transpose()?.unwrap_or_default();
                if is_error {
                    content = format!("Error: {content}");
                }
                let mut result = Message::text(Role::Tool, &content);
                result.tool_call_id = Some(tool_use_id);
                out.push(result);
            }
            Block::Thinking { thinking, signature } if role == Role::Assistant => reasoning.push(ReasoningBlock {
                text: thinking,
                signature: signature.filter(|s| !s.is_empty()),
                encrypted_content: None,
                id: None,
            }),
            Block::RedactedThinking { data } if role == Role::Assistant => reasoning.push(ReasoningBlock {
                text: String::new(),
                signature: None,
                encrypted_content: Some(data),
                id: None,
            }),
            // Only assistant turns think; anything else a client put there is not replayable.
            Block::Thinking { .. } | Block::RedactedThinking { .. } => {}
            Block::ToolUse { .. } | Block::ToolResult { .. } => {
                return Err(invalid("tool_use blocks belong to assistant turns, tool_result blocks to user turns"));
            }
            Block::Unsupported => {
                return Err(invalid("only text, image, tool_use, tool_result and thinking blocks are supported"));
            }
        }
    }
    if !parts.is_empty() || !calls.is_empty() || !reasoning.is_empty() {
        let mut message = content::message(role, parts);
        message.tool_calls = calls;
        message.reasoning = reasoning;
        out.push(message);
    }
    Ok(())
}

fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        "content_filter" | "refusal" => "refusal",
        "context_window" => "model_context_window_exceeded",
        _ => "end_turn",
    }
}

fn usage(reply: &Reply) -> Value {
    json!({
        // Anthropic's input_tokens leave out what was read from or written to the cache.
        "input_tokens": reply.usage.prompt_tokens.saturating_sub(reply.usage.cached_read_tokens + reply.usage.cached_write_tokens),
        "output_tokens": reply.usage.completion_tokens,
        "cache_creation_input_tokens": reply.usage.cached_write_tokens,
        "cache_read_input_tokens": reply.usage.cached_read_tokens,
    })
}

/// Tool arguments as the JSON object Anthropic's `input` is (a model's malformed JSON stays a
/// string under `_raw`, rather than failing the reply).
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({ "_raw": arguments }),
    }
}

/// A reasoning block as Anthropic writes it: `redacted_thinking` when only encrypted data is
/// left, else `thinking` with its signature.
fn thinking(block: &ReasoningBlock) -> Value {
    match &block.encrypted_content {
        Some(data) if block.text.is_empty() => json!({ "type": "redacted_thinking", "data": data }),
        _ => {
            json!({ "type": "thinking", "thinking": block.text, "signature": block.signature.as_deref().unwrap_or_default() })
        }
    }
}

/// The `message` object: thinking blocks first, then text, then tool uses.
fn message(reply: &Reply) -> Value {
    let mut content: Vec<Value> = reply.reasoning.iter().map(thinking).collect();
    if !reply.content.is_empty() || reply.tool_calls.is_empty() {
        content.push(json!({ "type": "text", "text": reply.content }));
    }
    for call in &reply.tool_calls {
        content.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input(&call.arguments) }));
    }
    json!({
        "id": message_id(), "type": "message", "role": "assistant", "model": reply.model, "content": content,
        "stop_reason": stop_reason(reply.finish_reason), "stop_sequence": null, "usage": usage(reply),
    })
}

/// Which content block is open in a stream, so the next delta knows whether to start one.
#[derive(Default)]
struct Blocks {
    next: usize,
    open: Option<Open>,
}

#[derive(PartialEq)]
enum Open {
    Thinking,
    Text,
    Tool(u32),
}

impl Blocks {
    /// Closes the open block unless it is `want`; returns the events and whether `want` is open.
    fn switch(&mut self, want: &Open, out: &mut Vec<SseEvent>) -> bool {
        if self.open.as_ref() == Some(want) {
            return true;
        }
        self.close(out);
        false
    }

    fn start(&mut self, open: Open, block: Value, out: &mut Vec<SseEvent>) {
        out.push(sse(
            "content_block_start",
            json!({ "type": "content_block_start", "index": self.next, "content_block": block }),
        ));
        self.open = Some(open);
    }

    fn delta(&self, delta: Value, out: &mut Vec<SseEvent>) {
        out.push(sse(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": self.next, "delta": delta }),
        ));
    }

    /// A complete reasoning block as its own block: a `thinking` block streams its text and then
    /// its signature; `redacted_thinking` comes whole in its start event.
    fn whole(&mut self, block: &ReasoningBlock, out: &mut Vec<SseEvent>) {
        self.close(out);
        let start = thinking(block);
        if start["type"] == "redacted_thinking" {
            self.start(Open::Thinking, start, out);
        } else {
            self.start(Open::Thinking, json!({ "type": "thinking", "thinking": "", "signature": "" }), out);
            self.delta(json!({ "type": "thinking_delta", "thinking": block.text }), out);
            self.sign(block, out);
        }
        self.close(out);
    }

    /// The `signature_delta` that ends a thinking block, when the block is signed.
    fn sign(&self, block: &ReasoningBlock, out: &mut Vec<SseEvent>) {
        if let Some(signature) = &block.signature {
            self.delta(json!({ "type": "signature_delta", "signature": signature }), out);
        }
    }

    fn close(&mut self, out: &mut Vec<SseEvent>) {
        if self.open.take().is_some() {
            out.push(sse("content_block_stop", json!({ "type": "content_block_stop", "index": self.next })));
            self.next += 1;
        }
    }
}

fn sse(name: &str, data: Value) -> SseEvent {
    SseEvent::default().event(name).data(data.to_string())
}

/// Anthropic's event sequence: `message_start`, `ping`, per block `content_block_start`,
/// deltas and `content_block_stop`, then `message_delta` and `message_stop`; or `error`.
/// Thinking streams first; its signature comes only with the reply, so the text after it is
/// held until then ([`crate::conversation::reasoning_first`]).
fn events(turn: crate::conversation::Turn) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let start = json!({ "type": "message_start", "message": {
        "id": message_id(), "type": "message", "role": "assistant", "model": turn.model(), "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": { "input_tokens": 0, "output_tokens": 0 },
    }});
    let head = [sse("message_start", start), sse("ping", json!({ "type": "ping" }))];
    let mut blocks = Blocks::default();
    let body = crate::conversation::reasoning_first(turn.stream()).flat_map(move |event| {
        let mut out = Vec::new();
        match event {
            Event::Stream(StreamEvent::Reasoning(text)) => {
                let open = blocks.open == Some(Open::Thinking);
                if !open && blocks.next == 0 && blocks.open.is_none() {
                    blocks.start(
                        Open::Thinking,
                        json!({ "type": "thinking", "thinking": "", "signature": "" }),
                        &mut out,
                    );
                }
                // Reasoning after the text has begun has no place in Anthropic's order: the
                // reply's blocks still hold it for the next turn.
                if blocks.open == Some(Open::Thinking) {
                    blocks.delta(json!({ "type": "thinking_delta", "thinking": text }), &mut out);
                }
            }
            Event::Reasoned(reasoning) => {
                let mut rest = reasoning.iter().collect::<Vec<_>>();
                if blocks.open == Some(Open::Thinking) {
                    // The streamed block is the first readable one; its signature closes it.
                    if let Some(at) = rest.iter().position(|b| b.encrypted_content.is_none()) {
                        blocks.sign(rest.remove(at), &mut out);
                    }
                    blocks.close(&mut out);
                }
                rest.into_iter().for_each(|block| blocks.whole(block, &mut out));
            }
            Event::Stream(StreamEvent::Delta(text)) => {
                if !blocks.switch(&Open::Text, &mut out) {
                    blocks.start(Open::Text, json!({ "type": "text", "text": "" }), &mut out);
                }
                blocks.delta(json!({ "type": "text_delta", "text": text }), &mut out);
            }
            Event::Stream(StreamEvent::ToolCall(call)) => {
                let want = Open::Tool(call.index);
                if !blocks.switch(&want, &mut out) {
                    let block = json!({ "type": "tool_use", "id": call.id.unwrap_or_default(),
                        "name": call.name.unwrap_or_default(), "input": {} });
                    blocks.start(want, block, &mut out);
                }
                if !call.arguments.is_empty() {
                    blocks.delta(json!({ "type": "input_json_delta", "partial_json": call.arguments }), &mut out);
                }
            }
            Event::Stream(StreamEvent::Usage(_)) => {}
            Event::Done(outcome) => {
                let reply = &outcome.reply;
                if blocks.next == 0 && blocks.open.is_none() {
                    blocks.start(Open::Text, json!({ "type": "text", "text": "" }), &mut out);
                }
                blocks.close(&mut out);
                out.push(sse(
                    "message_delta",
                    json!({ "type": "message_delta",
                    "delta": { "stop_reason": stop_reason(reply.finish_reason), "stop_sequence": null },
                    "usage": usage(reply) }),
                ));
                out.push(sse("message_stop", json!({ "type": "message_stop" })));
            }
            Event::Failed(error) => {
                let error = AnthropicError(ApiError::from(error));
                error.0.streamed();
                out.push(sse("error", error.body()));
            }
        }
        futures::stream::iter(out)
    });
    futures::stream::iter(head).chain(body).map(Ok)
}

/// `POST /v1/messages/count_tokens`: the request's input tokens, counted with the server's
/// tokenizer (an estimate for vendors that count differently).
#[utoipa::path(post, path = "/v1/messages/count_tokens", operation_id = "count_message_tokens", tag = "anthropic", request_body = MessagesBody,
    responses((status = 200, description = "`{\"input_tokens\": n}`", body = Object), (status = 400, body = Object),
        (status = 413, body = Object), (status = 415, body = Object)))]
pub async fn count_tokens(headers: HeaderMap, body: Bytes) -> Result<Response, AnthropicError> {
    let body: MessagesBody = parse(&headers, &body)?;
    let mut messages = Vec::new();
    if let Some(system) = body.system {
        messages.push(Message::text(Role::System, &text(system)?));
    }
    for message in body.messages {
        decode(message, &mut messages)?;
    }
    let mut texts: Vec<String> = messages
        .into_iter()
        .flat_map(|m| std::iter::once(m.plain_text()).chain(m.tool_calls.into_iter().map(|c| c.arguments)))
        .collect();
    texts.extend(
        body.tools.into_iter().map(|t| {
            format!("{} {} {}", t.name, t.description.unwrap_or_default(), t.input_schema.unwrap_or_default())
        }),
    );
    let count = tokens::count_prompt(texts.iter().map(String::as_str));
    Ok(axum::Json(json!({ "input_tokens": count })).into_response())
}
