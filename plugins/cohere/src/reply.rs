//! Cohere's v2 replies as ours: a complete Chat reply, the server-sent events of a streamed one
//! (`message-start` … `message-end`; unknown types are skipped), thinking content (Command A
//! Reasoning) as reasoning rather than text, errors refined by Cohere's wording, embeddings and
//! the model list.

use std::ops::ControlFlow;

use codexcontinue_sdk::vendor::{Collector, model_info};
use codexcontinue_sdk::{
    ChatResponse, Embeddings, FinishReason, ModelInfo, ProviderError, ReasoningBlock, StreamEvent, ToolCall, Usage,
};
use serde::Deserialize;

/// A complete reply of `POST /v2/chat`. It does not name the model.
#[derive(Debug, Deserialize)]
pub struct Chat {
    finish_reason: Option<String>,
    message: ChatMessage,
    usage: Option<ApiUsage>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Vec<ContentItem>,
    #[serde(default)]
    tool_calls: Vec<ApiToolCall>,
}

/// One content item: `{"type": "text", "text"}` or `{"type": "thinking", "thinking"}`.
#[derive(Debug, Deserialize)]
struct ContentItem {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    thinking: String,
}

#[derive(Debug, Default, Deserialize)]
struct ApiToolCall {
    id: Option<String>,
    #[serde(default)]
    function: Function,
}

#[derive(Debug, Default, Deserialize)]
struct Function {
    name: Option<String>,
    #[serde(default)]
    arguments: String,
}

/// `usage`: `tokens` counts what the model read and wrote, `billed_units` what was charged
/// (which leaves out e.g. the tool and safety preamble); we report `tokens` when present.
#[derive(Debug, Default, Deserialize)]
struct ApiUsage {
    billed_units: Option<Tokens>,
    tokens: Option<Tokens>,
}

/// Counts are JSON numbers that Cohere documents as doubles, hence `f64`.
#[derive(Debug, Default, Deserialize)]
struct Tokens {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

impl ApiUsage {
    fn usage(&self) -> Option<Usage> {
        let tokens = self.tokens.as_ref().or(self.billed_units.as_ref())?;
        let count = |n: Option<f64>| n.map_or(0, |n| n.round() as u32);
        Some(Usage::new(count(tokens.input_tokens), count(tokens.output_tokens)))
    }
}

/// `finish_reason` in our terms; `ERROR` and `TIMEOUT` mean the reply failed.
fn finish_reason(reason: Option<&str>, error: Option<String>) -> Result<FinishReason, ProviderError> {
    let detail = || error.unwrap_or_else(|| "the model stopped generating".into());
    match reason {
        Some("COMPLETE" | "STOP_SEQUENCE") => Ok(FinishReason::Stop),
        Some("MAX_TOKENS") => Ok(FinishReason::Length),
        Some("TOOL_CALL") => Ok(FinishReason::ToolCalls),
        Some("ERROR") => Err(ProviderError::unavailable(format!("Cohere reported an error: {}", detail()))),
        Some("TIMEOUT") => Err(ProviderError::Timeout(format!("Cohere timed out: {}", detail()))),
        _ => Ok(FinishReason::Other),
    }
}

/// A complete reply as ours, from `model` (the one requested).
pub fn chat(chat: Chat, model: String) -> Result<ChatResponse, ProviderError> {
    let items = &chat.message.content;
    let content = items.iter().filter(|c| c.kind == "text").map(|c| c.text.as_str()).collect();
    let reasoning = items.iter().filter(|c| c.kind == "thinking").map(|c| thinking_block(c.thinking.clone())).collect();
    let tool_calls = chat
        .message
        .tool_calls
        .into_iter()
        .map(|call| ToolCall {
            id: call.id.unwrap_or_default(),
            name: call.function.name.unwrap_or_default(),
            arguments: call.function.arguments,
        })
        .collect();
    Ok(ChatResponse {
        content,
        reasoning,
        tool_calls,
        finish_reason: finish_reason(chat.finish_reason.as_deref(), None)?,
        usage: chat.usage.and_then(|u| u.usage()),
        model,
    })
}

/// A reasoning block of Cohere's thinking text; Cohere neither signs nor encrypts it.
fn thinking_block(text: String) -> ReasoningBlock {
    ReasoningBlock { text, signature: None, encrypted_content: None, id: None }
}

/// One server-sent event of a streamed reply, by its `type`; the payload sits in `delta.message`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// Opens a content block of type `text` or `thinking`.
    ContentStart {
        #[serde(default)]
        index: u32,
        delta: Delta<ContentStart>,
    },
    ContentDelta {
        #[serde(default)]
        index: u32,
        delta: Delta<ContentDelta>,
    },
    ToolCallStart {
        index: u32,
        delta: Delta<ToolCallPiece>,
    },
    ToolCallDelta {
        index: u32,
        delta: Delta<ToolCallPiece>,
    },
    MessageEnd {
        delta: End,
    },
    /// `message-start`, `content-end`, `tool-plan-delta`, citations, debug and any type added
    /// later carry nothing we return.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct Delta<T> {
    message: T,
}

#[derive(Debug, Deserialize)]
pub struct ContentStart {
    content: StartedContent,
}

#[derive(Debug, Deserialize)]
pub struct StartedContent {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ContentDelta {
    content: Piece,
}

/// Reply text, or (Command A Reasoning) thinking text.
#[derive(Debug, Deserialize)]
pub struct Piece {
    text: Option<String>,
    thinking: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallPiece {
    tool_calls: ApiToolCall,
}

#[derive(Debug, Deserialize)]
pub struct End {
    finish_reason: Option<String>,
    error: Option<String>,
    usage: Option<ApiUsage>,
}

/// A streamed reply being read: text and tool calls go to the [`Collector`], which also emits
/// thinking as reasoning events; the reasoning blocks themselves (by content index) are kept
/// here, since only Cohere's events say where one begins.
pub struct Stream<'a> {
    out: Collector<'a>,
    thinking: Vec<(u32, String)>,
}

impl<'a> Stream<'a> {
    /// A stream emitting to `emit`, for a reply from `model` (the one requested).
    pub fn new(emit: &'a mut dyn FnMut(&StreamEvent), model: &str) -> Self {
        Self { out: Collector::new(emit, model), thinking: Vec::new() }
    }

    /// Applies one event; breaks at `message-end`.
    pub fn event(&mut self, event: Event) -> Result<ControlFlow<()>, ProviderError> {
        match event {
            Event::ContentStart { index, delta } => {
                if delta.message.content.kind.as_deref() == Some("thinking") {
                    self.thinking.push((index, String::new()));
                }
            }
            Event::ContentDelta { index, delta } => {
                let piece = delta.message.content;
                if let Some(thinking) = piece.thinking.filter(|t| !t.is_empty()) {
                    match self.thinking.last_mut() {
                        Some((open, text)) if *open == index => text.push_str(&thinking),
                        _ => self.thinking.push((index, thinking.clone())),
                    }
                    self.out.reasoning(&thinking);
                }
                self.out.text(piece.text.as_deref().unwrap_or_default());
            }
            Event::ToolCallStart { index, delta } | Event::ToolCallDelta { index, delta } => {
                let call = delta.message.tool_calls;
                self.out.tool_call(index, call.id, call.function.name, &call.function.arguments);
            }
            Event::MessageEnd { delta } => {
                self.out.finish_reason(finish_reason(delta.finish_reason.as_deref(), delta.error)?);
                if let Some(usage) = delta.usage.and_then(|u| u.usage()) {
                    self.out.usage(Some(usage.prompt_tokens), Some(usage.completion_tokens));
                }
                return Ok(ControlFlow::Break(()));
            }
            Event::Other => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The complete reply, with its reasoning blocks in order.
    pub fn finish(self) -> ChatResponse {
        let reasoning = self.thinking.into_iter().map(|(_, text)| thinking_block(text)).collect();
        ChatResponse { reasoning, ..self.out.finish() }
    }
}

/// `error` refined by what Cohere says: a 400 "too many tokens" means the prompt does not fit
/// the model's context window (Cohere answers it so, e.g. "too many tokens: size limit exceeded
/// by 1200 tokens"). Everything else stays as [`error_from_status`](codexcontinue_sdk::error_from_status)
/// mapped it (413 → request too large, 429/5xx with their `Retry-After`).
pub fn refine(error: ProviderError) -> ProviderError {
    match error {
        ProviderError::BadRequest(message) if message.to_ascii_lowercase().contains("too many tokens") => {
            ProviderError::ContextLengthExceeded(message)
        }
        error => error,
    }
}

/// A reply of `POST /v2/embed` with `embedding_types: ["float"]`.
#[derive(Debug, Deserialize)]
pub struct Embed {
    embeddings: EmbeddingsByType,
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct EmbeddingsByType {
    float: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    billed_units: Option<Tokens>,
}

/// The vectors, checked to be one per input.
pub fn embeddings(embed: Embed, model: String, inputs: usize) -> Result<Embeddings, ProviderError> {
    let vectors = embed.embeddings.float;
    if vectors.len() != inputs {
        return Err(ProviderError::Other(format!("Cohere returned {} embeddings for {inputs} inputs", vectors.len())));
    }
    let billed = embed.meta.and_then(|m| m.billed_units);
    let usage = billed.and_then(|b| ApiUsage { tokens: Some(b), billed_units: None }.usage());
    Ok(Embeddings { model, vectors, usage })
}

/// The reply of `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub struct Models {
    models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
struct Model {
    name: String,
    #[serde(default)]
    endpoints: Vec<String>,
    context_length: Option<f64>,
    /// What the model can do beyond text, e.g. `tool_use`, `vision`, `reasoning`, `json_mode`.
    #[serde(default)]
    features: Vec<String>,
}

/// The models that chat or embed (Cohere also lists rerank and classify models), with their
/// capabilities from `features`. Cohere's list gives no output limit, so that stays unknown.
pub fn models(models: Models) -> Vec<ModelInfo> {
    models
        .models
        .into_iter()
        .filter_map(|m| {
            let serves = |endpoint: &str| m.endpoints.iter().any(|e| e == endpoint);
            let has = |feature: &str| m.features.iter().any(|f| f == feature);
            let (chat, embed) = (serves("chat"), serves("embed"));
            let info = ModelInfo {
                context_window: m.context_length.map(|n| n as u32),
                supports_vision: chat && has("vision"),
                supports_reasoning: chat && has("reasoning"),
                ..model_info(&m.name, embed, chat && has("tool_use"))
            };
            (chat || embed).then_some(info)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::StreamEvent;
    use serde_json::{Value, json};

    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    /// Text items join; `tokens` wins over `billed_units`; finish reasons map.
    #[test]
    fn complete_reply() {
        let reply = chat(
            parse(json!({
                "id": "c14c80c3", "finish_reason": "MAX_TOKENS",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]},
                "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2}, "tokens": {"input_tokens": 71, "output_tokens": 2}},
            })),
            "command-r".into(),
        )
        .unwrap();
        assert_eq!(reply.content, "Hello!");
        assert_eq!(reply.finish_reason, FinishReason::Length);
        assert_eq!(reply.usage, Some(Usage::new(71, 2)));
        assert_eq!(reply.model, "command-r");
        let billed: ApiUsage = parse(json!({"billed_units": {"input_tokens": 5.0, "output_tokens": 2}}));
        assert_eq!(billed.usage(), Some(Usage::new(5, 2)));
        assert!(
            matches!(finish_reason(Some("ERROR"), Some("boom".into())), Err(ProviderError::Unavailable(m)) if m.message.contains("boom"))
        );
        assert!(matches!(finish_reason(Some("TIMEOUT"), None), Err(ProviderError::Timeout(_))));
        assert_eq!(finish_reason(Some("TOOL_CALL"), None), Ok(FinishReason::ToolCalls));
    }

    /// Tool calls of a complete reply keep their JSON arguments as text.
    #[test]
    fn tool_calls() {
        let reply = chat(
            parse(json!({
                "finish_reason": "TOOL_CALL",
                "message": {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [
                    {"id": "weather_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
            })),
            "m".into(),
        )
        .unwrap();
        assert_eq!(reply.content, "");
        assert_eq!(
            reply.tool_calls,
            [ToolCall { id: "weather_1".into(), name: "weather".into(), arguments: "{\"city\":\"Oslo\"}".into() }]
        );
    }

    /// A stream with text and a tool call; unknown events are skipped; `message-end` ends it.
    #[test]
    fn streamed_reply() {
        let events = [
            json!({"id": "x", "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
            json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "lo"}}}}),
            json!({"type": "content-end", "index": 0}),
            json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {"id": "w1", "type": "function", "function": {"name": "weather", "arguments": ""}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}}}),
            json!({"type": "tool-call-end", "index": 0}),
            json!({"type": "something-new"}),
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 2}, "tokens": {"input_tokens": 69, "output_tokens": 2}}}}),
        ];
        let mut emitted = Vec::new();
        let mut emit = |e: &StreamEvent| emitted.push(e.clone());
        let mut out = Stream::new(&mut emit, "command-r");
        let flows: Vec<_> = events.into_iter().map(|e| out.event(parse(e)).unwrap()).collect();
        assert!(flows.last().unwrap().is_break() && flows[..flows.len() - 1].iter().all(|f| f.is_continue()));
        let reply = out.finish();
        assert_eq!((reply.content.as_str(), reply.finish_reason), ("Hello", FinishReason::Stop));
        assert_eq!(reply.usage, Some(Usage::new(69, 2)));
        assert_eq!(reply.tool_calls, [ToolCall { id: "w1".into(), name: "weather".into(), arguments: "{}".into() }]);
        assert_eq!(emitted[..2], [StreamEvent::Delta("Hel".into()), StreamEvent::Delta("lo".into())]);
    }

    /// A stream that ends in ERROR fails with Cohere's message.
    #[test]
    fn stream_error() {
        let mut emit = |_: &StreamEvent| {};
        let mut out = Stream::new(&mut emit, "m");
        let end =
            parse(json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal failure"}}));
        assert_eq!(out.event(end), Err(ProviderError::unavailable("Cohere reported an error: internal failure")));
    }

    /// Thinking items of a complete reply become reasoning blocks, never text.
    #[test]
    fn thinking_in_a_complete_reply() {
        let reply = chat(
            parse(json!({
                "id": "r1", "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "The user wants a prime."},
                    {"type": "text", "text": "7"},
                ]},
                "usage": {"tokens": {"input_tokens": 10, "output_tokens": 20}},
            })),
            "command-a-reasoning-08-2025".into(),
        )
        .unwrap();
        assert_eq!(reply.content, "7");
        assert_eq!(reply.reasoning, [thinking_block("The user wants a prime.".into())]);
    }

    /// Streamed thinking (`content-start` of type thinking, then `content-delta` with
    /// `content.thinking`) is emitted as reasoning and kept as a block; text stays text.
    #[test]
    fn streamed_thinking() {
        let events = [
            json!({"id": "x", "type": "message-start", "delta": {"message": {"role": "assistant"}}}),
            json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "Primes: "}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "2, 3, 5, 7."}}}}),
            json!({"type": "content-end", "index": 0}),
            json!({"type": "content-start", "index": 1, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            json!({"type": "content-delta", "index": 1, "delta": {"message": {"content": {"text": "7"}}}}),
            json!({"type": "content-end", "index": 1}),
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE"}}),
        ];
        let mut emitted = Vec::new();
        let mut emit = |e: &StreamEvent| emitted.push(e.clone());
        let mut out = Stream::new(&mut emit, "command-a-reasoning-08-2025");
        for e in events {
            let _ = out.event(parse(e)).unwrap();
        }
        let reply = out.finish();
        assert_eq!(reply.content, "7");
        assert_eq!(reply.reasoning, [thinking_block("Primes: 2, 3, 5, 7.".into())]);
        assert_eq!(
            emitted,
            [
                StreamEvent::Reasoning("Primes: ".into()),
                StreamEvent::Reasoning("2, 3, 5, 7.".into()),
                StreamEvent::Delta("7".into())
            ]
        );
    }

    /// "too many tokens" is a context-length error; other errors stay as mapped.
    #[test]
    fn refined_errors() {
        let too_long =
            ProviderError::BadRequest("HTTP 400: too many tokens: size limit exceeded by 1200 tokens".into());
        assert!(matches!(refine(too_long), ProviderError::ContextLengthExceeded(m) if m.contains("1200")));
        let other = ProviderError::BadRequest("HTTP 400: invalid request".into());
        assert_eq!(refine(other.clone()), other);
    }

    /// Embeddings come from `embeddings.float`, one per input, with billed input tokens.
    #[test]
    fn embed_reply() {
        let embed = || {
            parse::<Embed>(
                json!({"id": "e", "embeddings": {"float": [[0.5, -1.0]]}, "texts": ["a"], "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}}}),
            )
        };
        let result = embeddings(embed(), "embed-english-v3.0".into(), 1).unwrap();
        assert_eq!(result.vectors, [vec![0.5, -1.0]]);
        assert_eq!(result.usage, Some(Usage::new(1, 0)));
        assert!(matches!(embeddings(embed(), "m".into(), 2), Err(ProviderError::Other(_))));
    }

    /// Only chat and embed models are listed, with tools, vision and reasoning from `features`.
    #[test]
    fn model_list() {
        let list = models(parse(json!({"models": [
            {"name": "command-r-plus-08-2024", "endpoints": ["generate", "chat", "summarize"], "context_length": 128000},
            {"name": "embed-english-v3.0", "endpoints": ["embed"], "context_length": 512},
            {"name": "rerank-v3.5", "endpoints": ["rerank"]},
            {"name": "command-a-reasoning-08-2025", "endpoints": ["chat"], "context_length": 256000,
             "features": ["json_mode", "json_schema", "reasoning", "safety_modes", "strict_tools", "tool_use"]},
            {"name": "command-a-vision-07-2025", "endpoints": ["chat"], "context_length": 128000, "features": ["vision"]},
        ], "next_page_token": null})));
        let ids: Vec<_> = list.iter().map(|m| (m.id.as_str(), m.supports_embeddings, m.context_window)).collect();
        assert_eq!(
            ids,
            [
                ("command-r-plus-08-2024", false, Some(128000)),
                ("embed-english-v3.0", true, Some(512)),
                ("command-a-reasoning-08-2025", false, Some(256000)),
                ("command-a-vision-07-2025", false, Some(128000))
            ]
        );
        let caps: Vec<_> = list.iter().map(|m| (m.supports_tools, m.supports_vision, m.supports_reasoning)).collect();
        assert_eq!(caps, [(false, false, false), (false, false, false), (true, false, true), (false, true, false)]);
    }
}
