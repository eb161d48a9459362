//! Ollama: local models through `POST {base}/api/chat` (one JSON reply, or newline-delimited
//! JSON when streamed), `POST /api/embed` and `GET /api/tags`; no key. The base comes from
//! `OLLAMA_HOST` in any form Ollama accepts ([`host`]); the wire mapping is in [`request`]
//! and [`reply`].

mod host;
mod reply;
mod request;

use codexcontinue_sdk::http::{Request, Response};
use codexcontinue_sdk::vendor;
use codexcontinue_sdk::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, ModelInfo, Provider, ProviderError, ProviderInfo, Sink,
    config, export_provider, ndjson,
};

/// The Ollama provider.
struct Ollama;

/// The embedding model when neither the request nor the manifest names one.
const EMBEDDING_MODEL: &str = "nomic-embed-text";

fn embedding_model() -> String {
    config::get_or("embedding_model", EMBEDDING_MODEL)
}

/// The largest `num_ctx` to ask for: the manifest's `max_num_ctx`, else [`request::MAX_NUM_CTX`].
fn max_num_ctx() -> u32 {
    config::get("max_num_ctx").and_then(|v| v.trim().parse().ok()).unwrap_or(request::MAX_NUM_CTX)
}

/// Sends `request` to `path` under the Ollama base URL and passes only a 2xx reply on.
fn send(
    request: fn(String) -> Request,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<Response, ProviderError> {
    let base = host::base_url(config::get("base_url").as_deref().unwrap_or_default());
    let mut request = request(format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body)?;
    }
    request.send()?.error_for_status()
}

impl Provider for Ollama {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "Ollama".into(),
            default_model: config::get_or("default_model", "llama3.2"),
            embedding_model: Some(embedding_model()),
        }
    }

    /// The pulled models (`/api/tags`), each with its details from `/api/show`; a model whose
    /// details cannot be read is still listed, with what the tags say.
    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let models = reply::models(send(Request::get, "/api/tags", None)?.json()?, &embedding_model());
        Ok(models
            .into_iter()
            .map(|model| {
                let body = serde_json::json!({ "model": model.id });
                match send(Request::post, "/api/show", Some(body)).and_then(|r| r.json()) {
                    Ok(show) => reply::with_details(model, show),
                    Err(_) => model,
                }
            })
            .collect())
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = request::chat(&request, false, max_num_ctx())?;
        reply::chat(send(Request::post, "/api/chat", Some(body))?.json()?)
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        let response = send(Request::post, "/api/chat", Some(request::chat(&request, true, max_num_ctx())?))?;
        let mut emit = |event: &_| out.emit(event);
        let mut stream = reply::Stream::new(&mut emit, &request.model);
        vendor::read_stream(ndjson::Splitter::new(), response.chunks(), |line| {
            stream.line(vendor::parse_event(&line)?)
        })?;
        Ok(stream.finish())
    }

    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        let model = request.model.unwrap_or_else(embedding_model);
        let body = serde_json::json!({ "model": model, "input": request.inputs });
        reply::embeddings(send(Request::post, "/api/embed", Some(body))?.json()?, request.inputs.len())
    }
}

export_provider!(Ollama);
