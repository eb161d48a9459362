//! Cohere: Command models through the v2 Chat API (`POST {base}/v2/chat`, one JSON reply or
//! server-sent events) and embeddings through the v2 Embed API. The wire mapping lives in
//! [`request`] (our requests → Cohere bodies) and [`reply`] (Cohere replies and events → ours).

mod reply;
mod request;

use codexcontinue_sdk::http::{Request, Response};
use codexcontinue_sdk::vendor;
use codexcontinue_sdk::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, ModelInfo, Provider, ProviderError, ProviderInfo, Sink,
    config, export_provider, secret, sse,
};

/// The v2 Chat and Embed provider.
struct Cohere;

/// The embedding model when neither the request nor the manifest names one.
const EMBEDDING_MODEL: &str = "embed-english-v3.0";

/// The chat model when neither the request nor the manifest names one: Command A, Cohere's
/// current general model (`command-r-plus-08-2024` was the seed's, now superseded).
const CHAT_MODEL: &str = "command-a-03-2025";

/// Sends `request` with the key, and passes only a 2xx reply on; failures are mapped by status
/// and `Retry-After`, then refined by Cohere's wording (see [`reply::refine`]).
fn send(request: Request) -> Result<Response, ProviderError> {
    request
        .header("authorization", format!("Bearer {}", secret("CO_API_KEY")))
        .send()?
        .error_for_status()
        .map_err(reply::refine)
}

/// `path` under the configured base URL (`CO_API_URL` overrides it).
fn url(path: &str) -> String {
    format!("{}{path}", config::get_or("base_url", "https://api.cohere.com").trim_end_matches('/'))
}

/// Sends the Chat request for `request`, streamed or not.
fn chat(request: &ChatRequest, stream: bool) -> Result<Response, ProviderError> {
    send(Request::post(url("/v2/chat")).json(&request::chat(request, stream)?)?)
}

impl Provider for Cohere {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "Cohere".into(),
            default_model: config::get_or("default_model", CHAT_MODEL),
            embedding_model: Some(config::get_or("embedding_model", EMBEDDING_MODEL)),
        }
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(reply::models(send(Request::get(url("/v1/models?page_size=1000")))?.json()?))
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        reply::chat(chat(&request, false)?.json()?, request.model)
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        let response = chat(&request, true)?;
        let mut emit = |event: &_| out.emit(event);
        let mut stream = reply::Stream::new(&mut emit, &request.model);
        vendor::read_stream(sse::Parser::new(), response.chunks(), |event| {
            stream.event(vendor::parse_event(&event.data)?)
        })?;
        Ok(stream.finish())
    }

    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        let model = request.model.clone().unwrap_or_else(|| config::get_or("embedding_model", EMBEDDING_MODEL));
        let body = request::embed(&model, &request);
        reply::embeddings(send(Request::post(url("/v2/embed")).json(&body)?)?.json()?, model, request.inputs.len())
    }
}

export_provider!(Cohere);
