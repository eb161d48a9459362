//! The smallest provider plugin: it answers every chat with "Hello, <last user message>!" and
//! needs no network, key or configuration. Everything else (model list, streaming, embeddings)
//! takes the [`Provider`] trait's defaults.

use codexcontinue_sdk::{ChatRequest, ChatResponse, Provider, ProviderError, ProviderInfo, Role, export_provider};

/// The provider; the host creates a fresh instance for every call, so it holds no state.
struct Hello;

impl Provider for Hello {
    fn info() -> ProviderInfo {
        ProviderInfo { name: "Hello".into(), default_model: "hello".into(), embedding_model: None }
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        let last = request
            .messages
            .iter()
            .rfind(|m| m.role == Role::User)
            .ok_or_else(|| ProviderError::BadRequest("the request has no user message".into()))?;
        Ok(ChatResponse::text(request.model, format!("Hello, {}!", last.text())))
    }
}

export_provider!(Hello);
