//! Cohere's v2 replies as ours: a complete Chat reply, the server-sent events of a streamed one
//! (`message-start` … `message-end`; unknown types are skipped), embeddings and the model list.

use std::ops::ControlFlow;

use codexcontinue_sdk::vendor::{Collector, model_info};
use codexcontinue_sdk::{ChatResponse, Embeddings, FinishReason, ModelInfo, ProviderError, ToolCall, Usage};
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

#[derive(Debug, Deserialize)]
struct ContentItem {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
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
    let content = chat.message.content.iter().filter(|c| c.kind == "text").map(|c| c.text.as_str()).collect();
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
        reasoning: Vec::new(),
        tool_calls,
        finish_reason: finish_reason(chat.finish_reason.as_deref(), None)?,
        usage: chat.usage.and_then(|u| u.usage()),
        model,
    })
}

/// One server-sent event of a streamed reply, by its `type`; the payload sits in `delta.message`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    ContentDelta {
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
    /// `message-start`, `content-start`/`-end`, `tool-plan-delta`, citations, debug and any
    /// type added later carry nothing we return.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct Delta<T> {
    message: T,
}

#[derive(Debug, Deserialize)]
pub struct ContentDelta {
    content: Text,
}

#[derive(Debug, Deserialize)]
pub struct Text {
    text: String,
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

/// Applies one event; breaks at `message-end`.
pub fn event(out: &mut Collector<'_>, event: Event) -> Result<ControlFlow<()>, ProviderError> {
    match event {
        Event::ContentDelta { delta } => out.text(&delta.message.content.text),
        Event::ToolCallStart { index, delta } | Event::ToolCallDelta { index, delta } => {
            let call = delta.message.tool_calls;
            out.tool_call(index, call.id, call.function.name, &call.function.arguments);
        }
        Event::MessageEnd { delta } => {
            out.finish_reason(finish_reason(delta.finish_reason.as_deref(), delta.error)?);
            if let Some(usage) = delta.usage.and_then(|u| u.usage()) {
                out.usage(Some(usage.prompt_tokens), Some(usage.completion_tokens));
            }
            return Ok(ControlFlow::Break(()));
        }
        Event::Other => {}
    }
    Ok(ControlFlow::Continue(()))
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
}

/// The models that chat or embed (Cohere also lists rerank and classify models).
pub fn models(models: Models) -> Vec<ModelInfo> {
    models
        .models
        .into_iter()
        .filter_map(|m| {
            let serves = |endpoint: &str| m.endpoints.iter().any(|e| e == endpoint);
            let (chat, embed) = (serves("chat"), serves("embed"));
            let context_window = m.context_length.map(|n| n as u32);
            (chat || embed).then(|| ModelInfo { context_window, ..model_info(m.name, embed, chat) })
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
        let mut out = Collector::new(&mut emit, "command-r");
        let flows: Vec<_> = events.into_iter().map(|e| event(&mut out, parse(e)).unwrap()).collect();
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
        let mut out = Collector::new(&mut emit, "m");
        let end =
            parse(json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal failure"}}));
        assert_eq!(event(&mut out, end), Err(ProviderError::unavailable("Cohere reported an error: internal failure")));
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

    /// Only chat and embed models are listed.
    #[test]
    fn model_list() {
        let list = models(parse(json!({"models": [
            {"name": "command-r-plus-08-2024", "endpoints": ["generate", "chat", "summarize"], "context_length": 128000},
            {"name": "embed-english-v3.0", "endpoints": ["embed"], "context_length": 512},
            {"name": "rerank-v3.5", "endpoints": ["rerank"]},
        ], "next_page_token": null})));
        let ids: Vec<_> = list.iter().map(|m| (m.id.as_str(), m.supports_embeddings, m.context_window)).collect();
        assert_eq!(ids, [("command-r-plus-08-2024", false, Some(128000)), ("embed-english-v3.0", true, Some(512))]);
    }
}
