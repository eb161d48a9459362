//! A provider built against the frozen `wit/v0.1.0` with `wit-bindgen` alone, as a third party
//! might have written it before 0.2.0. Host tests load it to prove the v0.1 adapter works: it
//! answers `v0.1 heard: <last user message>`, streams that reply one word per event, reports
//! usage, and fails in the 0.1.0 shapes the host must convert (`unavailable(string)`).

wit_bindgen::generate!({
    world: "provider-plugin",
    path: "../../../wit/v0.1.0",
});

use codexcontinue::plugin::streaming::Sink;
use codexcontinue::plugin::types::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, FinishReason, ModelInfo, ProviderError, ProviderInfo, Role,
    StreamEvent, Usage,
};
use exports::codexcontinue::plugin::provider::Guest;

struct V01Provider;

/// The reply to `request`: the last user message, echoed.
fn reply(request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
    if request.model == "unavailable" {
        return Err(ProviderError::Unavailable("v0.1 plugin is down".into()));
    }
    let heard = request.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.as_str());
    let content = format!("v0.1 heard: {}", heard.unwrap_or(""));
    let prompt_tokens = request.messages.iter().map(|m| m.content.split_whitespace().count() as u32).sum();
    let completion_tokens = content.split_whitespace().count() as u32;
    Ok(ChatResponse {
        content,
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
        usage: Some(Usage { prompt_tokens, completion_tokens }),
        model: request.model.clone(),
    })
}

impl Guest for V01Provider {
    fn info() -> ProviderInfo {
        ProviderInfo { name: "v0.1 fixture".into(), default_model: "v01".into(), embedding_model: None }
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![ModelInfo {
            id: "v01".into(),
            context_window: Some(8192),
            max_output_tokens: Some(1024),
            supports_embeddings: false,
            supports_tools: false,
        }])
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        reply(&request)
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        let response = reply(&request)?;
        for (i, word) in response.content.split(' ').enumerate() {
            out.emit(&StreamEvent::Delta(if i == 0 { word.to_string() } else { format!(" {word}") }));
        }
        if let Some(usage) = response.usage {
            out.emit(&StreamEvent::Usage(usage));
        }
        Ok(response)
    }

    fn embed(_request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        Err(ProviderError::Unsupported("the v0.1 fixture has no embeddings".into()))
    }
}

export!(V01Provider);
