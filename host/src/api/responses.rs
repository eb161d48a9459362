//! OpenAI's Responses API, so Codex CLI (`wire_api = "responses"`) and the OpenAI SDKs'
//! `client.responses` work unchanged: `POST /v1/responses` (JSON, or the typed `response.*`
//! events), and for stored responses `GET`/`DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items`.
//!
//! A stored response (`store`, on by default) is a memory session of its own whose id is the
//! response id: it survives restarts, `previous_response_id` continues from it (the chain is
//! read back from the store), and deleting it deletes the session. With a session header
//! (`X-Session-Id`, or Codex's own `session-id`) the turn goes to that session instead, and the
//! response is not retrievable by id.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, Json};
use super::headers::{PROVIDER_HEADER, WORKSPACE_HEADER, header, session};
use crate::conversation::{self, Event, Outcome, Session, TurnRequest};
use crate::providers::{ChatOptions, Usage};
use crate::runtime::types::{ContentPart, Message, ReasoningBlock, Role, StreamEvent, ToolCall, ToolSpec};
use crate::store::{self, Scope};

/// Codex CLI's id for its conversation, stable across the turns of one session.
pub const AGENT_SESSION_HEADER: &str = "session-id";
/// How many stored responses a `previous_response_id` chain may reach back.
const MAX_CHAIN: usize = 1000;
/// OpenAI's built-in tools, which run on OpenAI's side; no provider here runs them.
const BUILT_IN_TOOLS: [&str; 8] = [
    "web_search",
    "web_search_preview",
    "file_search",
    "computer_use_preview",
    "computer_use",
    "code_interpreter",
    "image_generation",
    "mcp",
];

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResponsesBody {
    /// A model of the default provider, or `provider/model`.
    model: Option<String>,
    /// Text, or a list of items: messages, `function_call`, `function_call_output`, `reasoning`.
    #[schema(value_type = Object)]
    input: Input,
    /// A system prompt for this response (not carried over by `previous_response_id`).
    instructions: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    tools: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
    #[schema(minimum = 0.0, maximum = 2.0)]
    temperature: Option<f32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    top_p: Option<f32>,
    #[schema(minimum = 1)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    stream: bool,
    /// Keep the response, retrievable by id (default true).
    store: Option<bool>,
    /// Continue from this stored response.
    previous_response_id: Option<String>,
    /// Whose memory, when API keys are off.
    #[schema(value_type = Option<super::openapi::UserId>)]
    user: Option<String>,
    /// `reasoning.encrypted_content` adds the reasoning items' encrypted content to the output,
    /// for clients that keep their own history (`store: false`); other values are ignored.
    #[serde(default)]
    include: Vec<String>,
    /// Everything else (reasoning, text, prompt_cache_key...) is accepted and ignored.
    #[serde(flatten)]
    #[schema(ignore)]
    _other: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Value>),
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// `POST /v1/responses`.
#[utoipa::path(post, path = "/v1/responses", operation_id = "create_response", tag = "openai", request_body = ResponsesBody,
    params(super::openapi::DialectHeaders),
    responses(
        (status = 200, description = "A `response` object, or `response.*` server-sent events through `response.completed`",
            content((Object = "application/json"), (serde_json::Value = "text/event-stream"))),
        (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 413, body = super::openapi::ErrorResponse),
        (status = 415, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse),
        (status = 429, body = super::openapi::ErrorResponse), (status = 502, body = super::openapi::ErrorResponse), (status = 503, body = super::openapi::ErrorResponse), (status = 504, body = super::openapi::ErrorResponse),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<ResponsesBody>,
) -> Result<Response, ApiError> {
    let user = caller.user(if caller.is_authenticated() { None } else { body.user.as_deref() })?;
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    let named = session(&headers, AGENT_SESSION_HEADER, state.config.memory.agent_sessions);
    let stored = named.is_none() && body.store.unwrap_or(true);
    let session = match (named, stored) {
        (Some(name), _) => Session::Named(name.to_string()),
        (None, true) => Session::Named(id.clone()),
        (None, false) => Session::None,
    };

    let mut messages = Vec::new();
    if let Some(instructions) = &body.instructions {
        messages.push(Message::text(Role::System, instructions));
    }
    if let Some(previous) = &body.previous_response_id {
        // Stored reasoning goes back only to the provider that produced it.
        let provider = header(&headers, PROVIDER_HEADER);
        let (route, _) = state.conversation.route(provider, body.model.clone()).map_err(ApiError::from)?;
        let label = crate::providers::label(&route.primary);
        messages.extend(chain(&state, &user, previous, &label).await?);
    }
    match body.input {
        Input::Text(text) => messages.push(Message::text(Role::User, &text)),
        Input::Items(items) => {
            for item in items {
                decode(item, &mut messages)?;
            }
            // Reasoning with no message or call after it belongs to no reply: it is dropped.
            if messages.last().is_some_and(reasoning_only) {
                messages.pop();
            }
        }
    }
    let mut metadata = Map::new();
    metadata.insert("response_id".into(), json!(id));
    if let Some(previous) = &body.previous_response_id {
        metadata.insert("previous_response_id".into(), json!(previous));
    }
    let request = TurnRequest {
        user,
        session,
        workspace: header(&headers, WORKSPACE_HEADER).map(str::to_string),
        provider: header(&headers, PROVIDER_HEADER).map(str::to_string),
        messages,
        options: ChatOptions {
            model: body.model,
            temperature: body.temperature,
            top_p: body.top_p,
            max_tokens: body.max_output_tokens,
            tools: tools(body.tools, body.tool_choice.as_ref())?,
            tool_choice: body.tool_choice.map(|c| match c {
                Value::String(s) => s,
                other => other["name"].as_str().unwrap_or("auto").to_string(),
            }),
            ..ChatOptions::default()
        },
        metadata,
    };
    let turn = state.conversation.prepare(request).await?;
    let instructions = body.instructions.map(|i| state.conversation.masked(&i));
    let encrypted = body.include.iter().any(|i| i == "reasoning.encrypted_content");
    let echo = Echo { id, previous: body.previous_response_id, instructions, store: stored, encrypted };
    if body.stream {
        return Ok(Sse::new(events(turn, echo)).keep_alive(KeepAlive::default()).into_response());
    }
    let outcome = turn.reply().await?;
    let output = output(&outcome.reply, echo.encrypted);
    Ok(Json(response(&echo, "completed", &outcome.reply.model, output, Some(&outcome))).into_response())
}

/// The messages of a stored chain, oldest first, as `provider` (a reply's label) should see
/// them again.
async fn chain(state: &AppState, user: &str, previous: &str, provider: &str) -> Result<Vec<Message>, ApiError> {
    let mut turns = Vec::new();
    let mut next = Some(previous.to_string());
    while let Some(id) = next.take() {
        if turns.len() == MAX_CHAIN {
            return Err(invalid(format!("the response chain is longer than {MAX_CHAIN} responses")));
        }
        let messages = stored(state, user, &id).await.map_err(|e| match e.status {
            StatusCode::NOT_FOUND => invalid(format!("previous response {id:?} not found")),
            _ => e,
        })?;
        next = messages
            .last()
            .and_then(|m| m.metadata.as_ref())
            .and_then(|m| m["previous_response_id"].as_str())
            .map(str::to_string);
        turns.push(messages);
    }
    Ok(turns.into_iter().rev().flatten().map(|m| conversation::replay(&m, provider)).collect())
}

/// A stored response's messages (its input, then the reply), or 404.
async fn stored(state: &AppState, user: &str, id: &str) -> Result<Vec<store::Message>, ApiError> {
    let not_found = || ApiError::not_found("response_not_found", format!("no stored response {id:?}"));
    if !id.starts_with("resp_") || crate::ids::check_id("response id", id).is_err() {
        return Err(not_found());
    }
    let session = state.memory.session(user, id).await.map_err(|_| not_found())?;
    let messages = state.memory.history(&Scope::new(user, &session.id), None, 1000).await?;
    match messages.last() {
        Some(last) if last.role == store::Role::Assistant => Ok(messages),
        _ => Err(not_found()),
    }
}

/// One input item as canonical messages. Reasoning items and function calls join the assistant
/// message they belong to (reasoning comes first, its message or calls follow), encrypted
/// content and ids intact, so they replay unchanged to the vendor that made them.
fn decode(item: Value, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let kind = item["type"].as_str().unwrap_or(if item.get("role").is_some() { "message" } else { "" });
    match kind {
        "message" => {
            let role = match item["role"].as_str() {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system" | "developer") => Role::System,
                other => return Err(invalid(format!("input: message role {other:?} is not supported"))),
            };
            let message = conversation::content::message(role, parts(&item["content"])?);
            match out.last_mut() {
                // The reply whose reasoning came just before.
                Some(last) if role == Role::Assistant && reasoning_only(last) => last.content = message.content,
                _ => out.push(message),
            }
        }
        "function_call" | "custom_tool_call" => {
            let arguments = item.get("arguments").or_else(|| item.get("input"));
            let call = ToolCall {
                id: item["call_id"].as_str().unwrap_or_default().to_string(),
                name: item["name"].as_str().unwrap_or_default().to_string(),
                arguments: arguments.and_then(Value::as_str).unwrap_or("{}").to_string(),
            };
            match out.last_mut() {
                Some(last) if last.role == Role::Assistant => last.tool_calls.push(call),
                _ => {
                    let mut message = Message::text(Role::Assistant, "");
                    message.tool_calls.push(call);
                    out.push(message);
                }
            }
        }
        "function_call_output" | "custom_tool_call_output" => {
            let mut result = Message::text(Role::Tool, &content(&item["output"])?);
            result.tool_call_id = item["call_id"].as_str().map(str::to_string);
            out.push(result);
        }
        "reasoning" => {
            let texts = |key: &str, kind: &str| -> Vec<String> {
                let parts = item[key].as_array().into_iter().flatten().filter(|p| p["type"] == kind);
                parts.filter_map(|p| p["text"].as_str().map(str::to_string)).collect()
            };
            let mut text = texts("content", "reasoning_text");
            if text.is_empty() {
                text = texts("summary", "summary_text");
            }
            let block = ReasoningBlock {
                text: text.join("\n\n"),
                signature: None,
                encrypted_content: item["encrypted_content"].as_str().map(str::to_string),
                id: item["id"].as_str().map(str::to_string),
            };
            match out.last_mut() {
                Some(last) if reasoning_only(last) => last.reasoning.push(block),
                _ => {
                    let mut message = Message::text(Role::Assistant, "");
                    message.reasoning.push(block);
                    out.push(message);
                }
            }
        }
        other => return Err(invalid(format!("input items of type {other:?} are not supported"))),
    }
    Ok(())
}

/// An assistant message that holds only reasoning so far: the message or calls of the same
/// reply join it.
fn reasoning_only(message: &Message) -> bool {
    message.role == Role::Assistant
        && !message.reasoning.is_empty()
        && message.tool_calls.is_empty()
        && message.plain_text().is_empty()
}

/// A message's content: a string, or text and `input_image` parts in order (an image by
/// `image_url`, an `http(s)` or `data:` URL; `file_id` images are refused).
fn parts(value: &Value) -> Result<Vec<ContentPart>, ApiError> {
    let Value::Array(parts) = value else { return Ok(vec![ContentPart::Text(content(value)?)]) };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        if part["type"] != "input_image" {
            out.push(ContentPart::Text(content(&Value::Array(vec![part.clone()]))?));
            continue;
        }
        match part["image_url"].as_str() {
            Some(url) => out.push(ContentPart::Image(conversation::content::from_url(url))),
            None if part.get("file_id").is_some_and(|f| !f.is_null()) => {
                return Err(invalid(
                    "input_image by file_id needs OpenAI's Files API, which this server does not have; send image_url",
                ));
            }
            None => return Err(invalid("input_image needs an image_url")),
        }
    }
    Ok(out)
}

/// Text content: a string, or parts of which the text ones are kept.
fn content(value: &Value) -> Result<String, ApiError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for part in parts {
                match part["type"].as_str() {
                    Some("input_text" | "output_text" | "text" | "refusal") => {
                        texts.push(part["text"].as_str().or(part["refusal"].as_str()).unwrap_or_default())
                    }
                    other => {
                        return Err(invalid(format!("content parts of type {other:?} are not supported; send text")));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(invalid("content must be a string or a list of parts")),
    }
}

/// Function tools as canonical tool specs. OpenAI's built-in tools run on OpenAI's servers, not
/// here: merely offered (Codex offers web search by default) they are left out, and a request
/// that forces one is refused. Client-run tools without a JSON schema (custom, local_shell) are
/// left out too.
fn tools(tools: Vec<Value>, choice: Option<&Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let built_in = |kind: &str| BUILT_IN_TOOLS.iter().any(|b| kind.starts_with(b));
    if let Some(kind) = choice.and_then(|c| c["type"].as_str()).filter(|k| built_in(k)) {
        return Err(invalid(format!(
            "the built-in tool {kind:?} runs on OpenAI's servers; this server does not run it: use function tools"
        )));
    }
    let mut out = Vec::new();
    for tool in tools {
        if tool["type"] == "function" {
            out.push(ToolSpec {
                name: tool["name"].as_str().unwrap_or_default().to_string(),
                description: tool["description"].as_str().map(str::to_string),
                parameters: if tool["parameters"].is_null() { "{}".into() } else { tool["parameters"].to_string() },
            });
        }
    }
    Ok(out)
}

/// What the response object repeats from its request.
struct Echo {
    id: String,
    previous: Option<String>,
    instructions: Option<String>,
    store: bool,
    /// Whether reasoning items carry their encrypted content (`include`).
    encrypted: bool,
}

fn item_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The output items of a reply: its reasoning, a message when there is text, then its function
/// calls.
fn output(reply: &crate::providers::Reply, encrypted: bool) -> Vec<Value> {
    let mut items: Vec<Value> = reply
        .reasoning
        .iter()
        .map(|b| {
            let id = b.id.clone().unwrap_or_else(|| item_id("rs"));
            reasoning_item(&id, &b.text, b.encrypted_content.as_deref().filter(|_| encrypted), "completed")
        })
        .collect();
    if !reply.content.is_empty() || reply.tool_calls.is_empty() {
        let refused = reply.finish_reason == "refusal";
        items.push(message_item(&item_id("msg"), &reply.content, "completed", refused));
    }
    items.extend(reply.tool_calls.iter().map(|c| call_item(&item_id("fc"), &c.id, &c.name, &c.arguments, "completed")));
    items
}

/// A stored message's item id: its response and its place in the session.
fn stored_item_id(response_id: &str, seq: u64) -> String {
    format!("msg_{}_{seq}", response_id.trim_start_matches("resp_"))
}

/// An assistant message item; a refusal is a `refusal` part, as OpenAI writes one.
fn message_item(id: &str, text: &str, status: &str, refused: bool) -> Value {
    let part = match refused {
        true => json!({ "type": "refusal", "refusal": text }),
        false => json!({ "type": "output_text", "text": text, "annotations": [] }),
    };
    json!({ "type": "message", "id": id, "status": status, "role": "assistant", "content": [part] })
}

/// A `reasoning` item: the readable text as `reasoning_text` content, and the encrypted content
/// when the client asked for it.
fn reasoning_item(id: &str, text: &str, encrypted: Option<&str>, status: &str) -> Value {
    let content: Vec<Value> =
        (!text.is_empty()).then(|| json!({ "type": "reasoning_text", "text": text })).into_iter().collect();
    let mut item = json!({ "type": "reasoning", "id": id, "summary": [], "content": content, "status": status });
    if let Some(encrypted) = encrypted {
        item["encrypted_content"] = json!(encrypted);
    }
    item
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({ "type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status })
}

fn usage(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens, "input_tokens_details": { "cached_tokens": usage.cached_read_tokens },
        "output_tokens": usage.completion_tokens, "output_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
        "total_tokens": usage.total_tokens,
    })
}

/// The `response` object.
fn response(echo: &Echo, status: &str, model: &str, output: Vec<Value>, outcome: Option<&Outcome>) -> Value {
    let created = outcome.map_or_else(store::now_ms, |o| o.created_at_ms) / 1000;
    let incomplete = outcome.and_then(|o| match o.reply.finish_reason {
        "length" | "context_window" => Some(json!({ "reason": "max_output_tokens" })),
        "content_filter" => Some(json!({ "reason": "content_filter" })),
        _ => None,
    });
    let status = if incomplete.is_some() { "incomplete" } else { status };
    json!({
        "id": echo.id, "object": "response", "created_at": created, "status": status, "model": model,
        "output": output, "usage": outcome.map(|o| usage(&o.reply.usage)),
        "previous_response_id": echo.previous, "instructions": echo.instructions, "store": echo.store,
        "error": null, "incomplete_details": incomplete, "parallel_tool_calls": true,
        "text": { "format": { "type": "text" } }, "tool_choice": "auto", "tools": [], "metadata": {},
    })
}

/// Which output item is open in a stream.
enum Open {
    Reasoning { id: String, text: String },
    Text { id: String, text: String },
    Call { index: u32, id: String, call_id: String, name: String, arguments: String },
}

/// Numbers the events and keeps the output items as they complete.
struct Writer {
    sequence: u64,
    items: Vec<Value>,
    open: Option<Open>,
    /// Whether reasoning items carry their encrypted content.
    encrypted: bool,
    /// Whether the reply is a refusal (known when it ends, before the last items close).
    refused: bool,
}

impl Writer {
    fn event(&mut self, kind: &str, mut data: Value) -> SseEvent {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        SseEvent::default().event(kind).data(data.to_string())
    }

    fn close(&mut self, out: &mut Vec<SseEvent>) {
        let index = self.items.len();
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning { id, text }) => {
                return self.close_reasoning(id, text, None, out);
            }
            Some(Open::Text { id, text }) => {
                let at = json!({ "item_id": id, "output_index": index, "content_index": 0 });
                out.push(self.event("response.output_text.done", merge(&at, json!({ "text": text, "logprobs": [] }))));
                let part = json!({ "type": "output_text", "text": text, "annotations": [] });
                out.push(self.event("response.content_part.done", merge(&at, json!({ "part": part }))));
                message_item(&id, &text, "completed", self.refused)
            }
            Some(Open::Call { id, call_id, name, arguments, .. }) => {
                let done = json!({ "item_id": id, "output_index": index, "arguments": arguments });
                out.push(self.event("response.function_call_arguments.done", done));
                call_item(&id, &call_id, &name, &arguments, "completed")
            }
        };
        out.push(self.event("response.output_item.done", json!({ "output_index": index, "item": item })));
        self.items.push(item);
    }

    /// Streams reasoning text into an open reasoning item, opening one first; its
    /// `reasoning_text` part opens with the first text.
    fn reasoning(&mut self, delta: String, out: &mut Vec<SseEvent>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            self.open_reasoning(item_id("rs"), out);
        }
        let index = self.items.len();
        let Some(Open::Reasoning { id, text }) = &mut self.open else { unreachable!("opened above") };
        let (id, first) = (id.clone(), text.is_empty());
        text.push_str(&delta);
        let at = json!({ "item_id": id, "output_index": index, "content_index": 0 });
        if first {
            let part = json!({ "type": "reasoning_text", "text": "" });
            out.push(self.event("response.content_part.added", merge(&at, json!({ "part": part }))));
        }
        out.push(self.event("response.reasoning_text.delta", merge(&at, json!({ "delta": delta }))));
    }

    fn open_reasoning(&mut self, id: String, out: &mut Vec<SseEvent>) {
        let item = reasoning_item(&id, "", None, "in_progress");
        out.push(self.event("response.output_item.added", json!({ "output_index": self.items.len(), "item": item })));
        self.open = Some(Open::Reasoning { id, text: String::new() });
    }

    /// The reply's reasoning blocks: the streamed item closes with the first block's encrypted
    /// content; the other blocks follow as whole items.
    fn reasoned(&mut self, blocks: Vec<ReasoningBlock>, out: &mut Vec<SseEvent>) {
        let mut blocks = blocks.into_iter();
        if matches!(self.open, Some(Open::Reasoning { .. })) {
            let Some(Open::Reasoning { id, text }) = self.open.take() else { unreachable!("matched above") };
            let first = blocks.next();
            self.close_reasoning(id, text, first.and_then(|b| b.encrypted_content), out);
        }
        self.close(out);
        for block in blocks {
            self.open_reasoning(block.id.unwrap_or_else(|| item_id("rs")), out);
            if !block.text.is_empty() {
                self.reasoning(block.text, out);
            }
            let Some(Open::Reasoning { id, text }) = self.open.take() else { unreachable!("opened above") };
            self.close_reasoning(id, text, block.encrypted_content, out);
        }
    }

    fn close_reasoning(&mut self, id: String, text: String, encrypted: Option<String>, out: &mut Vec<SseEvent>) {
        let index = self.items.len();
        if !text.is_empty() {
            let at = json!({ "item_id": id, "output_index": index, "content_index": 0 });
            out.push(self.event("response.reasoning_text.done", merge(&at, json!({ "text": text }))));
            let part = json!({ "type": "reasoning_text", "text": text });
            out.push(self.event("response.content_part.done", merge(&at, json!({ "part": part }))));
        }
        let encrypted = encrypted.filter(|_| self.encrypted);
        let item = reasoning_item(&id, &text, encrypted.as_deref(), "completed");
        out.push(self.event("response.output_item.done", json!({ "output_index": index, "item": item })));
        self.items.push(item);
    }

    fn text(&mut self, delta: String, out: &mut Vec<SseEvent>) {
        if !matches!(self.open, Some(Open::Text { .. })) {
            self.close(out);
            let id = item_id("msg");
            let index = self.items.len();
            let item =
                json!({ "type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": [] });
            out.push(self.event("response.output_item.added", json!({ "output_index": index, "item": item })));
            let part = json!({ "type": "output_text", "text": "", "annotations": [] });
            let added = json!({ "item_id": id, "output_index": index, "content_index": 0, "part": part });
            out.push(self.event("response.content_part.added", added));
            self.open = Some(Open::Text { id, text: String::new() });
        }
        let index = self.items.len();
        let Some(Open::Text { id, text }) = &mut self.open else { unreachable!("opened above") };
        text.push_str(&delta);
        let data = json!({ "item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": [] });
        out.push(self.event("response.output_text.delta", data));
    }

    fn call(&mut self, call: crate::runtime::types::ToolCallDelta, out: &mut Vec<SseEvent>) {
        let same = matches!(&self.open, Some(Open::Call { index, .. }) if *index == call.index);
        if !same {
            self.close(out);
            let (id, call_id, name) = (item_id("fc"), call.id.unwrap_or_default(), call.name.unwrap_or_default());
            let item = call_item(&id, &call_id, &name, "", "in_progress");
            let added = json!({ "output_index": self.items.len(), "item": item });
            out.push(self.event("response.output_item.added", added));
            self.open = Some(Open::Call { index: call.index, id, call_id, name, arguments: String::new() });
        }
        let index = self.items.len();
        let Some(Open::Call { id, arguments, .. }) = &mut self.open else { unreachable!("opened above") };
        arguments.push_str(&call.arguments);
        let data = json!({ "item_id": id, "output_index": index, "delta": call.arguments });
        if !call.arguments.is_empty() {
            out.push(self.event("response.function_call_arguments.delta", data));
        }
    }
}

fn merge(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// `response.created`, `response.in_progress`, the output items with their deltas, then
/// `response.completed`; or `error` and `response.failed`.
fn events(turn: conversation::Turn, echo: Echo) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let model = turn.model();
    let mut writer = Writer { sequence: 0, items: Vec::new(), open: None, encrypted: echo.encrypted, refused: false };
    let started = response(&echo, "in_progress", &model, Vec::new(), None);
    let head = vec![
        writer.event("response.created", json!({ "response": started })),
        writer.event("response.in_progress", json!({ "response": started })),
    ];
    // A reasoning item closes with its encrypted content, which comes only with the reply: the
    // text after it is held until then.
    let body = conversation::reasoning_first(turn.stream()).flat_map(move |event| {
        let mut out = Vec::new();
        match event {
            Event::Stream(StreamEvent::Reasoning(text)) => writer.reasoning(text, &mut out),
            Event::Reasoned(blocks) => writer.reasoned(blocks, &mut out),
            Event::Stream(StreamEvent::Delta(text)) => writer.text(text, &mut out),
            Event::Stream(StreamEvent::ToolCall(call)) => writer.call(call, &mut out),
            Event::Stream(StreamEvent::Usage(_)) => {}
            Event::Done(outcome) => {
                writer.refused = outcome.reply.finish_reason == "refusal";
                if writer.items.is_empty() && writer.open.is_none() {
                    writer.text(String::new(), &mut out);
                }
                writer.close(&mut out);
                let items = std::mem::take(&mut writer.items);
                let done = response(&echo, "completed", &outcome.reply.model, items, Some(&outcome));
                let kind = if done["status"] == "incomplete" { "response.incomplete" } else { "response.completed" };
                out.push(writer.event(kind, json!({ "response": done })));
            }
            Event::Failed(error) => {
                let error = ApiError::from(error);
                let body = error.streamed();
                let detail = json!({ "code": error.code, "message": error.message });
                out.push(
                    writer.event(
                        "error",
                        json!({ "code": error.code, "message": body["error"]["message"], "param": null }),
                    ),
                );
                let mut failed = response(&echo, "failed", &model, Vec::new(), None);
                failed["error"] = detail;
                out.push(writer.event("response.failed", json!({ "response": failed })));
            }
        }
        futures::stream::iter(out)
    });
    futures::stream::iter(head).chain(body).map(Ok)
}

/// `GET /v1/responses/{id}`: a stored response.
#[utoipa::path(get, path = "/v1/responses/{response_id}", operation_id = "get_response", tag = "openai",
    params(("response_id" = String, Path, description = "A stored response's id")),
    responses((status = 200, description = "The `response` object", body = Object), (status = 404, body = super::openapi::ErrorResponse)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let user = caller.user(None)?;
    let messages = stored(&state, &user, &id).await?;
    let reply = messages.last().expect("stored() returns a reply last");
    let metadata = reply.metadata.clone().unwrap_or_default();
    let replay = conversation::replay(reply, metadata["provider"].as_str().unwrap_or_default());
    let mut items: Vec<Value> = (replay.reasoning.iter().enumerate())
        .map(|(i, b)| {
            let item = b.id.clone().unwrap_or_else(|| format!("rs_{}_{i}", id.trim_start_matches("resp_")));
            reasoning_item(&item, &b.text, None, "completed")
        })
        .collect();
    let text = replay.plain_text();
    if !text.is_empty() || replay.tool_calls.is_empty() {
        let refused = metadata["finish_reason"] == "refusal";
        items.push(message_item(&stored_item_id(&id, reply.seq), &text, "completed", refused));
    }
    for (i, call) in replay.tool_calls.iter().enumerate() {
        items.push(call_item(
            &format!("fc_{}_{i}", id.trim_start_matches("resp_")),
            &call.id,
            &call.name,
            &call.arguments,
            "completed",
        ));
    }
    let echo = Echo {
        id: id.clone(),
        previous: metadata["previous_response_id"].as_str().map(str::to_string),
        instructions: None,
        store: true,
        encrypted: false,
    };
    let mut body = response(&echo, "completed", metadata["model"].as_str().unwrap_or_default(), items, None);
    body["created_at"] = json!(reply.created_at_ms / 1000);
    if let Some(u) = metadata.get("usage") {
        let usage_of = |k: &str| u[k].as_u64().unwrap_or_default() as u32;
        let u = Usage {
            total_tokens: usage_of("total_tokens"),
            cached_read_tokens: usage_of("cached_read_tokens"),
            cached_write_tokens: usage_of("cached_write_tokens"),
            reasoning_tokens: usage_of("reasoning_tokens"),
            ..Usage::counted(usage_of("prompt_tokens"), usage_of("completion_tokens"))
        };
        body["usage"] = usage(&u);
    }
    Ok(Json(body).into_response())
}

/// `GET /v1/responses/{id}/input_items`: what the client sent for a stored response, newest
/// first (`?order=asc` for oldest first).
#[utoipa::path(get, path = "/v1/responses/{response_id}/input_items", operation_id = "list_input_items", tag = "openai",
    params(("response_id" = String, Path, description = "A stored response's id"), InputItemsQuery),
    responses((status = 200, description = "A list of input items", body = Object), (status = 400, body = super::openapi::ErrorResponse),
        (status = 404, body = super::openapi::ErrorResponse)))]
pub async fn input_items(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::extract::Query(query): super::extract::Query<InputItemsQuery>,
) -> Result<Response, ApiError> {
    let user = caller.user(None)?;
    let messages = stored(&state, &user, &id).await?;
    let mut data: Vec<Value> = messages[..messages.len() - 1]
        .iter()
        .map(|m| {
            let item_id = stored_item_id(&id, m.seq);
            match m.role {
                store::Role::Tool => json!({ "type": "function_call_output", "id": item_id,
                    "call_id": m.metadata.as_ref().and_then(|x| x["tool_call_id"].as_str()), "output": m.content }),
                role => json!({ "type": "message", "id": item_id, "role": role, "status": "completed",
                    "content": [{ "type": "input_text", "text": m.content }] }),
            }
        })
        .collect();
    if query.order.as_deref() != Some("asc") {
        data.reverse();
    }
    let (first, last) = (data.first().map(|d| d["id"].clone()), data.last().map(|d| d["id"].clone()));
    Ok(Json(json!({ "object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false }))
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InputItemsQuery {
    /// `desc` (default) or `asc`.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
}

/// `DELETE /v1/responses/{id}`: deletes a stored response (its session) for good.
#[utoipa::path(delete, path = "/v1/responses/{response_id}", operation_id = "delete_response", tag = "openai",
    params(("response_id" = String, Path, description = "A stored response's id")),
    responses((status = 200, description = "`{id, object, deleted}`", body = Object), (status = 404, body = super::openapi::ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = caller.user(None)?;
    stored(&state, &user, &id).await?;
    state.memory.delete(&Scope::new(&user, &id)).await?;
    Ok(Json(json!({ "id": id, "object": "response", "deleted": true })).into_response())
}
