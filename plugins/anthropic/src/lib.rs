//! Anthropic: Claude through the Messages API (`POST {base}/v1/messages`), as one JSON reply or
//! a stream of server-sent events. The wire mapping lives in [`request`] (our request → the
//! Messages body) and [`reply`] (replies, stream events and in-stream errors → ours).

mod reply;
mod request;

use codexcontinue_sdk::http::Request;
use codexcontinue_sdk::vendor::{self, Collector};
use codexcontinue_sdk::{
    ChatRequest, ChatResponse, ModelInfo, Provider, ProviderError, ProviderInfo, Sink, config, export_provider, secret,
    sse,
};

/// The API version every request pins; Anthropic changes behaviour only behind new versions.
const API_VERSION: &str = "2023-06-01";

/// The Messages API provider.
struct Anthropic;

/// Adds the key and version headers every Anthropic call carries.
fn api(request: Request) -> Request {
    request.header("x-api-key", secret("ANTHROPIC_API_KEY")).header("anthropic-version", API_VERSION)
}

/// `path` under the configured base URL (`ANTHROPIC_BASE_URL` overrides it).
fn url(path: &str) -> String {
    format!("{}{path}", config::get_or("base_url", "https://api.anthropic.com").trim_end_matches('/'))
}

/// Sends the Messages request for `request`, streamed or not, and passes only a 2xx reply on;
/// a failure is sharpened by [`reply::refine`] (prompt too long, retired models).
fn send(request: &ChatRequest, stream: bool) -> Result<codexcontinue_sdk::http::Response, ProviderError> {
    let default_max_tokens = config::get("max_tokens").and_then(|v| v.parse().ok()).unwrap_or(request::MAX_TOKENS);
    let body = request::body(request, default_max_tokens, stream)?;
    api(Request::post(url("/v1/messages")))
        .json(&body)?
        .send()?
        .error_for_status()
        .map_err(|error| reply::refine(error, &request.model))
}

impl Provider for Anthropic {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "Anthropic".into(),
            default_model: config::get_or("default_model", "claude-haiku-4-5"),
            embedding_model: None,
        }
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let response = api(Request::get(url("/v1/models?limit=1000"))).send()?.error_for_status()?;
        Ok(reply::models(response.json()?))
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        Ok(reply::message(send(&request, false)?.json()?))
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        let response = send(&request, true)?;
        let mut emit = |event: &_| out.emit(event);
        let mut collector = Collector::new(&mut emit, request.model.as_str());
        let mut stream = reply::Stream::default();
        vendor::read_stream(sse::Parser::new(), response.chunks(), |event| {
            stream.event(&mut collector, vendor::parse_event(&event.data)?)
        })?;
        Ok(stream.finish(collector.finish()))
    }
}

export_provider!(Anthropic);
