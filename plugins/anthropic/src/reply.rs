//! Anthropic's replies as ours: a complete Message, the server-sent events of a streamed one
//! (`message_start` … `message_stop`, with `ping` and in-stream `error` events), errors (with
//! retired models named), and the model list.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use codexcontinue_sdk::vendor::{Collector, model_info};
use codexcontinue_sdk::{
    ChatResponse, FinishReason, ModelInfo, ProviderError, RateLimit, ReasoningBlock, ToolCall, Usage,
};
use serde::Deserialize;
use serde_json::Value;

/// A complete Message, as `POST /v1/messages` returns it.
#[derive(Debug, Deserialize)]
pub struct Message {
    model: String,
    content: Vec<ContentBlock>,
    stop_reason: Option<String>,
    usage: Option<ApiUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Extended thinking: readable text with the signature Anthropic needs to see it again.
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    /// Thinking Anthropic encrypted; only `data` travels, and must go back unchanged.
    RedactedThinking {
        data: String,
    },
    /// Server tools (`server_tool_use`, `web_search_tool_result`, …), citations and block types
    /// added later carry no reply text and no call for the client to answer.
    #[serde(other)]
    Other,
}

/// Token counts; every field is optional because `message_delta` reports only some of them.
#[derive(Debug, Default, Deserialize)]
pub struct ApiUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    cache_creation_input_tokens: Option<u32>,
    cache_read_input_tokens: Option<u32>,
}

impl ApiUsage {
    /// All prompt tokens: Anthropic counts tokens written to and read from the prompt cache apart
    /// from `input_tokens`, but they were all part of the prompt (and billed).
    fn prompt_tokens(&self) -> Option<u32> {
        let parts = [self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens];
        parts.iter().any(Option::is_some).then(|| parts.iter().flatten().sum())
    }

    /// Takes every count `later` reports; `message_delta` repeats only some of them.
    fn update(&mut self, later: ApiUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later.cache_creation_input_tokens.or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later.cache_read_input_tokens.or(self.cache_read_input_tokens);
    }

    /// Our usage, when Anthropic reported any prompt count.
    fn usage(&self) -> Option<Usage> {
        self.prompt_tokens().map(|prompt_tokens| Usage {
            cached_read_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cached_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
            ..Usage::new(prompt_tokens, self.output_tokens.unwrap_or(0))
        })
    }
}

/// The reason a Message stopped, in our terms.
fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::Refusal,
        Some("model_context_window_exceeded") => FinishReason::ContextWindow,
        // `pause_turn` (a server tool paused a long turn) and anything newer.
        _ => FinishReason::Other,
    }
}

/// A thinking block as ours: text and signature, or redacted data as encrypted content.
fn reasoning(text: String, signature: Option<String>, encrypted_content: Option<String>) -> ReasoningBlock {
    ReasoningBlock { text, signature, encrypted_content, id: None }
}

/// A complete Message as our reply: text blocks joined, tool_use blocks as tool calls, thinking
/// blocks as reasoning.
pub fn message(message: Message) -> ChatResponse {
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    let mut blocks = Vec::new();
    for block in message.content {
        match block {
            ContentBlock::Text { text } => content.push_str(&text),
            ContentBlock::ToolUse { id, name, input } => {
                tool_calls.push(ToolCall { id, name, arguments: input.to_string() });
            }
            ContentBlock::Thinking { thinking, signature } => blocks.push(reasoning(thinking, signature, None)),
            ContentBlock::RedactedThinking { data } => blocks.push(reasoning(String::new(), None, Some(data))),
            ContentBlock::Other => {}
        }
    }
    ChatResponse {
        content,
        reasoning: blocks,
        tool_calls,
        finish_reason: finish_reason(message.stop_reason.as_deref()),
        usage: message.usage.unwrap_or_default().usage(),
        model: message.model,
    }
}

/// One server-sent event of a streamed Message, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: ApiUsage,
    },
    MessageStop {},
    Ping {},
    Error {
        error: ApiError,
    },
    /// Event types added after this plugin was written are skipped, as Anthropic asks clients to.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
pub struct StartedMessage {
    model: Option<String>,
    #[serde(default)]
    usage: ApiUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    /// The signature of a thinking block, sent once just before the block stops.
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    /// Citation deltas and newer kinds carry no reply text.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct MessageDelta {
    stop_reason: Option<String>,
}

/// The `error` object of an error body or an in-stream `error` event.
#[derive(Debug, Deserialize)]
pub struct ApiError {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

impl From<ApiError> for ProviderError {
    /// Anthropic's error types (docs: "Errors") as our cases.
    fn from(error: ApiError) -> Self {
        let message = format!("{}: {}", error.kind, error.message);
        match error.kind.as_str() {
            "authentication_error" | "permission_error" => ProviderError::Unauthorized(message),
            "rate_limit_error" => ProviderError::RateLimited(RateLimit { retry_after_ms: None, message }),
            "invalid_request_error" if is_prompt_too_long(&message) => ProviderError::ContextLengthExceeded(message),
            "invalid_request_error" => ProviderError::BadRequest(message),
            "request_too_large" => ProviderError::RequestTooLarge(message),
            "not_found_error" => ProviderError::NotFound(message),
            "overloaded_error" => ProviderError::Overloaded(RateLimit { retry_after_ms: None, message }),
            "api_error" => ProviderError::unavailable(message),
            "timeout_error" => ProviderError::Timeout(message),
            _ => ProviderError::Other(message),
        }
    }
}

/// Whether an `invalid_request_error` message is Anthropic's "prompt is too long: N tokens > M
/// maximum", the one 400 that means the conversation no longer fits the model.
fn is_prompt_too_long(message: &str) -> bool {
    message.to_ascii_lowercase().contains("prompt is too long")
}

/// Models Anthropic has retired, by id prefix, with the current model to use instead.
const RETIRED: &[(&str, &str)] = &[
    ("claude-3-5-haiku", "claude-haiku-4-5"),
    ("claude-3-haiku-20240307", "claude-haiku-4-5"),
    ("claude-3-5-sonnet", "claude-sonnet-4-5"),
    ("claude-3-sonnet", "claude-sonnet-4-5"),
    ("claude-3-opus", "claude-opus-4-5"),
];

/// The substitute for `model` when Anthropic has retired it.
pub fn substitute(model: &str) -> Option<&'static str> {
    RETIRED.iter().find(|(prefix, _)| model.starts_with(prefix)).map(|(_, to)| *to)
}

/// Sharpens an HTTP error for a request for `model`: a 400 saying the prompt is too long is
/// `context-length-exceeded`, and "not found" for a retired model names its substitute.
/// (413, 429, 529 and 5xx with `Retry-After` are mapped by the SDK from the status.)
pub fn refine(error: ProviderError, model: &str) -> ProviderError {
    match error {
        ProviderError::BadRequest(message) if is_prompt_too_long(&message) => {
            ProviderError::ContextLengthExceeded(message)
        }
        ProviderError::NotFound(message) => match substitute(model) {
            Some(to) => ProviderError::NotFound(format!("{model} was retired; use {to} ({message})")),
            None => ProviderError::NotFound(message),
        },
        other => other,
    }
}

/// What a stream has told us so far beyond what the [`Collector`] keeps: usage with cache
/// counts, the reasoning blocks by content-block index, and which blocks are client tool calls.
#[derive(Debug, Default)]
pub struct Stream {
    usage: ApiUsage,
    reasoning: BTreeMap<u32, ReasoningBlock>,
    tool_blocks: Vec<u32>,
}

impl Stream {
    /// Applies one event; breaks at `message_stop`, fails on an `error` event.
    pub fn event(&mut self, out: &mut Collector<'_>, event: Event) -> Result<ControlFlow<()>, ProviderError> {
        match event {
            Event::MessageStart { message } => {
                if let Some(model) = message.model {
                    out.model(model);
                }
                self.usage.update(message.usage);
                out.usage(self.usage.prompt_tokens(), self.usage.output_tokens);
            }
            Event::ContentBlockStart { index, content_block: ContentBlock::ToolUse { id, name, .. } } => {
                // The block's `input` is always empty here; the arguments follow as deltas.
                self.tool_blocks.push(index);
                out.tool_call(index, Some(id), Some(name), "");
            }
            Event::ContentBlockStart { content_block: ContentBlock::Text { text }, .. } => out.text(&text),
            Event::ContentBlockStart { index, content_block: ContentBlock::Thinking { thinking, signature } } => {
                out.reasoning(&thinking);
                self.reasoning.insert(index, reasoning(thinking, signature.filter(|s| !s.is_empty()), None));
            }
            Event::ContentBlockStart { index, content_block: ContentBlock::RedactedThinking { data } } => {
                self.reasoning.insert(index, reasoning(String::new(), None, Some(data)));
            }
            Event::ContentBlockDelta { delta: Delta::Text { text }, .. } => out.text(&text),
            // Only client tool_use blocks become calls: a server tool's input (web search…) has
            // no id or name for the client and is answered by Anthropic itself.
            Event::ContentBlockDelta { index, delta: Delta::InputJson { partial_json } }
                if self.tool_blocks.contains(&index) =>
            {
                out.tool_call(index, None, None, &partial_json);
            }
            Event::ContentBlockDelta { index, delta: Delta::Thinking { thinking } } => {
                out.reasoning(&thinking);
                if let Some(block) = self.reasoning.get_mut(&index) {
                    block.text.push_str(&thinking);
                }
            }
            Event::ContentBlockDelta { index, delta: Delta::Signature { signature } } => {
                if let Some(block) = self.reasoning.get_mut(&index) {
                    block.signature.get_or_insert_with(String::new).push_str(&signature);
                }
            }
            Event::MessageDelta { delta, usage } => {
                out.finish_reason(finish_reason(delta.stop_reason.as_deref()));
                self.usage.update(usage);
                out.usage(self.usage.prompt_tokens(), self.usage.output_tokens);
            }
            Event::MessageStop {} => return Ok(ControlFlow::Break(())),
            Event::Error { error } => return Err(error.into()),
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }
}

impl Stream {
    /// The streamed reply with what the [`Collector`] does not keep: reasoning blocks in order,
    /// and usage with its cache counts.
    pub fn finish(self, mut response: ChatResponse) -> ChatResponse {
        response.reasoning = self.reasoning.into_values().collect();
        if let Some(usage) = self.usage.usage() {
            response.usage = Some(usage);
        }
        response
    }
}

/// The reply of `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub struct Models {
    data: Vec<Model>,
}

#[derive(Debug, Deserialize)]
struct Model {
    id: String,
}

/// Every listed model; all current Claude models take tools and none embeds.
pub fn models(models: Models) -> Vec<ModelInfo> {
    models.data.into_iter().map(|m| model_info(m.id, false, true)).collect()
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::StreamEvent;
    use serde_json::json;

    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    /// Text blocks join, tool_use becomes a tool call, stop reasons and usage map.
    #[test]
    fn complete_message() {
        let reply = message(parse(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [
                {"type": "text", "text": "Hello"},
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "text", "text": " there"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 7},
        })));
        assert_eq!(reply.content, "Hello there");
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
        assert_eq!(reply.usage, Some(Usage { cached_read_tokens: 3, ..Usage::new(15, 7) }));
        assert_eq!(reply.reasoning, [reasoning("hmm".into(), Some("x".into()), None)]);
        assert_eq!(reply.model, "claude-3-5-haiku-20241022");
        assert_eq!(reply.tool_calls[0].arguments, r#"{"city":"Oslo"}"#);
        for (reason, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::Refusal),
            ("model_context_window_exceeded", FinishReason::ContextWindow),
            ("pause_turn", FinishReason::Other),
        ] {
            assert_eq!(finish_reason(Some(reason)), expected);
        }
    }

    /// A full stream with text and a tool call: deltas are emitted, the reply is assembled, and
    /// `message_stop` ends it.
    #[test]
    fn streamed_message() {
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Oslo\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "brand_new_event", "whatever": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
            json!({"type": "message_stop"}),
        ];
        let mut emitted = Vec::new();
        let mut emit = |e: &StreamEvent| emitted.push(e.clone());
        let mut out = Collector::new(&mut emit, "requested");
        let mut stream = Stream::default();
        let flows: Vec<_> = events.into_iter().map(|e| stream.event(&mut out, parse(e)).unwrap()).collect();
        assert!(flows[..flows.len() - 1].iter().all(|f| f.is_continue()) && flows.last().unwrap().is_break());
        let reply = stream.finish(out.finish());
        assert_eq!(reply.content, "Hi");
        assert_eq!(reply.model, "claude-x");
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
        assert_eq!(reply.usage, Some(Usage::new(25, 15)));
        assert_eq!(
            reply.tool_calls,
            [ToolCall { id: "toolu_1".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }]
        );
        assert_eq!(emitted[0], StreamEvent::Delta("Hi".into()));
    }

    /// Runs `events` through a stream; returns the reply and what was emitted.
    fn run(events: Vec<Value>) -> (ChatResponse, Vec<StreamEvent>) {
        let mut emitted = Vec::new();
        let mut emit = |e: &StreamEvent| emitted.push(e.clone());
        let mut out = Collector::new(&mut emit, "requested");
        let mut stream = Stream::default();
        for event in events {
            assert!(stream.event(&mut out, parse(event)).is_ok());
        }
        let reply = stream.finish(out.finish());
        (reply, emitted)
    }

    /// Streamed thinking is emitted as reasoning, and the reply keeps each block with its
    /// signature, redacted thinking as encrypted content; cache counts reach the usage, with the
    /// prompt counting input, cache reads and cache writes.
    #[test]
    fn streamed_thinking_and_cache_usage() {
        let (reply, emitted) = run(vec![
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "42"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
            json!({"type": "message_stop"}),
        ]);
        assert_eq!(
            emitted,
            [
                StreamEvent::Reasoning("Let me ".into()),
                StreamEvent::Reasoning("think.".into()),
                StreamEvent::Delta("42".into()),
            ]
        );
        assert_eq!(reply.content, "42");
        assert_eq!(
            reply.reasoning,
            [
                reasoning("Let me think.".into(), Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3h".into()), None),
                reasoning(String::new(), None, Some("EmwKAhgBEgy3va3pzix/LafPsn4a".into())),
            ]
        );
        assert_eq!(
            reply.usage,
            Some(Usage { cached_read_tokens: 2000, cached_write_tokens: 100, ..Usage::new(2110, 30) })
        );
    }

    /// A web search (server_tool_use with its input_json deltas, then web_search_tool_result)
    /// is Anthropic's own business: no tool call reaches the client; the text still does.
    #[test]
    fn server_tools_are_skipped() {
        let (reply, emitted) = run(vec![
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"weather\"}"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "title": "Weather", "url": "https://example.com", "encrypted_content": "abc", "page_age": null}]}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Sunny."}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": {"type": "web_search_result_location", "url": "https://example.com", "title": "Weather", "encrypted_index": "x", "cited_text": "sun"}}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 9, "server_tool_use": {"web_search_requests": 1}}}),
            json!({"type": "message_stop"}),
        ]);
        assert_eq!(reply.content, "Sunny.");
        assert!(reply.tool_calls.is_empty(), "{:?}", reply.tool_calls);
        assert_eq!(emitted, [StreamEvent::Delta("Sunny.".into())]);
        let full = message(parse(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "text", "text": "Sunny."},
            ],
            "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 9},
        })));
        assert!(full.tool_calls.is_empty());
        assert_eq!(full.content, "Sunny.");
    }

    /// A 400 saying the prompt is too long is context-length-exceeded; not found for a retired
    /// model names its substitute; other errors pass unchanged.
    #[test]
    fn refined_errors() {
        let too_long = ProviderError::BadRequest("HTTP 400: prompt is too long: 210000 tokens > 200000 maximum".into());
        assert!(matches!(refine(too_long, "claude-sonnet-4-5"), ProviderError::ContextLengthExceeded(_)));
        let other = ProviderError::BadRequest("HTTP 400: messages: roles must alternate".into());
        assert!(matches!(refine(other, "claude-sonnet-4-5"), ProviderError::BadRequest(_)));
        assert_eq!(
            refine(
                ProviderError::NotFound("HTTP 404: model: claude-3-5-haiku-latest".into()),
                "claude-3-5-haiku-latest"
            ),
            ProviderError::NotFound(
                "claude-3-5-haiku-latest was retired; use claude-haiku-4-5 (HTTP 404: model: claude-3-5-haiku-latest)"
                    .into()
            )
        );
        for (retired, to) in [
            ("claude-3-haiku-20240307", "claude-haiku-4-5"),
            ("claude-3-opus-20240229", "claude-opus-4-5"),
            ("claude-3-5-sonnet-20241022", "claude-sonnet-4-5"),
        ] {
            assert_eq!(substitute(retired), Some(to));
        }
        assert_eq!(substitute("claude-nope"), None);
        let ProviderError::NotFound(m) = refine(ProviderError::NotFound("HTTP 404".into()), "claude-nope") else {
            panic!()
        };
        assert_eq!(m, "HTTP 404");
    }

    /// In-stream error events map by their type.
    #[test]
    fn error_events() {
        let error = |kind: &str| {
            let mut emit = |_: &StreamEvent| {};
            let mut out = Collector::new(&mut emit, "m");
            let event = parse(json!({"type": "error", "error": {"type": kind, "message": "Overloaded"}}));
            Stream::default().event(&mut out, event).unwrap_err()
        };
        assert_eq!(
            error("overloaded_error"),
            ProviderError::Overloaded(RateLimit {
                retry_after_ms: None,
                message: "overloaded_error: Overloaded".into()
            })
        );
        assert_eq!(error("api_error"), ProviderError::unavailable("api_error: Overloaded"));
        assert!(matches!(
            error("rate_limit_error"),
            ProviderError::RateLimited(RateLimit { retry_after_ms: None, .. })
        ));
        assert!(matches!(error("authentication_error"), ProviderError::Unauthorized(_)));
        assert!(matches!(error("invalid_request_error"), ProviderError::BadRequest(_)));
        assert!(matches!(error("request_too_large"), ProviderError::RequestTooLarge(_)));
        let mut emit = |_: &StreamEvent| {};
        let mut out = Collector::new(&mut emit, "m");
        let too_long = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}});
        assert!(matches!(
            Stream::default().event(&mut out, parse(too_long)),
            Err(ProviderError::ContextLengthExceeded(_))
        ));
        assert!(matches!(error("not_found_error"), ProviderError::NotFound(_)));
        assert!(matches!(error("api_error"), ProviderError::Unavailable(_)));
        assert!(matches!(error("mystery"), ProviderError::Other(_)));
    }

    /// A known event type with the wrong shape does not parse (the plugin reports `other`).
    #[test]
    fn malformed_event() {
        assert!(serde_json::from_value::<Event>(json!({"type": "content_block_delta", "index": "zero"})).is_err());
    }

    /// Model ids come from `data[].id`.
    #[test]
    fn model_list() {
        let list = models(parse(
            json!({"data": [{"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5", "created_at": "2024-10-22T00:00:00Z"}], "has_more": false}),
        ));
        assert_eq!(list[0].id, "claude-3-5-haiku-20241022");
    }
}
