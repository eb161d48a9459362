//! The OpenAI-compatible surface, so any OpenAI SDK or editor extension works unchanged:
//! `GET /v1/models` and `POST /v1/chat/completions` (JSON or SSE chunks ending in `[DONE]`).
//!
//! Routing: a model written `provider/model` goes to that provider (when `provider` is a loaded
//! provider's id), an `X-Provider` header does the same, anything else goes to the default
//! provider. Memory: an `X-Session-Id` header stores each turn in that session, and a client
//! that sends only its newest message gets the session's recent history prepended.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::chat::Stop;
use super::chat::reasoning_text;
use super::error::ApiError;
use super::extract::{Caller, Json};
use super::headers::{PROVIDER_HEADER, SESSION_HEADER, WORKSPACE_HEADER, header};
use crate::conversation::{Event, Session, Turn, TurnRequest, content};
use crate::providers::{ChatOptions, Reply, Usage};
use crate::runtime::types::{self, ContentPart, StreamEvent, ToolCall, ToolSpec};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletionBody {
    /// A model of the default provider, or `provider/model`.
    model: Option<String>,
    #[schema(min_items = 1)]
    messages: Vec<InMessage>,
    #[schema(minimum = 0.0, maximum = 2.0)]
    temperature: Option<f32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    top_p: Option<f32>,
    #[schema(minimum = 1)]
    max_tokens: Option<u32>,
    #[schema(minimum = 1)]
    max_completion_tokens: Option<u32>,
    /// One stop sequence or a list of them.
    #[serde(default)]
    stop: Stop,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Vec<InTool>,
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
    /// Only 1 is supported.
    #[schema(minimum = 1, maximum = 1)]
    n: Option<u32>,
    /// Whose memory, when API keys are off; with keys on, only the client's own tag.
    #[schema(value_type = Option<super::openapi::UserId>)]
    user: Option<String>,
    /// Everything else (response_format, seed, penalties...) goes to the vendor as is.
    #[serde(flatten)]
    #[schema(ignore)]
    extra: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
struct InMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    #[schema(pattern = "^(system|developer|user|assistant|tool)$")]
    role: String,
    #[serde(default)]
    content: Content,
    name: Option<String>,
    #[serde(default)]
    tool_calls: Vec<InToolCall>,
    tool_call_id: Option<String>,
}

/// Message content: a string, or a list of text, refusal and image parts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(untagged)]
enum Content {
    #[default]
    Null,
    Text(String),
    Parts(Vec<Part>),
}

/// A content part: `{"type": "text", "text"}`, `{"type": "image_url", "image_url": {"url",
/// "detail"?}}` (an `http(s)` or `data:<media type>;base64,` URL), or an assistant's
/// `{"type": "refusal", "refusal"}`.
#[derive(Debug, Deserialize, ToSchema)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<ImageUrl>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct ImageUrl {
    url: String,
    /// `auto`, `low` or `high`; accepted, not passed on (the contract has no detail level).
    #[allow(dead_code)]
    detail: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct InToolCall {
    id: String,
    function: InFunction,
}

#[derive(Debug, Deserialize, ToSchema)]
struct InFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize, ToSchema)]
struct InTool {
    function: InToolSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
struct InToolSpec {
    name: String,
    description: Option<String>,
    /// A JSON Schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Value,
}

impl Content {
    fn parts(self) -> Result<Vec<ContentPart>, ApiError> {
        match self {
            Content::Null => Ok(Vec::new()),
            Content::Text(text) => Ok(vec![ContentPart::Text(text)]),
            Content::Parts(parts) => parts
                .into_iter()
                .map(|p| match (p.kind.as_str(), p.text, p.refusal, p.image_url) {
                    ("text", Some(text), ..) | ("refusal", _, Some(text), _) => Ok(ContentPart::Text(text)),
                    ("image_url", _, _, Some(image)) => Ok(ContentPart::Image(content::from_url(&image.url))),
                    (kind, ..) => Err(ApiError::invalid_parameter(format!(
                        "content parts of type {kind:?} are not supported; send text and image_url parts"
                    ))),
                })
                .collect(),
        }
    }
}

fn message(m: InMessage) -> Result<types::Message, ApiError> {
    let role = match m.role.as_str() {
        "system" | "developer" => types::Role::System,
        "user" => types::Role::User,
        "assistant" => types::Role::Assistant,
        "tool" => types::Role::Tool,
        other => return Err(ApiError::invalid_parameter(format!("unknown message role {other:?}"))),
    };
    Ok(types::Message {
        name: m.name,
        tool_calls: m
            .tool_calls
            .into_iter()
            .map(|c| ToolCall { id: c.id, name: c.function.name, arguments: c.function.arguments })
            .collect(),
        tool_call_id: m.tool_call_id,
        ..content::message(role, m.content.parts()?)
    })
}

/// `POST /v1/chat/completions`.
/// OpenAI's Chat Completions. `X-Session-Id` turns memory on.
#[utoipa::path(post, path = "/v1/chat/completions", operation_id = "create_chat_completion", tag = "openai", request_body = CompletionBody,
    params(super::openapi::DialectHeaders),
    responses(
        (status = 200, description = "A `chat.completion` object, or `chat.completion.chunk` server-sent events ending with `[DONE]`",
            content((Object = "application/json"), (serde_json::Value = "text/event-stream"))),
        (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse), (status = 415, body = super::openapi::ErrorResponse), (status = 422, body = super::openapi::ErrorResponse),
        (status = 429, body = super::openapi::ErrorResponse), (status = 502, body = super::openapi::ErrorResponse), (status = 503, body = super::openapi::ErrorResponse), (status = 504, body = super::openapi::ErrorResponse),
    ))]
pub async fn completions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<CompletionBody>,
) -> Result<Response, ApiError> {
    if body.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid_parameter("only n = 1 is supported"));
    }
    // OpenAI's `user` names an end user; with API keys on, the key names ours and `user` stays
    // the client's own tag.
    let user = caller.user(if caller.is_authenticated() { None } else { body.user.as_deref() })?;
    let request = TurnRequest {
        user,
        session: header(&headers, SESSION_HEADER).map_or(Session::None, |id| Session::Named(id.to_string())),
        workspace: header(&headers, WORKSPACE_HEADER).map(str::to_string),
        provider: header(&headers, PROVIDER_HEADER).map(str::to_string),
        messages: body.messages.into_iter().map(message).collect::<Result<Vec<_>, _>>()?,
        options: ChatOptions {
            model: body.model,
            temperature: body.temperature,
            top_p: body.top_p,
            max_tokens: body.max_completion_tokens.or(body.max_tokens),
            stop: body.stop.into_vec(),
            tools: body
                .tools
                .into_iter()
                .map(|t| ToolSpec {
                    name: t.function.name,
                    description: t.function.description,
                    parameters: t.function.parameters.to_string(),
                })
                .collect(),
            tool_choice: body.tool_choice.map(|c| match c {
                Value::String(s) => s,
                other => other.pointer("/function/name").and_then(Value::as_str).unwrap_or("auto").to_string(),
            }),
            extra_json: (!body.extra.is_empty()).then(|| Value::Object(body.extra).to_string()),
        },
        metadata: Default::default(),
    };
    let turn = state.conversation.prepare(request).await?;
    if body.stream {
        let include_usage = body.stream_options.is_some_and(|o| o.include_usage);
        return Ok(Sse::new(chunks(turn, include_usage)).keep_alive(KeepAlive::default()).into_response());
    }
    Ok(Json(completion(&turn.reply().await?.reply)).into_response())
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn tool_calls(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
        .collect()
}

/// The `chat.completion` object. A refusal is `message.refusal` with `content: null`, as
/// OpenAI answers one; reasoning is `reasoning_content`, the field DeepSeek, vLLM and
/// OpenRouter-compatible clients read.
fn completion(reply: &Reply) -> Value {
    let refused = reply.finish_reason == "refusal";
    let mut message = json!({
        "role": "assistant",
        "content": if refused { Value::Null } else { json!(reply.content) },
        "refusal": if refused { json!(reply.content) } else { Value::Null },
    });
    if let Some(reasoning) = reasoning_text(&reply.reasoning) {
        message["reasoning_content"] = json!(reasoning);
    }
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls(&reply.tool_calls);
    }
    json!({
        "id": completion_id(),
        "object": "chat.completion",
        "created": now(),
        "model": reply.model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason(reply.finish_reason), "logprobs": null }],
        "usage": usage(&reply.usage),
        "system_fingerprint": null,
    })
}

/// A finish reason among the ones OpenAI's clients know: a refusal stops (OpenAI says `stop`
/// too), a full context window is `length`.
fn finish_reason(reason: &str) -> &str {
    match reason {
        "refusal" | "other" => "stop",
        "context_window" => "length",
        known => known,
    }
}

/// Usage in OpenAI's shape, with cached and reasoning tokens in their details.
fn usage(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": { "cached_tokens": usage.cached_read_tokens },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
    })
}

/// The SSE body: `chat.completion.chunk` objects, an optional usage chunk, then `[DONE]`.
fn chunks(turn: Turn, include_usage: bool) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let id = completion_id();
    let created = now();
    let model = turn.model();
    let chunk = move |model: &str, choices: Value, usage: Option<&Usage>| {
        let mut data = json!({ "id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices });
        if let Some(usage) = usage {
            data["usage"] = self::usage(usage);
        }
        SseEvent::default().data(data.to_string())
    };
    let choice = |delta: Value, finish: Option<&str>| json!([{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }]);
    let first = chunk(&model, choice(json!({ "role": "assistant", "content": "" }), None), None);
    let events = turn.stream().flat_map(move |event| {
        let events = match event {
            Event::Stream(StreamEvent::Delta(text)) => {
                vec![chunk(&model, choice(json!({ "content": text }), None), None)]
            }
            Event::Stream(StreamEvent::ToolCall(d)) => {
                let mut call = json!({ "index": d.index, "function": { "arguments": d.arguments } });
                if let Some(id) = d.id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = d.name {
                    call["function"]["name"] = json!(name);
                }
                vec![chunk(&model, choice(json!({ "tool_calls": [call] }), None), None)]
            }
            Event::Stream(StreamEvent::Reasoning(text)) => {
                vec![chunk(&model, choice(json!({ "reasoning_content": text }), None), None)]
            }
            Event::Stream(StreamEvent::Usage(_)) | Event::Reasoned(_) => Vec::new(),
            Event::Done(outcome) => {
                let reply = &outcome.reply;
                let finish = finish_reason(reply.finish_reason);
                let mut last = Vec::new();
                // The contract names a refusal only when the reply ends, after its text went
                // out as content; the refusal follows as one `delta.refusal` for clients that
                // look there.
                if reply.finish_reason == "refusal" {
                    last.push(chunk(&reply.model, choice(json!({ "refusal": reply.content }), None), None));
                }
                last.push(chunk(&reply.model, choice(json!({}), Some(finish)), None));
                if include_usage {
                    last.push(chunk(&reply.model, json!([]), Some(&reply.usage)));
                }
                last.push(SseEvent::default().data("[DONE]"));
                last
            }
            Event::Failed(error) => vec![SseEvent::default().data(ApiError::from(error).streamed().to_string())],
        };
        futures::stream::iter(events)
    });
    futures::stream::once(async move { first }).chain(events).map(Ok)
}

/// `GET /v1/models`'s reply, in OpenAI's list format.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    #[schema(value_type = String)]
    object: &'static str,
    data: Vec<ModelEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// The model's id for `model`: bare for the default provider, else `provider/model`.
    id: String,
    /// Always `model`.
    #[schema(value_type = String)]
    object: &'static str,
    created: u64,
    /// The provider plugin.
    owned_by: String,
    context_window: Option<u32>,
    supports_embeddings: bool,
    /// For an alias (`[providers.aliases]`): the model it stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    alias_of: Option<String>,
}

/// `GET /v1/models`: the default provider's models by their own ids, every other provider's
/// as `provider/model`, then the exact aliases (patterns are not model names).
#[utoipa::path(get, path = "/v1/models", operation_id = "list_models", tag = "openai", responses((status = 200, body = ModelList)))]
pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    let default = state.providers.default_provider().ok().map(|p| p.manifest.id.clone());
    let mut data = Vec::new();
    for listed in state.providers.models().await {
        let id = &listed.plugin.manifest.id;
        let Ok(models) = listed.models else { continue };
        for model in models {
            let name =
                if default.as_deref() == Some(id.as_str()) { model.id.clone() } else { format!("{id}/{}", model.id) };
            data.push(ModelEntry {
                id: name,
                object: "model",
                created: 0,
                owned_by: id.clone(),
                context_window: model.context_window,
                supports_embeddings: model.supports_embeddings,
                alias_of: None,
            });
        }
    }
    for (alias, target) in state.providers.aliases().iter().filter(|(alias, _)| !alias.contains('*')) {
        let owner = target.split_once('/').map(|(p, _)| p).filter(|p| state.providers.is_provider(p));
        data.push(ModelEntry {
            id: alias.clone(),
            object: "model",
            created: 0,
            owned_by: owner.map(str::to_string).or_else(|| default.clone()).unwrap_or_default(),
            context_window: None,
            supports_embeddings: false,
            alias_of: Some(target.clone()),
        });
    }
    Json(ModelList { object: "list", data })
}
