//! Constructors for the generated WIT records, so plugins and their tests need not spell out
//! every optional field.

use crate::{ChatRequest, ChatResponse, FinishReason, Message, Role};

impl Message {
    /// A plain text message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), name: None, tool_calls: Vec::new(), tool_call_id: None }
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
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            usage: None,
            model: model.into(),
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
