//! Constructors for the generated WIT records, so plugins and their tests need not spell out
//! every optional field.

use crate::{
    ChatRequest, ChatResponse, ContentPart, EmbedRequest, FinishReason, Message, ModelInfo, ProviderError, RateLimit,
    Role, Usage,
};

impl Message {
    /// A plain text message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentPart::Text(content.into())],
            reasoning: Vec::new(),
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The text parts joined in order; image parts are skipped.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text(text) => Some(text.as_str()),
                ContentPart::Image(_) => None,
            })
            .collect()
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
}

impl ChatRequest {
    /// A request for `model` with `messages` and no other options.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            extra_json: None,
        }
    }
}

impl ChatResponse {
    /// A text reply from `model` that stopped naturally, without usage.
    pub fn text(model: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            reasoning: Vec::new(),
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            usage: None,
            model: model.into(),
        }
    }
}

impl Usage {
    /// Prompt and completion counts with no cache or reasoning detail.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self { prompt_tokens, completion_tokens, cached_read_tokens: 0, cached_write_tokens: 0, reasoning_tokens: 0 }
    }
}

impl ProviderError {
    /// `unavailable` with no retry-after: the host's own backoff applies.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ProviderError::Unavailable(RateLimit { retry_after_ms: None, message: message.into() })
    }
}

impl EmbedRequest {
    /// A request to embed `inputs` with `model` (`None`: the provider's embedding model).
    pub fn new(model: Option<String>, inputs: Vec<String>) -> Self {
        Self { model, inputs, input_type: None, dimensions: None }
    }
}

impl ModelInfo {
    /// A model with only its id known: no limits, no capabilities.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            context_window: None,
            max_output_tokens: None,
            supports_embeddings: false,
            supports_tools: false,
            supports_vision: false,
            supports_reasoning: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constructors leave every optional field empty.
    #[test]
    fn constructors() {
        let request = ChatRequest::new("m", vec![Message::system("s"), Message::user("u"), Message::assistant("a")]);
        assert_eq!(request.model, "m");
        assert_eq!(
            request.messages.iter().map(|m| m.role).collect::<Vec<_>>(),
            [Role::System, Role::User, Role::Assistant]
        );
        assert!(request.stop.is_empty() && request.max_tokens.is_none() && request.extra_json.is_none());
        let response = ChatResponse::text("m", "hi");
        assert_eq!((response.content.as_str(), response.finish_reason), ("hi", FinishReason::Stop));
    }
}
