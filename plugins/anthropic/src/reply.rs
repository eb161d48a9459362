//! Anthropic's replies as ours: a complete Message, the server-sent events of a streamed one
//! (`message_start` … `message_stop`, with `ping` and in-stream `error` events), and the model list.

use std::ops::ControlFlow;

use codexcontinue_sdk::vendor::{Collector, model_info};
use codexcontinue_sdk::{ChatResponse, FinishReason, ModelInfo, ProviderError, RateLimit, ToolCall, Usage};
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
    /// Thinking, citations and block types added later carry no reply text.
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
    /// from `input_tokens`, but they were all part of the prompt.
    fn prompt_tokens(&self) -> Option<u32> {
        let parts = [self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens];
        parts.iter().any(Option::is_some).then(|| parts.iter().flatten().sum())
    }
}

/// The reason a Message stopped, in our terms.
fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// A complete Message as our reply: text blocks joined, tool_use blocks as tool calls.
pub fn message(message: Message) -> ChatResponse {
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in message.content {
        match block {
            ContentBlock::Text { text } => content.push_str(&text),
            ContentBlock::ToolUse { id, name, input } => {
                tool_calls.push(ToolCall { id, name, arguments: input.to_string() });
            }
            ContentBlock::Other => {}
        }
    }
    let usage = message.usage.unwrap_or_default();
    ChatResponse {
        content,
        reasoning: Vec::new(),
        tool_calls,
        finish_reason: finish_reason(message.stop_reason.as_deref()),
        usage: usage.prompt_tokens().map(|prompt_tokens| Usage::new(prompt_tokens, usage.output_tokens.unwrap_or(0))),
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
    /// Thinking, signature and citation deltas carry no reply text.
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
            "invalid_request_error" | "request_too_large" => ProviderError::BadRequest(message),
            "not_found_error" => ProviderError::NotFound(message),
            "overloaded_error" => ProviderError::Overloaded(RateLimit { retry_after_ms: None, message }),
            "api_error" => ProviderError::unavailable(message),
            "timeout_error" => ProviderError::Timeout(message),
            _ => ProviderError::Other(message),
        }
    }
}

/// What a stream has told us so far beyond what the [`Collector`] keeps.
#[derive(Debug, Default)]
pub struct Stream {
    prompt_tokens: Option<u32>,
}

impl Stream {
    /// Applies one event; breaks at `message_stop`, fails on an `error` event.
    pub fn event(&mut self, out: &mut Collector<'_>, event: Event) -> Result<ControlFlow<()>, ProviderError> {
        match event {
            Event::MessageStart { message } => {
                if let Some(model) = message.model {
                    out.model(model);
                }
                self.prompt_tokens = message.usage.prompt_tokens();
                out.usage(self.prompt_tokens, message.usage.output_tokens);
            }
            Event::ContentBlockStart { index, content_block: ContentBlock::ToolUse { id, name, .. } } => {
                // The block's `input` is always empty here; the arguments follow as deltas.
                out.tool_call(index, Some(id), Some(name), "");
            }
            Event::ContentBlockStart { content_block: ContentBlock::Text { text }, .. } => out.text(&text),
            Event::ContentBlockDelta { delta: Delta::Text { text }, .. } => out.text(&text),
            Event::ContentBlockDelta { index, delta: Delta::InputJson { partial_json } } => {
                out.tool_call(index, None, None, &partial_json);
            }
            Event::MessageDelta { delta, usage } => {
                out.finish_reason(finish_reason(delta.stop_reason.as_deref()));
                out.usage(usage.prompt_tokens().or(self.prompt_tokens), usage.output_tokens);
            }
            Event::MessageStop {} => return Ok(ControlFlow::Break(())),
            Event::Error { error } => return Err(error.into()),
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
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
        assert_eq!(reply.usage, Some(Usage::new(15, 7)));
        assert_eq!(reply.model, "claude-3-5-haiku-20241022");
        assert_eq!(reply.tool_calls[0].arguments, r#"{"city":"Oslo"}"#);
        for (reason, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
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
        let reply = out.finish();
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
