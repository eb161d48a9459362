//! The OpenAI Chat Completions wire format, spoken by OpenAI, Azure OpenAI, Mistral, GitHub Models
//! and local servers (vLLM, LM Studio, llama.cpp): request bodies, replies, streamed chunks, error
//! bodies, model lists and embeddings as pure functions, and [`Compatible`], a complete
//! [`Provider`] for any such API that an [`Api`] implementation describes.

use std::marker::PhantomData;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Request, Response};
use crate::vendor::{Collector, read_stream, request_body};
use crate::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, FinishReason, HttpError, Message, ModelInfo, Provider,
    ProviderError, ProviderInfo, ReasoningBlock, Role, Sink, StreamEvent, ToolCall, Usage, config, error_from_status,
    secret, sse,
};

/// Error codes vendors send, with a 400 or 404, when the model or deployment does not exist:
/// OpenAI (`model_not_found`, 404), Mistral (`invalid_model`, 400), GitHub Models
/// (`unknown_model`, 400), Azure OpenAI (`DeploymentNotFound`, 404).
const MISSING_MODEL_CODES: &[&str] = &["model_not_found", "invalid_model", "unknown_model", "DeploymentNotFound"];

/// Where a credential follows in text a vendor or proxy echoed back (lowercase): the bearer
/// scheme, and Azure's `api-key` header.
const CREDENTIAL_MARKERS: &[&str] = &["bearer ", "api-key"];

/// How a request body is shaped for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyOptions {
    /// Whether the body names the model; Azure's deployment URLs name it in the path instead.
    pub model_in_body: bool,
    /// Whether the reply is streamed (`"stream": true`).
    pub stream: bool,
    /// Whether a streamed request asks for token usage with `stream_options: {include_usage:
    /// true}`. Mistral refuses that field (422) and reports usage in its last chunk anyway.
    pub stream_usage: bool,
    /// Whether `name` is sent only on tool messages. Mistral's schema has it there alone and
    /// refuses it (422 `extra_forbidden`) on system, user and assistant messages.
    pub names_on_tool_messages_only: bool,
}

#[derive(Serialize)]
struct ChatBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    // Mistral refuses an empty `tools` list, so it is left out rather than sent empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `null` only for an assistant turn that consists of tool calls, as OpenAI writes it.
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// The Chat Completions request body for `request`.
///
/// Messages keep their role (`system`, `user`, `assistant`, `tool`), `name`, assistant
/// `tool_calls` and `tool_call_id`; `temperature`, `top_p`, `max_tokens`, `stop`, `tools` and
/// `tool_choice` are sent only when set. The request's `extra_json` object is merged over the
/// body's top level, and a `null` there removes the field.
///
/// `max_tokens` is spelled so, which every OpenAI-compatible vendor accepts, except for OpenAI's
/// reasoning models (see [`is_reasoning_model`]): they refuse it, and `temperature`, `top_p`
/// and `stop` too, so those get `max_completion_tokens` and no sampling options. (An Azure
/// deployment's name may hide its model: there, pass `{"max_tokens": null,
/// "max_completion_tokens": N}` in `extra_json`.) Fails with `bad-request` when a tool's
/// parameters are not JSON or `extra_json` is not a JSON object.
pub fn chat_body(request: &ChatRequest, options: BodyOptions) -> Result<Value, ProviderError> {
    let tools = request.tools.iter().map(tool).collect::<Result<Vec<_>, _>>()?;
    let tool_choice = request.tool_choice.as_deref().map(|choice| match choice {
        "auto" | "none" | "required" => Value::from(choice),
        name => serde_json::json!({"type": "function", "function": {"name": name}}),
    });
    let reasoning = is_reasoning_model(&request.model);
    let body = ChatBody {
        model: options.model_in_body.then_some(request.model.as_str()),
        messages: request.messages.iter().map(|m| message(m, options.names_on_tool_messages_only)).collect(),
        temperature: request.temperature.filter(|_| !reasoning),
        top_p: request.top_p.filter(|_| !reasoning),
        max_tokens: request.max_tokens.filter(|_| !reasoning),
        max_completion_tokens: request.max_tokens.filter(|_| reasoning),
        stop: if reasoning { &[] } else { &request.stop },
        tools,
        tool_choice,
        stream: options.stream,
        stream_options: (options.stream && options.stream_usage).then(|| serde_json::json!({"include_usage": true})),
    };
    let mut body = request_body(&body, request.extra_json.as_deref())?;
    // The body itself never has a top-level null, so every one here came from `extra_json`.
    if let Value::Object(fields) = &mut body {
        fields.retain(|_, value| !value.is_null());
    }
    Ok(body)
}

/// OpenAI's reasoning models by name: the o-series (`o1`, `o3-mini`, `o4-mini`…) and `gpt-5`
/// (`gpt-5.1`, `gpt-5-mini`, `gpt-5-codex`…), but not `gpt-5-chat`, which samples like gpt-4.1.
pub fn is_reasoning_model(model: &str) -> bool {
    let model = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let o_series = model.strip_prefix('o').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    o_series || (model.starts_with("gpt-5") && !model.contains("-chat"))
}

fn message(message: &Message, names_on_tool_messages_only: bool) -> WireMessage<'_> {
    let text = message.text();
    let calls_only = text.is_empty() && !message.tool_calls.is_empty();
    WireMessage {
        role: match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        },
        content: (!calls_only).then_some(text),
        name: message.name.as_deref().filter(|_| message.role == Role::Tool || !names_on_tool_messages_only),
        tool_calls: message
            .tool_calls
            .iter()
            .map(|call| {
                serde_json::json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

fn tool(spec: &crate::ToolSpec) -> Result<Value, ProviderError> {
    let parameters: Value = serde_json::from_str(&spec.parameters)
        .map_err(|e| ProviderError::BadRequest(format!("the parameters of tool `{}` are not JSON: {e}", spec.name)))?;
    let mut function = serde_json::json!({"name": spec.name, "parameters": parameters});
    if let Some(description) = &spec.description {
        function["description"] = Value::from(description.as_str());
    }
    Ok(serde_json::json!({"type": "function", "function": function}))
}

/// OpenAI's finish reasons, with Mistral's `model_length` (the model's context window is full);
/// unknown ones are `other`. Mistral's `error` is a failure, not a reason: the reply parsers fail
/// the call as `unavailable` instead.
pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "model_length" => FinishReason::ContextWindow,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// A finish reason, or the failure it reports: Mistral ends a reply that broke off on its side
/// with `finish_reason: "error"`, which is `unavailable` (retryable), not a reply.
fn finished(reason: &str) -> Result<FinishReason, ProviderError> {
    match reason {
        "error" => {
            Err(ProviderError::unavailable("the vendor stopped the reply with an error (finish_reason `error`)"))
        }
        reason => Ok(finish_reason(reason)),
    }
}

/// `content` as OpenAI sends it (text) or as Mistral does for Magistral and some multimodal
/// replies: a list of chunks, `{"type": "text", "text"}` and `{"type": "thinking", "thinking":
/// [{"type": "text", "text"}]}` (other chunk types carry no reply text and are skipped).
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Chunks(Vec<ContentChunk>),
}

#[derive(Deserialize)]
struct ContentChunk {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    #[serde(default)]
    thinking: Vec<ContentChunk>,
}

impl Content {
    /// (reply text, reasoning text) in order of the chunks.
    fn split(self) -> (String, String) {
        match self {
            Content::Text(text) => (text, String::new()),
            Content::Chunks(chunks) => {
                let (mut text, mut reasoning) = (String::new(), String::new());
                for chunk in chunks {
                    match chunk.kind.as_str() {
                        "text" => text.push_str(chunk.text.as_deref().unwrap_or_default()),
                        "thinking" => chunk.thinking.iter().filter(|c| c.kind == "text").for_each(|c| {
                            reasoning.push_str(c.text.as_deref().unwrap_or_default());
                        }),
                        _ => {}
                    }
                }
                (text, reasoning)
            }
        }
    }
}

/// One reasoning block of readable text (Mistral neither signs nor encrypts its thinking).
fn reasoning_block(text: String) -> ReasoningBlock {
    ReasoningBlock { text, signature: None, encrypted_content: None, id: None }
}

#[derive(Deserialize)]
struct Completion {
    model: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    index: Option<u32>,
    message: Option<ReplyMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ReplyMessage {
    content: Option<Content>,
    /// Set instead of `content` when the model declined to answer.
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    index: Option<u32>,
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u32>,
}

impl From<WireUsage> for Usage {
    /// Cached prompt tokens are part of `prompt_tokens`, reasoning tokens of
    /// `completion_tokens`, as OpenAI counts them.
    fn from(usage: WireUsage) -> Self {
        Usage {
            cached_read_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            reasoning_tokens: usage.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
            ..Usage::new(usage.prompt_tokens.unwrap_or(0), usage.completion_tokens.unwrap_or(0))
        }
    }
}

/// Parses a non-streamed Chat Completions reply: the first choice's content (or refusal), tool
/// calls and finish reason, the usage and the model.
///
/// A 200 reply carrying an `error` object is mapped like an HTTP error; a reply that does not
/// parse or has no choices is `other`.
pub fn parse_chat_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let json: Value = serde_json::from_slice(body).map_err(unreadable)?;
    if let Some(error) = embedded_error(&json) {
        return Err(error);
    }
    let completion: Completion = serde_json::from_value(json).map_err(unreadable)?;
    let choice = completion
        .choices
        .unwrap_or_default()
        .into_iter()
        .min_by_key(|choice| choice.index.unwrap_or(0))
        .ok_or_else(|| ProviderError::Other("the vendor's reply has no choices".into()))?;
    let message = choice.message.unwrap_or(ReplyMessage { content: None, refusal: None, tool_calls: None });
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| {
            let function = call.function.unwrap_or(WireFunction { name: None, arguments: None });
            ToolCall {
                id: call.id.unwrap_or_default(),
                name: function.name.unwrap_or_default(),
                arguments: function.arguments.unwrap_or_default(),
            }
        })
        .collect();
    let refused = message.content.is_none() && message.refusal.is_some();
    let finish = choice.finish_reason.as_deref().map_or(Ok(FinishReason::Other), finished)?;
    let (content, reasoning) = message.content.map(Content::split).unwrap_or_default();
    Ok(ChatResponse {
        content: if refused { message.refusal.unwrap_or_default() } else { content },
        reasoning: if reasoning.is_empty() { Vec::new() } else { vec![reasoning_block(reasoning)] },
        tool_calls,
        finish_reason: if refused && finish == FinishReason::Stop { FinishReason::Refusal } else { finish },
        usage: completion.usage.map(Usage::from),
        model: completion.model.unwrap_or_default(),
    })
}

fn unreadable(e: serde_json::Error) -> ProviderError {
    ProviderError::Other(format!("the vendor sent JSON we cannot read: {e}"))
}

#[derive(Deserialize)]
struct Chunk {
    model: Option<String>,
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    index: Option<u32>,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<Content>,
    /// A refusal streams here instead of in `content`.
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

/// Reads a streamed Chat Completions reply from `chunks` (a
/// [`Response::chunks`](crate::http::Response::chunks)), handing each event to `emit` as it
/// arrives (text deltas, tool-call fragments, usage), and returns the complete reply.
///
/// Follows the wire format: `data: {...}` chunks with `choices[0].delta.content`,
/// `delta.tool_calls` and `finish_reason`, a usage chunk with empty `choices`, then
/// `data: [DONE]`; chunks for choices other than the first are ignored. Fails with:
/// - `unavailable` ("stream ended early ...") when the body ends or breaks off before `[DONE]`;
/// - `other` ("malformed stream chunk ...") when a chunk is not JSON of the expected shape;
/// - the mapped error when the vendor sends an `error` object mid-stream, as it would map in
///   an HTTP error reply (see [`error_from_reply`]).
pub fn read_chat_stream(
    chunks: impl IntoIterator<Item = Result<Vec<u8>, HttpError>>,
    emit: &dyn Fn(&StreamEvent),
) -> Result<ChatResponse, ProviderError> {
    let mut forward = |event: &StreamEvent| emit(event);
    let mut stream = ChatStream {
        collector: Collector::new(&mut forward, ""),
        emit,
        usage: None,
        refused: false,
        reasoning: String::new(),
    };
    let mut from_vendor = false;
    let read =
        read_stream(sse::Parser::new(), chunks, |event| stream.event(&event).inspect_err(|_| from_vendor = true));
    match read {
        Ok(()) => {
            let (usage, refused, reasoning) = (stream.usage, stream.refused, stream.reasoning);
            let mut response = stream.collector.finish();
            if !reasoning.is_empty() {
                response.reasoning = vec![reasoning_block(reasoning)];
            }
            // The collector keeps the two counts; the details come from the vendor's usage.
            response.usage = usage.or(response.usage);
            if refused && response.finish_reason == FinishReason::Stop {
                response.finish_reason = FinishReason::Refusal;
            }
            Ok(response)
        }
        Err(ProviderError::Unavailable(why)) if !from_vendor => {
            Err(ProviderError::unavailable(format!("stream ended early, before `data: [DONE]`: {}", why.message)))
        }
        Err(error) => Err(error),
    }
}

/// The state of one streamed reply: the collected reply so far, fed one SSE event at a time.
struct ChatStream<'a> {
    collector: Collector<'a>,
    /// The same sink the collector emits to, for the events it does not emit itself (usage).
    emit: &'a dyn Fn(&StreamEvent),
    /// The vendor's usage with its details (cached and reasoning tokens).
    usage: Option<Usage>,
    /// Whether the text came as a refusal.
    refused: bool,
    /// Thinking chunks so far (Mistral's Magistral), one block for the reply.
    reasoning: String,
}

impl ChatStream<'_> {
    /// Consumes one event; `Break` at `[DONE]`.
    fn event(&mut self, event: &sse::Event) -> Result<ControlFlow<()>, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(ControlFlow::Break(()));
        }
        let malformed = |e: serde_json::Error| ProviderError::Other(format!("malformed stream chunk: {e}"));
        let json: Value = serde_json::from_str(data).map_err(malformed)?;
        if let Some(error) = embedded_error(&json) {
            return Err(error);
        }
        if event.event == "error" {
            return Err(error_from_reply(500, None, None, data));
        }
        let chunk: Chunk = serde_json::from_value(json).map_err(malformed)?;
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.collector.model(model);
        }
        for choice in chunk.choices.unwrap_or_default().into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            if let Some(delta) = choice.delta {
                let (text, reasoning) = delta.content.map(Content::split).unwrap_or_default();
                self.collector.reasoning(&reasoning);
                self.reasoning.push_str(&reasoning);
                self.collector.text(&text);
                if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
                    self.refused = true;
                    self.collector.text(&refusal);
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let function = call.function.unwrap_or(WireFunction { name: None, arguments: None });
                    let arguments = function.arguments.unwrap_or_default();
                    self.collector.tool_call(call.index.unwrap_or(0), call.id, function.name, &arguments);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.collector.finish_reason(finished(&reason)?);
            }
        }
        // Usage comes last in a chunk's meaning: llama.cpp puts it beside the final delta.
        if let Some(usage) = chunk.usage {
            let usage = Usage::from(usage);
            self.collector.usage(Some(usage.prompt_tokens), Some(usage.completion_tokens));
            self.usage = Some(usage);
            (self.emit)(&StreamEvent::Usage(usage));
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// The error a reply body carries in place of a result (a stream chunk, or a 200 reply from a
/// misbehaving server): OpenAI's `{"error": {...}}` or vLLM's `{"object": "error", ...}`.
fn embedded_error(json: &Value) -> Option<ProviderError> {
    let error = match json.get("error") {
        Some(error) if error.is_object() || error.is_string() => error,
        _ if json.get("object").and_then(Value::as_str) == Some("error") => json,
        _ => return None,
    };
    Some(error_from_reply(implied_status(error), None, None, &json.to_string()))
}

/// The HTTP status an in-band error object stands for: its numeric `status` or `code` when it
/// has one (vLLM, Azure), else guessed from OpenAI's error `type` and `code` names.
fn implied_status(error: &Value) -> u16 {
    let numeric = ["status", "code"].iter().filter_map(|key| error.get(*key)).find_map(|value| match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    if let Some(status) = numeric.and_then(|n| u16::try_from(n).ok()).filter(|s| (400..600).contains(s)) {
        return status;
    }
    let names = ["type", "code"]
        .iter()
        .filter_map(|key| error.get(*key).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| names.contains(w));
    if has(&["rate_limit", "ratelimit", "insufficient_quota"]) {
        429
    } else if has(&["auth", "invalid_api_key", "unauthorized"]) {
        401
    } else if has(&["permission", "forbidden"]) {
        403
    } else if has(&["not_found", "notfound", "invalid_model", "unknown_model"]) {
        404
    } else if has(&["invalid_request", "bad_request", "validation"]) {
        400
    } else if has(&["timeout"]) {
        504
    } else if has(&["overloaded", "unavailable"]) {
        503
    } else {
        500
    }
}

/// Maps a failed reply to a [`ProviderError`] with [`error_from_status`], then refines it by
/// the error's `code` or `type`.
///
/// The wait comes from `retry-after-ms` (Azure OpenAI and OpenAI send it, with more precision)
/// when present, else from `retry-after`. A 400 whose code says the model or deployment does
/// not exist is `not-found` (Mistral and GitHub Models answer an unknown model with 400). A 429
/// with code `insufficient_quota` is `other`: the account is out of credit, and retrying does
/// not help. A credential the vendor (or a proxy) echoed back, after `Bearer ` or `api-key`, is
/// masked, so the message never carries a request header.
pub fn error_from_reply(
    status: u16,
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    body: &str,
) -> ProviderError {
    let from_ms = retry_after_ms
        .and_then(|ms| ms.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| (ms / 1000.0).to_string());
    let error = error_from_status(status, from_ms.as_deref().or(retry_after), &redact_credentials(body));
    let codes = error_codes(body);
    match error {
        ProviderError::BadRequest(message) if codes.iter().any(|c| MISSING_MODEL_CODES.contains(&c.as_str())) => {
            ProviderError::NotFound(message)
        }
        ProviderError::RateLimited(limit) if codes.iter().any(|c| c == "insufficient_quota") => {
            ProviderError::Other(limit.message)
        }
        ProviderError::BadRequest(message) if codes.iter().any(|c| c == "context_length_exceeded") => {
            ProviderError::ContextLengthExceeded(message)
        }
        error => error,
    }
}

/// `text` with the token after each [`CREDENTIAL_MARKERS`] entry (and any `:`, `=` or spaces)
/// replaced by `***`.
fn redact_credentials(text: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let (mut out, mut copied, mut from) = (String::with_capacity(text.len()), 0, 0);
    while let Some((at, marker)) =
        CREDENTIAL_MARKERS.iter().filter_map(|m| lower[from..].find(m).map(|i| (from + i, m.len()))).min()
    {
        let after = &text[at + marker..];
        let start = at + marker + (after.len() - after.trim_start_matches([' ', ':', '=']).len());
        let token =
            text[start..].find(|c: char| c.is_whitespace() || "\"',;}]".contains(c)).unwrap_or(text.len() - start);
        if token > 0 {
            out.push_str(&text[copied..start]);
            out.push_str("***");
            copied = start + token;
        }
        from = (start + token).max(at + marker);
    }
    out.push_str(&text[copied..]);
    out
}

/// The `code` and `type` strings of an error body, nested under `error` or at the top level.
fn error_codes(body: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_str::<Value>(body) else { return Vec::new() };
    [json.get("error"), Some(&json)]
        .into_iter()
        .flatten()
        .flat_map(|object| ["code", "type"].map(|key| object.get(key).and_then(Value::as_str).map(str::to_owned)))
        .flatten()
        .collect()
}

/// Passes a 2xx response through; otherwise reads the body and maps it with
/// [`error_from_reply`], honouring `retry-after-ms` and `retry-after`.
pub fn check(response: Response) -> Result<Response, ProviderError> {
    let status = response.status();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let retry_after_ms = response.header("retry-after-ms");
    let retry_after = response.header("retry-after");
    let body = response.text().unwrap_or_default();
    Err(error_from_reply(status, retry_after_ms.as_deref(), retry_after.as_deref(), &body))
}

/// Parses a model list: OpenAI's `{"object": "list", "data": [{"id": ...}]}` or a bare array.
///
/// The context window comes from whichever field the server uses (`context_window`,
/// `max_context_length` (Mistral), `context_length`, `max_model_len` (vLLM)); tool support from
/// Mistral's `capabilities.function_calling`; a model is taken for an embedding model when its
/// id says `embed`. Entries without an id are skipped.
pub fn parse_models(body: &[u8]) -> Result<Vec<ModelInfo>, ProviderError> {
    let json: Value = serde_json::from_slice(body).map_err(unreadable)?;
    let entries = match json.get("data").unwrap_or(&json) {
        Value::Array(entries) => entries,
        _ => return Err(ProviderError::Other("the vendor's model list has no `data` array".into())),
    };
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let id = entry.get("id")?.as_str()?;
            let context_window = ["context_window", "max_context_length", "context_length", "max_model_len"]
                .iter()
                .find_map(|key| entry.get(*key)?.as_u64())
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
            Some(ModelInfo {
                context_window,
                supports_embeddings: id.contains("embed"),
                supports_tools: entry.pointer("/capabilities/function_calling").and_then(Value::as_bool) == Some(true),
                ..ModelInfo::new(id)
            })
        })
        .collect())
}

/// The `/embeddings` request body: `{"model", "input"}`, without the model when the URL names
/// it (Azure deployments). Floats are the default encoding, so none is asked for.
pub fn embeddings_body(model: Option<&str>, inputs: &[String]) -> Value {
    let mut body = serde_json::json!({"input": inputs});
    if let Some(model) = model {
        body["model"] = Value::from(model);
    }
    body
}

#[derive(Deserialize)]
struct EmbeddingList {
    data: Vec<EmbeddingItem>,
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// Parses an `/embeddings` reply into one vector per input, in input order (by each item's
/// `index`). `model` is reported when the vendor names none. Fails with `other` when the reply
/// does not parse or holds a different number of vectors than `inputs`.
pub fn parse_embeddings(body: &[u8], model: &str, inputs: usize) -> Result<Embeddings, ProviderError> {
    let list: EmbeddingList = serde_json::from_slice(body).map_err(unreadable)?;
    if list.data.len() != inputs {
        return Err(ProviderError::Other(format!("the vendor sent {} vectors for {inputs} inputs", list.data.len())));
    }
    let mut items: Vec<(usize, Vec<f32>)> = list
        .data
        .into_iter()
        .enumerate()
        .map(|(position, item)| (item.index.unwrap_or(position), item.embedding))
        .collect();
    items.sort_by_key(|(index, _)| *index);
    Ok(Embeddings {
        model: list.model.filter(|m| !m.is_empty()).unwrap_or_else(|| model.to_owned()),
        vectors: items.into_iter().map(|(_, vector)| vector).collect(),
        // Embeddings have no completion; vendors report prompt (input) tokens only.
        usage: list.usage.map(Usage::from),
    })
}

/// How a plugin authenticates; the key itself stays with the host (see [`secret`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer {{secret:NAME}}` (OpenAI, Mistral, GitHub).
    Bearer(&'static str),
    /// A header holding the key alone: (header name, secret name), e.g. Azure's `api-key`.
    Header(&'static str, &'static str),
}

impl Auth {
    /// The header to send, with the secret as a placeholder the host fills in at egress.
    pub fn header(self) -> (String, String) {
        match self {
            Auth::Bearer(name) => ("authorization".to_owned(), format!("Bearer {}", secret(name))),
            Auth::Header(header, name) => (header.to_owned(), secret(name)),
        }
    }
}

/// Static facts about an OpenAI-compatible API. The manifest's `[config]` overrides
/// `base_url`, `default_model` and `embedding_model` under those keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vendor {
    /// Human-readable name, e.g. `OpenAI`.
    pub name: &'static str,
    /// The URL the standard paths (`/chat/completions`, `/models`, `/embeddings`) hang off.
    pub base_url: &'static str,
    /// The model used when a request names none.
    pub default_model: &'static str,
    /// The embedding model, or `None` when the vendor has no `/embeddings`.
    pub embedding_model: Option<&'static str>,
    /// How requests carry the key.
    pub auth: Auth,
    /// Whether streamed requests ask for usage (see [`BodyOptions::stream_usage`]).
    pub stream_usage: bool,
}

/// Where one call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The full URL, query included.
    pub url: String,
    /// Whether the body names the model (false when the URL does, as Azure deployments do).
    pub model_in_body: bool,
}

impl Target {
    /// `url`, with the model named in the body.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), model_in_body: true }
    }
}

/// One OpenAI-compatible API, described for [`Compatible`]: a [`Vendor`] plus, where the API
/// departs from OpenAI's layout, overrides of the default methods.
pub trait Api: 'static {
    /// The static facts.
    const VENDOR: Vendor;

    /// Whether `name` goes on tool messages only (see [`BodyOptions::names_on_tool_messages_only`]).
    const NAMES_ON_TOOL_MESSAGES_ONLY: bool = false;

    /// The base URL: config `base_url`, else [`Vendor::base_url`], without a trailing `/`.
    fn base_url() -> String {
        config::get_or("base_url", Self::VENDOR.base_url).trim_end_matches('/').to_owned()
    }

    /// Headers sent with every request besides authentication (e.g. `OpenAI-Organization`).
    fn extra_headers() -> Vec<(String, String)> {
        Vec::new()
    }

    /// Where chat completions for `model` go: `{base_url}/chat/completions` by default.
    fn chat_target(model: &str) -> Result<Target, ProviderError> {
        let _ = model;
        Ok(Target::new(format!("{}/chat/completions", Self::base_url())))
    }

    /// Where embeddings with `model` go: `{base_url}/embeddings` by default.
    fn embeddings_target(model: &str) -> Result<Target, ProviderError> {
        let _ = model;
        Ok(Target::new(format!("{}/embeddings", Self::base_url())))
    }

    /// The models the API serves: `GET {base_url}/models` parsed with [`parse_models`] by
    /// default.
    fn models() -> Result<Vec<ModelInfo>, ProviderError> {
        parse_models(&get::<Self>(&format!("{}/models", Self::base_url()))?.bytes()?)
    }
}

/// Headers from config values that are set and not empty: (header name, config key) pairs,
/// for optional non-secret headers such as `OpenAI-Organization`.
pub fn config_headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter_map(|(header, key)| config::get(key).filter(|v| !v.is_empty()).map(|v| ((*header).to_owned(), v)))
        .collect()
}

/// `request` with the API's authentication and extra headers added.
fn request<A: Api + ?Sized>(mut request: Request) -> Request {
    for (name, value) in std::iter::once(A::VENDOR.auth.header()).chain(A::extra_headers()) {
        request = request.header(name, value);
    }
    request
}

/// GETs `url` with the API's headers and returns the response if it is a success (see
/// [`check`]).
pub fn get<A: Api + ?Sized>(url: &str) -> Result<Response, ProviderError> {
    check(request::<A>(Request::get(url)).send()?)
}

/// POSTs `body` as JSON to `url` with the API's headers and returns the response if it is a
/// success; it accepts `text/event-stream` when streaming, else `application/json`, unless the
/// API sets `accept` itself.
fn post<A: Api + ?Sized>(url: &str, body: &Value, stream: bool) -> Result<Response, ProviderError> {
    let mut post = request::<A>(Request::post(url));
    if post.header_value("accept").is_none() {
        post = post.header("accept", if stream { "text/event-stream" } else { "application/json" });
    }
    check(post.json(body)?.send()?)
}

/// A complete [`Provider`] for the OpenAI-compatible API `A`: chat, streamed chat, model list
/// and embeddings. Export it with `export_provider!(Compatible<MyApi>)`.
pub struct Compatible<A>(PhantomData<A>);

impl<A: Api> Compatible<A> {
    /// Sends `request` to the API's chat target and returns the response.
    fn send_chat(request: &ChatRequest, stream: bool) -> Result<Response, ProviderError> {
        let target = A::chat_target(&request.model)?;
        let options = BodyOptions {
            model_in_body: target.model_in_body,
            stream,
            stream_usage: A::VENDOR.stream_usage,
            names_on_tool_messages_only: A::NAMES_ON_TOOL_MESSAGES_ONLY,
        };
        post::<A>(&target.url, &chat_body(request, options)?, stream)
    }
}

impl<A: Api> Provider for Compatible<A> {
    fn info() -> ProviderInfo {
        let vendor = A::VENDOR;
        ProviderInfo {
            name: vendor.name.to_owned(),
            default_model: config::get_or("default_model", vendor.default_model),
            embedding_model: vendor.embedding_model.map(|model| config::get_or("embedding_model", model)),
        }
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        A::models()
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        parse_chat_response(&Self::send_chat(&request, false)?.bytes()?)
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        read_chat_stream(Self::send_chat(&request, true)?.chunks(), &|event| out.emit(event))
    }

    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        let Some(model) = request.model.clone().or(Self::info().embedding_model) else {
            return Err(ProviderError::Unsupported(format!("{} does not offer embeddings", A::VENDOR.name)));
        };
        let target = A::embeddings_target(&model)?;
        let mut body = embeddings_body(target.model_in_body.then_some(model.as_str()), &request.inputs);
        // text-embedding-3 models shorten their vectors on request; OpenAI has no input type.
        if let Some(dimensions) = request.dimensions {
            body["dimensions"] = Value::from(dimensions);
        }
        parse_embeddings(&post::<A>(&target.url, &body, false)?.bytes()?, &model, request.inputs.len())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;
    use crate::{RateLimit, ToolCallDelta, ToolSpec};

    const PLAIN: BodyOptions =
        BodyOptions { model_in_body: true, stream: false, stream_usage: true, names_on_tool_messages_only: false };

    fn conversation() -> ChatRequest {
        ChatRequest::new("gpt-4o", vec![Message::system("be brief"), Message::user("hi"), Message::assistant("hello")])
    }

    /// Roles, sampling options and stop strings map one to one; unset options are left out.
    #[test]
    fn body_maps_messages_and_options() {
        let mut request = conversation();
        assert_eq!(
            chat_body(&request, PLAIN).unwrap(),
            json!({"model": "gpt-4o", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ]})
        );
        request.temperature = Some(0.2);
        request.top_p = Some(0.9);
        request.max_tokens = Some(64);
        request.stop = vec!["END".into(), "\n\n".into()];
        let body = chat_body(&request, PLAIN).unwrap();
        // f32 values keep their short form on the wire.
        let text = body.to_string();
        assert!(text.contains("\"temperature\":0.2,") && text.contains("\"top_p\":0.9"), "{text}");
        assert_eq!((&body["temperature"], &body["top_p"], &body["max_tokens"]), (&json!(0.2), &json!(0.9), &json!(64)));
        assert_eq!(body["stop"], json!(["END", "\n\n"]));
        assert!(body.get("stream").is_none() && body.get("tools").is_none());
    }

    /// Streaming adds `stream` and, where the vendor accepts it, `stream_options`; Azure
    /// deployment calls leave the model out.
    #[test]
    fn body_for_streams_and_deployments() {
        let request = conversation();
        let stream = BodyOptions { stream: true, ..PLAIN };
        let body = chat_body(&request, stream).unwrap();
        assert_eq!((&body["stream"], &body["stream_options"]), (&json!(true), &json!({"include_usage": true})));
        let mistral = chat_body(&request, BodyOptions { stream_usage: false, ..stream }).unwrap();
        assert_eq!((&mistral["stream"], mistral.get("stream_options")), (&json!(true), None));
        let azure = chat_body(&request, BodyOptions { model_in_body: false, ..PLAIN }).unwrap();
        assert!(azure.get("model").is_none());
    }

    /// Tool definitions, assistant tool calls, tool results and names use OpenAI's shapes.
    #[test]
    fn body_maps_tools() {
        let mut request = conversation();
        let mut call = Message::assistant("");
        call.tool_calls =
            vec![ToolCall { id: "call_1".into(), name: "weather".into(), arguments: "{\"city\":\"Oslo\"}".into() }];
        let mut result = Message::new(Role::Tool, "12C");
        result.tool_call_id = Some("call_1".into());
        let mut named = Message::user("again");
        named.name = Some("ada".into());
        request.messages = vec![call, result, named];
        request.tools = vec![ToolSpec {
            name: "weather".into(),
            description: Some("Current weather".into()),
            parameters: r#"{"type":"object"}"#.into(),
        }];
        request.tool_choice = Some("weather".into());
        let body = chat_body(&request, PLAIN).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "content": "12C", "tool_call_id": "call_1"},
                {"role": "user", "content": "again", "name": "ada"},
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "weather", "description": "Current weather", "parameters": {"type": "object"}}}])
        );
        assert_eq!(body["tool_choice"], json!({"type": "function", "function": {"name": "weather"}}));
        request.tool_choice = Some("required".into());
        assert_eq!(chat_body(&request, PLAIN).unwrap()["tool_choice"], "required");
        request.tools[0].parameters = "{oops".into();
        assert!(matches!(chat_body(&request, PLAIN), Err(ProviderError::BadRequest(_))));
    }

    /// `extra_json` fields override the body, and a `null` removes one.
    #[test]
    fn body_merges_extra_json() {
        let mut request = conversation();
        request.max_tokens = Some(10);
        request.extra_json = Some(r#"{"max_tokens": null, "max_completion_tokens": 10, "seed": 7}"#.into());
        let body = chat_body(&request, PLAIN).unwrap();
        assert_eq!(
            (body.get("max_tokens"), &body["max_completion_tokens"], &body["seed"]),
            (None, &json!(10), &json!(7))
        );
        request.extra_json = Some("[1]".into());
        assert!(matches!(chat_body(&request, PLAIN), Err(ProviderError::BadRequest(_))));
    }

    /// A reply yields the first choice's text, finish reason, usage and model.
    #[test]
    fn parses_a_reply() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!", "refusal": null},
                         "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        });
        let reply = parse_chat_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            reply,
            ChatResponse {
                content: "Hi!".into(),
                reasoning: Vec::new(),
                tool_calls: Vec::new(),
                finish_reason: FinishReason::Length,
                usage: Some(Usage::new(9, 2)),
                model: "gpt-4o-2024-08-06".into(),
            }
        );
    }

    /// Tool calls, refusals, missing usage and Azure's content filter are read as sent.
    #[test]
    fn parses_tool_calls_refusals_and_filters() {
        let tools = json!({"model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
        let reply = parse_chat_response(tools.to_string().as_bytes()).unwrap();
        assert_eq!(reply.tool_calls, [ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{}".into() }]);
        assert_eq!((reply.content.as_str(), reply.finish_reason, reply.usage), ("", FinishReason::ToolCalls, None));

        let refusal =
            json!({"choices": [{"message": {"content": null, "refusal": "I can't"}, "finish_reason": "stop"}]});
        assert_eq!(parse_chat_response(refusal.to_string().as_bytes()).unwrap().content, "I can't");
        let filtered = json!({"model": "", "choices": [{"index": 0, "finish_reason": "content_filter",
            "message": {"role": "assistant", "content": ""}, "content_filter_results": {"hate": {"filtered": true}}}]});
        assert_eq!(
            parse_chat_response(filtered.to_string().as_bytes()).unwrap().finish_reason,
            FinishReason::ContentFilter
        );
    }

    /// Unreadable replies, empty choices and in-band errors are errors.
    #[test]
    fn bad_replies() {
        assert!(matches!(parse_chat_response(b"<html>"), Err(ProviderError::Other(_))));
        assert!(matches!(parse_chat_response(b"{\"choices\": []}"), Err(ProviderError::Other(_))));
        let in_band = json!({"error": {"message": "overloaded", "type": "server_error", "code": null}});
        assert_eq!(
            parse_chat_response(in_band.to_string().as_bytes()),
            Err(ProviderError::unavailable("HTTP 500: overloaded"))
        );
    }

    /// Every finish reason the family sends maps to its WIT case.
    #[test]
    fn finish_reasons() {
        let cases = [
            ("stop", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("model_length", FinishReason::ContextWindow),
            ("tool_calls", FinishReason::ToolCalls),
            ("function_call", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("error", FinishReason::Other),
        ];
        for (reason, expected) in cases {
            assert_eq!(finish_reason(reason), expected, "{reason}");
        }
    }

    fn sse(events: &[Value]) -> String {
        events.iter().map(|e| format!("data: {e}\n\n")).collect::<String>()
    }

    /// Runs `body`, cut into `pieces`-byte chunks, through [`read_chat_stream`].
    fn stream(
        body: &str,
        pieces: usize,
        end: Option<HttpError>,
    ) -> (Vec<StreamEvent>, Result<ChatResponse, ProviderError>) {
        let events = RefCell::new(Vec::new());
        let mut chunks: Vec<Result<Vec<u8>, HttpError>> =
            body.as_bytes().chunks(pieces).map(|c| Ok(c.to_vec())).collect();
        chunks.extend(end.map(Err));
        let result = read_chat_stream(chunks, &|event| events.borrow_mut().push(event.clone()));
        (events.into_inner(), result)
    }

    fn chunk(delta: Value, finish: Value) -> Value {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    }

    fn openai_stream() -> String {
        let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                           "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}});
        // Azure opens with a chunk that has no choices and no model, only filter results.
        let azure_preamble = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]});
        let events = [
            azure_preamble,
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hel"}), Value::Null),
            chunk(json!({"content": "lo"}), Value::Null),
            chunk(json!({}), json!("stop")),
            usage,
        ];
        format!("{}data: [DONE]\n\n", sse(&events))
    }

    /// Deltas are emitted as they come, however the body is cut, and make up the final reply
    /// with the usage chunk's counts.
    #[test]
    fn streams_deltas_and_usage() {
        for pieces in [1, 7, 10_000] {
            let (events, result) = stream(&openai_stream(), pieces, None);
            let usage = Usage::new(8, 2);
            assert_eq!(
                events,
                [StreamEvent::Delta("Hel".into()), StreamEvent::Delta("lo".into()), StreamEvent::Usage(usage)],
                "pieces of {pieces}"
            );
            let reply = result.unwrap();
            assert_eq!((reply.content.as_str(), reply.finish_reason), ("Hello", FinishReason::Stop));
            assert_eq!((reply.usage, reply.model.as_str()), (Some(usage), "gpt-4o-mini"));
        }
    }

    /// A streamed refusal (`delta.refusal`) is the reply's text, and the reply ends `refusal`;
    /// cached and reasoning tokens come through with the usage.
    #[test]
    fn streams_refusals_and_usage_details() {
        let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini", "choices": [],
            "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                      "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}});
        let events = [
            chunk(json!({"role": "assistant", "content": null, "refusal": ""}), Value::Null),
            chunk(json!({"refusal": "I'm sorry, "}), Value::Null),
            chunk(json!({"refusal": "I can't help with that."}), Value::Null),
            chunk(json!({}), json!("stop")),
            usage,
        ];
        let (events, result) = stream(&format!("{}data: [DONE]\n\n", sse(&events)), 9, None);
        let reply = result.unwrap();
        assert_eq!(reply.content, "I'm sorry, I can't help with that.");
        assert_eq!(reply.finish_reason, FinishReason::Refusal);
        let expected = Usage { cached_read_tokens: 1920, reasoning_tokens: 256, ..Usage::new(2006, 300) };
        assert_eq!(reply.usage, Some(expected));
        assert_eq!(events.last(), Some(&StreamEvent::Usage(expected)));
    }

    /// Reasoning models get `max_completion_tokens` and none of the sampling options they
    /// refuse; other models keep `max_tokens`.
    #[test]
    fn reasoning_models_get_max_completion_tokens() {
        let mut request = conversation();
        (request.temperature, request.top_p, request.max_tokens) = (Some(0.2), Some(0.9), Some(500));
        request.stop = vec!["END".into()];
        for model in ["o3-mini", "o4-mini", "gpt-5", "gpt-5.1-codex", "openai/gpt-5-mini"] {
            request.model = model.into();
            let body = chat_body(&request, PLAIN).unwrap();
            assert_eq!(body["max_completion_tokens"], json!(500), "{model}");
            for refused in ["max_tokens", "temperature", "top_p", "stop"] {
                assert!(body.get(refused).is_none(), "{model} got {refused}");
            }
        }
        for model in ["gpt-4.1-mini", "gpt-5-chat-latest", "omni-moderation", "mistral-small-latest"] {
            request.model = model.into();
            let body = chat_body(&request, PLAIN).unwrap();
            assert_eq!((&body["max_tokens"], &body["temperature"]), (&json!(500), &json!(0.2)), "{model}");
            assert!(body.get("max_completion_tokens").is_none(), "{model}");
        }
    }

    /// OpenAI's `context_length_exceeded` is its own error, not a plain bad request.
    #[test]
    fn context_length_errors_are_typed() {
        let body = r#"{"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}"#;
        assert!(
            matches!(error_from_reply(400, None, None, body), ProviderError::ContextLengthExceeded(m) if m.contains("128000"))
        );
    }

    /// Mistral's last content chunk carries finish reason and usage together.
    #[test]
    fn usage_beside_the_last_delta() {
        let mut last = chunk(json!({"content": "."}), json!("stop"));
        last["usage"] = json!({"prompt_tokens": 5, "total_tokens": 7, "completion_tokens": 2});
        let body = format!(
            "{}data: [DONE]\n\n",
            sse(&[chunk(json!({"role": "assistant", "content": "Hi"}), Value::Null), last])
        );
        let (events, result) = stream(&body, 5, None);
        assert_eq!(events.len(), 3);
        assert_eq!(result.unwrap().usage, Some(Usage::new(5, 2)));
    }

    /// Streamed tool-call fragments are emitted and assembled by index.
    #[test]
    fn streams_tool_calls() {
        let call = |delta: Value| chunk(json!({"tool_calls": [delta]}), Value::Null);
        let events = [
            call(json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}})),
            call(json!({"index": 0, "function": {"arguments": "{\"a\":"}})),
            call(json!({"index": 0, "function": {"arguments": "1}"}})),
            chunk(json!({}), json!("tool_calls")),
        ];
        let (emitted, result) = stream(&format!("{}data: [DONE]\n\n", sse(&events)), 64, None);
        assert_eq!(
            emitted[1],
            StreamEvent::ToolCall(ToolCallDelta { index: 0, id: None, name: None, arguments: "{\"a\":".into() })
        );
        let reply = result.unwrap();
        assert_eq!(
            reply.tool_calls,
            [ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"a\":1}".into() }]
        );
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    }

    /// A body that ends or breaks off before `[DONE]` is `unavailable`, after the deltas it had.
    #[test]
    fn streams_that_end_early() {
        let cut = openai_stream().replace("data: [DONE]\n\n", "");
        let (events, result) = stream(&cut, 16, None);
        assert_eq!(events.len(), 3);
        let Err(ProviderError::Unavailable(RateLimit { message, .. })) = result else { panic!("{result:?}") };
        assert!(message.starts_with("stream ended early"), "{message}");

        let (_, result) = stream(&cut, 16, Some(HttpError::Protocol("connection reset".into())));
        let Err(ProviderError::Unavailable(RateLimit { message, .. })) = result else { panic!("{result:?}") };
        assert!(message.starts_with("stream ended early") && message.contains("connection reset"), "{message}");
        let (_, result) = stream(&cut, 16, Some(HttpError::Timeout));
        assert!(matches!(result, Err(ProviderError::Timeout(_))), "{result:?}");
    }

    /// A chunk that is not JSON, or not a chunk, is a malformed stream.
    #[test]
    fn malformed_chunks() {
        for bad in ["data: {\"choices\": [{\"delta\": \n\n", "data: {\"choices\": 3}\n\n"] {
            let (_, result) = stream(&format!("{bad}data: [DONE]\n\n"), 100, None);
            let Err(ProviderError::Other(message)) = result else { panic!("{result:?}") };
            assert!(message.starts_with("malformed stream chunk"), "{message}");
        }
    }

    /// An `error` object mid-stream maps as the HTTP error it stands for.
    #[test]
    fn errors_mid_stream() {
        let cases = [
            (json!({"error": {"message": "boom", "type": "server_error", "code": null}}), "unavailable"),
            (json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}), "rate"),
            (json!({"object": "error", "message": "bad input", "type": "BadRequestError", "code": 400}), "bad"),
            (json!({"error": {"code": "429", "message": "Rate limit is exceeded."}}), "rate"),
        ];
        for (error, kind) in cases {
            let body =
                format!("{}data: [DONE]\n\n", sse(&[chunk(json!({"content": "a"}), Value::Null), error.clone()]));
            let (events, result) = stream(&body, 100, None);
            assert_eq!(events.len(), 1);
            let matched = match result {
                Err(ProviderError::Unavailable(_)) => "unavailable",
                Err(ProviderError::RateLimited(_)) => "rate",
                Err(ProviderError::BadRequest(_)) => "bad",
                ref other => panic!("{error}: {other:?}"),
            };
            assert_eq!(matched, kind, "{error}");
        }
    }

    /// `retry-after-ms` wins over `retry-after`; missing-model codes become `not-found`; an
    /// exhausted quota is not retried.
    #[test]
    fn error_mapping() {
        let rate = |ms, s| match error_from_reply(429, ms, s, "{}") {
            ProviderError::RateLimited(RateLimit { retry_after_ms, .. }) => retry_after_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(rate(Some("1500"), Some("2")), Some(1500));
        assert_eq!(rate(None, Some("2")), Some(2000));
        assert_eq!(rate(Some("soon"), Some("3")), Some(3000));
        assert_eq!(rate(None, None), None);

        let mistral =
            r#"{"object":"error","message":"Invalid model: nope","type":"invalid_model","param":null,"code":"1500"}"#;
        assert_eq!(
            error_from_reply(400, None, None, mistral),
            ProviderError::NotFound("HTTP 400: Invalid model: nope".into())
        );
        let github =
            r#"{"error":{"code":"unknown_model","message":"Unknown model: nope","details":"Unknown model: nope"}}"#;
        assert!(matches!(error_from_reply(400, None, None, github), ProviderError::NotFound(_)));
        let azure = r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#;
        assert!(matches!(error_from_reply(404, None, None, azure), ProviderError::NotFound(_)));
        let invalid = r#"{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":null}}"#;
        assert!(matches!(error_from_reply(400, None, None, invalid), ProviderError::BadRequest(_)));
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert_eq!(
            error_from_reply(429, None, None, quota),
            ProviderError::Other("HTTP 429: You exceeded your current quota".into())
        );
    }

    /// Credentials a vendor or proxy echoes back are masked, whatever the header's spelling.
    #[test]
    fn echoed_credentials_are_masked() {
        let echoed = r#"{"error": {"message": "Invalid header: Authorization: Bearer sk-live-123, api-key: abc=="}}"#;
        assert_eq!(
            error_from_reply(400, None, None, echoed),
            ProviderError::BadRequest("HTTP 400: Invalid header: Authorization: Bearer ***, api-key: ***".into())
        );
        assert_eq!(redact_credentials("BEARER x\"API-KEY=y}"), "BEARER ***\"API-KEY=***}");
        assert_eq!(redact_credentials("no key here; bearer"), "no key here; bearer");
        assert_eq!(redact_credentials("café bearer ünï 1"), "café bearer *** 1");
    }

    /// Model lists from OpenAI, Mistral, vLLM and bare arrays.
    #[test]
    fn model_lists() {
        let body = json!({"object": "list", "data": [
            {"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "system"},
            {"id": "mistral-small-latest", "object": "model", "max_context_length": 32768,
             "capabilities": {"completion_chat": true, "function_calling": true}},
            {"id": "text-embedding-3-small", "object": "model"},
            {"id": "llama", "max_model_len": 4096},
            {"object": "model"},
        ]});
        let models = parse_models(body.to_string().as_bytes()).unwrap();
        let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["gpt-4o", "mistral-small-latest", "text-embedding-3-small", "llama"]);
        assert_eq!((models[1].context_window, models[1].supports_tools), (Some(32768), true));
        assert!(models[2].supports_embeddings && !models[0].supports_embeddings);
        assert_eq!(models[3].context_window, Some(4096));
        assert_eq!(parse_models(b"[{\"id\": \"a\"}]").unwrap().len(), 1);
        assert!(parse_models(b"{\"data\": 1}").is_err());
    }

    /// Embedding requests name the model unless the URL does; replies come back in input order.
    #[test]
    fn embeddings() {
        let inputs = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(embeddings_body(Some("m"), &inputs), json!({"model": "m", "input": ["a", "b"]}));
        assert_eq!(embeddings_body(None, &inputs), json!({"input": ["a", "b"]}));
        let body = json!({"object": "list", "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 1, "embedding": [0.5, 0.5]},
                     {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}});
        let embeddings = parse_embeddings(body.to_string().as_bytes(), "fallback", 2).unwrap();
        assert_eq!(embeddings.vectors, [vec![1.0, 0.0], vec![0.5, 0.5]]);
        assert_eq!(embeddings.model, "text-embedding-3-small");
        assert_eq!(embeddings.usage, Some(Usage::new(2, 0)));
        assert!(matches!(parse_embeddings(body.to_string().as_bytes(), "m", 3), Err(ProviderError::Other(_))));
    }

    /// Keys travel only as placeholders, in the header each vendor expects.
    #[test]
    fn auth_headers() {
        assert_eq!(
            Auth::Bearer("OPENAI_API_KEY").header(),
            ("authorization".into(), "Bearer {{secret:OPENAI_API_KEY}}".into())
        );
        assert_eq!(
            Auth::Header("api-key", "AZURE_OPENAI_API_KEY").header(),
            ("api-key".into(), "{{secret:AZURE_OPENAI_API_KEY}}".into())
        );
    }

    /// With `names_on_tool_messages_only` (Mistral), `name` stays on tool messages alone.
    #[test]
    fn names_only_on_tool_messages() {
        let mut user = Message::user("hi");
        user.name = Some("ada".into());
        let mut result = Message::new(Role::Tool, "12°C");
        result.tool_call_id = Some("call_1".into());
        result.name = Some("weather".into());
        let request = ChatRequest::new("mistral-small-latest", vec![user, result]);
        let mistral = BodyOptions { names_on_tool_messages_only: true, ..PLAIN };
        let body = chat_body(&request, mistral).unwrap();
        assert_eq!(body["messages"][0], json!({"role": "user", "content": "hi"}));
        assert_eq!(
            body["messages"][1],
            json!({"role": "tool", "content": "12°C", "name": "weather", "tool_call_id": "call_1"})
        );
        assert_eq!(chat_body(&request, PLAIN).unwrap()["messages"][0]["name"], "ada");
    }

    /// Magistral's `reasoning_effort` (like any vendor option) travels in `extra_json`.
    #[test]
    fn reasoning_effort_passes_through_extra_json() {
        let mut request = ChatRequest::new("magistral-medium-latest", vec![Message::user("hi")]);
        request.extra_json = Some(r#"{"reasoning_effort": "high"}"#.into());
        let mistral = BodyOptions { names_on_tool_messages_only: true, ..PLAIN };
        assert_eq!(chat_body(&request, mistral).unwrap()["reasoning_effort"], "high");
    }

    /// Mistral's content lists: thinking chunks become one reasoning block, text chunks the
    /// reply; `model_length` is a full context window.
    #[test]
    fn content_lists_with_thinking() {
        let body = json!({"id": "m1", "object": "chat.completion", "model": "magistral-medium-2509",
            "choices": [{"index": 0, "finish_reason": "model_length", "message": {"role": "assistant", "tool_calls": null,
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "Primes below 10: "}, {"type": "text", "text": "2, 3, 5, 7."}]},
                    {"type": "text", "text": "7"},
                ]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 40, "total_tokens": 49}});
        let reply = parse_chat_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(reply.content, "7");
        assert_eq!(reply.reasoning, [reasoning_block("Primes below 10: 2, 3, 5, 7.".into())]);
        assert_eq!(reply.finish_reason, FinishReason::ContextWindow);
    }

    /// Streamed content lists: thinking deltas are reasoning events (and the reply's block),
    /// text deltas the text.
    #[test]
    fn streams_content_lists_with_thinking() {
        let thinking =
            |text: &str| json!({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": text}]}]});
        let events = [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(thinking("Primes: "), Value::Null),
            chunk(thinking("2, 3, 5, 7."), Value::Null),
            chunk(json!({"content": [{"type": "text", "text": "7"}]}), Value::Null),
            chunk(json!({"content": ""}), json!("stop")),
        ];
        let (events, result) = stream(&format!("{}data: [DONE]\n\n", sse(&events)), 10_000, None);
        assert_eq!(
            events,
            [
                StreamEvent::Reasoning("Primes: ".into()),
                StreamEvent::Reasoning("2, 3, 5, 7.".into()),
                StreamEvent::Delta("7".into())
            ]
        );
        let reply = result.unwrap();
        assert_eq!(reply.content, "7");
        assert_eq!(reply.reasoning, [reasoning_block("Primes: 2, 3, 5, 7.".into())]);
    }

    /// `finish_reason: "error"` fails the call as unavailable, in a reply or a stream.
    #[test]
    fn finish_reason_error_is_a_failure() {
        let body = json!({"id": "m1", "object": "chat.completion", "model": "mistral-small-latest",
            "choices": [{"index": 0, "finish_reason": "error", "message": {"role": "assistant", "content": "Par"}}]});
        assert!(matches!(parse_chat_response(body.to_string().as_bytes()), Err(ProviderError::Unavailable(_))));
        let events = [chunk(json!({"content": "Par"}), Value::Null), chunk(json!({"content": ""}), json!("error"))];
        let (events, result) = stream(&format!("{}data: [DONE]\n\n", sse(&events)), 10_000, None);
        assert_eq!(events, [StreamEvent::Delta("Par".into())]);
        assert!(matches!(result, Err(ProviderError::Unavailable(_))), "{result:?}");
    }
}
