//! Ollama's replies as ours: a complete `/api/chat` reply, the lines of a streamed one (the
//! last has `done: true` and the counts), with `thinking` as reasoning and tool calls keeping
//! Ollama's ids (or given stable ones), embeddings and the model list.

use std::ops::ControlFlow;

use codexcontinue_sdk::vendor::{Collector, model_info};
use codexcontinue_sdk::{
    ChatResponse, Embeddings, FinishReason, ModelInfo, ProviderError, ReasoningBlock, StreamEvent, ToolCall, Usage,
};
use serde::Deserialize;
use serde_json::Value;

/// A reply of `/api/chat`, or one line of a streamed one.
#[derive(Debug, Deserialize)]
pub struct Chat {
    #[serde(default)]
    model: String,
    message: Option<ChatMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    /// Set instead of everything else when the model fails mid-stream.
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: String,
    /// What a thinking model (`think` on, or on by default) thought, apart from `content`.
    #[serde(default)]
    thinking: String,
    #[serde(default)]
    tool_calls: Vec<ApiToolCall>,
}

#[derive(Debug, Deserialize)]
struct ApiToolCall {
    /// Recent Ollama versions name each call; older ones do not.
    id: Option<String>,
    function: Function,
}

#[derive(Debug, Deserialize)]
struct Function {
    name: String,
    #[serde(default)]
    arguments: Value,
}

impl Chat {
    /// Why the model stopped; Ollama says `stop` even when it called tools.
    fn finish_reason(&self, called_tools: bool) -> FinishReason {
        match self.done_reason.as_deref() {
            Some("stop") if called_tools => FinishReason::ToolCalls,
            Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            _ => FinishReason::Other,
        }
    }

    /// Both counts, or none: Ollama leaves out `prompt_eval_count` when the prompt came from its
    /// cache, and the host then counts tokens itself rather than report a prompt of 0.
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.prompt_eval_count?, self.eval_count?))
    }

    fn failed(&mut self) -> Option<ProviderError> {
        self.error.take().map(|e| ProviderError::unavailable(format!("Ollama reported an error: {e}")))
    }
}

/// A tool call with Ollama's id, or, from versions that give none, `call_<position>`, which is
/// unique within the reply and the same every time the reply is read.
fn tool_call(position: usize, call: ApiToolCall) -> ToolCall {
    ToolCall {
        id: call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{position}")),
        name: call.function.name,
        arguments: call.function.arguments.to_string(),
    }
}

/// A complete reply as ours.
pub fn chat(mut chat: Chat) -> Result<ChatResponse, ProviderError> {
    if let Some(error) = chat.failed() {
        return Err(error);
    }
    let message = chat.message.take().unwrap_or_default();
    let tool_calls: Vec<_> = message.tool_calls.into_iter().enumerate().map(|(i, c)| tool_call(i, c)).collect();
    Ok(ChatResponse {
        finish_reason: chat.finish_reason(!tool_calls.is_empty()),
        usage: chat.usage(),
        content: message.content,
        reasoning: reasoning(message.thinking),
        tool_calls,
        model: chat.model,
    })
}

/// Ollama's thinking as one reasoning block (Ollama neither signs nor encrypts it), or none.
fn reasoning(thinking: String) -> Vec<ReasoningBlock> {
    match thinking.is_empty() {
        true => Vec::new(),
        false => vec![ReasoningBlock { text: thinking, signature: None, encrypted_content: None, id: None }],
    }
}

/// A streamed reply being read: text and tool calls go to the [`Collector`], which emits
/// thinking as reasoning events; the thinking text is kept here for the reply's block.
pub struct Stream<'a> {
    out: Collector<'a>,
    thinking: String,
}

impl<'a> Stream<'a> {
    /// A stream emitting to `emit`, for a reply from `model` unless Ollama names another.
    pub fn new(emit: &'a mut dyn FnMut(&StreamEvent), model: &str) -> Self {
        Self { out: Collector::new(emit, model), thinking: String::new() }
    }

    /// Applies one streamed line; breaks at the line with `done: true`.
    pub fn line(&mut self, mut line: Chat) -> Result<ControlFlow<()>, ProviderError> {
        if let Some(error) = line.failed() {
            return Err(error);
        }
        let message = line.message.take().unwrap_or_default();
        self.out.reasoning(&message.thinking);
        self.thinking.push_str(&message.thinking);
        self.out.text(&message.content);
        for call in message.tool_calls {
            // Ollama sends each call whole, so each gets the next position.
            let position = self.out.tool_calls().len();
            let call = tool_call(position, call);
            self.out.tool_call(position as u32, Some(call.id), Some(call.name), &call.arguments);
        }
        if !line.model.is_empty() {
            self.out.model(line.model.as_str());
        }
        if !line.done {
            return Ok(ControlFlow::Continue(()));
        }
        self.out.finish_reason(line.finish_reason(!self.out.tool_calls().is_empty()));
        if let Some(usage) = line.usage() {
            self.out.usage(Some(usage.prompt_tokens), Some(usage.completion_tokens));
        }
        Ok(ControlFlow::Break(()))
    }

    /// The complete reply, with the thinking as its reasoning block.
    pub fn finish(self) -> ChatResponse {
        ChatResponse { reasoning: reasoning(self.thinking), ..self.out.finish() }
    }
}

/// A reply of `/api/embed`.
#[derive(Debug, Deserialize)]
pub struct Embed {
    model: String,
    embeddings: Vec<Vec<f32>>,
    prompt_eval_count: Option<u32>,
}

/// The vectors, checked to be one per input.
pub fn embeddings(embed: Embed, inputs: usize) -> Result<Embeddings, ProviderError> {
    if embed.embeddings.len() != inputs {
        let got = embed.embeddings.len();
        return Err(ProviderError::Other(format!("Ollama returned {got} embeddings for {inputs} inputs")));
    }
    let usage = embed.prompt_eval_count.map(|prompt_tokens| Usage::new(prompt_tokens, 0));
    Ok(Embeddings { model: embed.model, vectors: embed.embeddings, usage })
}

/// The reply of `GET /api/tags`: the models pulled on this server.
#[derive(Debug, Deserialize)]
pub struct Tags {
    models: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
}

/// The pulled models; the configured embedding model (with any tag) is the one that embeds.
pub fn models(tags: Tags, embedding_model: &str) -> Vec<ModelInfo> {
    let embeds = |name: &str| {
        name == embedding_model || name.strip_prefix(embedding_model).is_some_and(|tag| tag.starts_with(':'))
    };
    tags.models
        .into_iter()
        .map(|tag| {
            let embeds = embeds(&tag.name);
            model_info(tag.name, embeds, false)
        })
        .collect()
}

/// The reply of `POST /api/show` for one model: what it can do, and its architecture's facts.
#[derive(Debug, Default, Deserialize)]
pub struct Show {
    /// e.g. `completion`, `tools`, `vision`, `thinking`, `embedding`, `insert`.
    #[serde(default)]
    capabilities: Vec<String>,
    /// Keys are prefixed by the architecture: `llama.context_length`, `qwen3.context_length`…
    #[serde(default)]
    model_info: serde_json::Map<String, Value>,
}

/// `model` with what `/api/show` says of it: the context window (`*.context_length`) and its
/// capabilities. Ollama reports no output limit (a reply may fill the window), so that stays
/// unknown.
pub fn with_details(model: ModelInfo, show: Show) -> ModelInfo {
    let has = |capability: &str| show.capabilities.iter().any(|c| c == capability);
    let context_window = show
        .model_info
        .iter()
        .find(|(key, _)| key.ends_with(".context_length"))
        .and_then(|(_, value)| value.as_u64())
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    ModelInfo {
        context_window: context_window.or(model.context_window),
        supports_embeddings: model.supports_embeddings || has("embedding"),
        supports_tools: has("tools"),
        supports_vision: has("vision"),
        supports_reasoning: has("thinking"),
        ..model
    }
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::StreamEvent;
    use serde_json::json;

    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    /// A complete reply: content, counts, done_reason and the model that answered.
    #[test]
    fn complete_reply() {
        let reply = chat(parse(json!({
            "model": "llama3.2", "created_at": "2024-12-12T14:13:43.416799Z",
            "message": {"role": "assistant", "content": "Hello!"},
            "done": true, "done_reason": "length", "total_duration": 5191566416_u64,
            "prompt_eval_count": 26, "eval_count": 298,
        })))
        .unwrap();
        assert_eq!((reply.content.as_str(), reply.finish_reason), ("Hello!", FinishReason::Length));
        assert_eq!(reply.usage, Some(Usage::new(26, 298)));
        assert_eq!(reply.model, "llama3.2");
        let cached =
            chat(parse(json!({"model": "m", "message": {"content": "x"}, "done": true, "eval_count": 1}))).unwrap();
        assert_eq!(cached.usage, None);
    }

    /// Tool calls get ids and their arguments as JSON text; `stop` then means tool calls.
    #[test]
    fn tool_calls() {
        let reply = chat(parse(json!({
            "model": "llama3.2", "done": true, "done_reason": "stop",
            "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]},
        })))
        .unwrap();
        assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            reply.tool_calls,
            [ToolCall { id: "call_0".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }]
        );
    }

    /// Streamed lines emit their text; the `done` line ends the stream with the counts.
    #[test]
    fn streamed_reply() {
        let lines = [
            json!({"model": "llama3.2", "created_at": "t", "message": {"role": "assistant", "content": "The"}, "done": false}),
            json!({"model": "llama3.2", "created_at": "t", "message": {"role": "assistant", "content": " sky"}, "done": false}),
            json!({"model": "llama3.2", "created_at": "t", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 2}),
        ];
        let mut emitted = Vec::new();
        let mut emit = |e: &StreamEvent| emitted.push(e.clone());
        let mut out = Stream::new(&mut emit, "requested");
        let flows: Vec<_> = lines.into_iter().map(|l| out.line(parse(l)).unwrap()).collect();
        assert!(flows[0].is_continue() && flows[1].is_continue() && flows[2].is_break());
        let reply = out.finish();
        assert_eq!((reply.content.as_str(), reply.finish_reason), ("The sky", FinishReason::Stop));
        assert_eq!((reply.model.as_str(), reply.usage), ("llama3.2", Some(Usage::new(26, 2))));
        assert_eq!(emitted, [StreamEvent::Delta("The".into()), StreamEvent::Delta(" sky".into())]);
    }

    /// Ollama's tool-call ids are kept; calls without one get `call_<position>`.
    #[test]
    fn tool_call_ids() {
        let reply = chat(parse(json!({
            "model": "qwen3", "done": true, "done_reason": "stop",
            "message": {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_k2x9", "function": {"index": 0, "name": "weather", "arguments": {"city": "Oslo"}}},
                {"function": {"index": 1, "name": "time", "arguments": {}}},
            ]},
        })))
        .unwrap();
        let ids: Vec<_> = reply.tool_calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["call_k2x9", "call_1"]);
    }

    /// `message.thinking` is reasoning, in a complete reply and streamed, never reply text.
    #[test]
    fn thinking() {
        let reply = chat(parse(json!({
            "model": "qwen3", "done": true, "done_reason": "stop",
            "message": {"role": "assistant", "thinking": "Seven is prime.", "content": "7"},
        })))
        .unwrap();
        assert_eq!(reply.content, "7");
        assert_eq!(reply.reasoning.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["Seven is prime."]);

        let lines = [
            json!({"model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": "Seven "}, "done": false}),
            json!({"model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": "is prime."}, "done": false}),
            json!({"model": "qwen3", "message": {"role": "assistant", "content": "7"}, "done": false}),
            json!({"model": "qwen3", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 9}),
        ];
        let mut emitted = Vec::new();
        let mut emit = |e: &StreamEvent| emitted.push(e.clone());
        let mut out = Stream::new(&mut emit, "qwen3");
        for l in lines {
            let _ = out.line(parse(l)).unwrap();
        }
        let reply = out.finish();
        assert_eq!(reply.content, "7");
        assert_eq!(reply.reasoning.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["Seven is prime."]);
        assert_eq!(
            emitted,
            [
                StreamEvent::Reasoning("Seven ".into()),
                StreamEvent::Reasoning("is prime.".into()),
                StreamEvent::Delta("7".into())
            ]
        );
    }

    /// `/api/show` adds the context window and the tools, vision, thinking and embedding
    /// capabilities; an empty answer changes nothing.
    #[test]
    fn model_details() {
        let show = parse(json!({
            "modified_at": "2026-10-01T10:00:00Z", "template": "…", "parameters": "…",
            "details": {"family": "gemma3", "parameter_size": "4.3B", "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "gemma3", "gemma3.context_length": 131072, "gemma3.embedding_length": 2560},
            "capabilities": ["completion", "vision", "tools", "thinking"],
        }));
        let model = with_details(ModelInfo::new("gemma3:4b"), show);
        assert_eq!(model.context_window, Some(131_072));
        assert_eq!((model.supports_tools, model.supports_vision, model.supports_reasoning), (true, true, true));
        assert!(!model.supports_embeddings && model.max_output_tokens.is_none());
        let embed = with_details(ModelInfo::new("nomic-embed-text"), parse(json!({"capabilities": ["embedding"]})));
        assert!(embed.supports_embeddings && !embed.supports_tools);
        let plain = with_details(model_info("m", true, false), Show::default());
        assert_eq!(plain, model_info("m", true, false));
    }

    /// An `error` line fails the stream.
    #[test]
    fn error_line() {
        let mut emit = |_: &StreamEvent| {};
        let mut out = Stream::new(&mut emit, "m");
        let result = out.line(parse(json!({"error": "an error was encountered while running the model"})));
        assert!(matches!(result, Err(ProviderError::Unavailable(m)) if m.message.contains("running the model")));
    }

    /// Embeddings one per input; the embedding model is recognised with or without a tag.
    #[test]
    fn embeddings_and_models() {
        let embed =
            || parse::<Embed>(json!({"model": "nomic-embed-text", "embeddings": [[0.1, 0.2]], "prompt_eval_count": 3}));
        let result = embeddings(embed(), 1).unwrap();
        assert_eq!((result.model.as_str(), result.usage.unwrap().prompt_tokens), ("nomic-embed-text", 3));
        assert!(matches!(embeddings(embed(), 2), Err(ProviderError::Other(_))));
        let list = models(
            parse(json!({"models": [{"name": "llama3.2:latest"}, {"name": "nomic-embed-text:latest"}]})),
            "nomic-embed-text",
        );
        assert_eq!(list.iter().map(|m| m.supports_embeddings).collect::<Vec<_>>(), [false, true]);
    }
}
