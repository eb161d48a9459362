//! Echo, the offline demo provider: answers every chat deterministically with no network or key,
//! saying how many earlier messages it can see (so memory is visibly working), and offers real
//! hashed bag-of-words embeddings so recall works offline too.

mod embedding;
mod reply;

use codexcontinue_sdk::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, ModelInfo, Provider, ProviderError, ProviderInfo, Sink,
    export_provider,
};

/// The demo provider; all behaviour lives in [`reply`] and [`embedding`].
struct Echo;

impl Provider for Echo {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "Echo (offline demo)".into(),
            default_model: reply::MODEL.into(),
            embedding_model: Some(embedding::MODEL.into()),
        }
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![
            ModelInfo {
                id: reply::MODEL.into(),
                context_window: Some(reply::CONTEXT_WINDOW),
                max_output_tokens: None,
                supports_embeddings: false,
                supports_tools: false,
                supports_vision: false,
                supports_reasoning: false,
            },
            ModelInfo {
                id: embedding::MODEL.into(),
                context_window: None,
                max_output_tokens: None,
                supports_embeddings: true,
                supports_tools: false,
                supports_vision: false,
                supports_reasoning: false,
            },
        ])
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        reply::respond(&request)
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        let response = reply::respond(&request)?;
        for word in reply::words(&response.content) {
            out.delta(word);
        }
        Ok(response)
    }

    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        embedding::embed(&request)
    }
}

export_provider!(Echo);
