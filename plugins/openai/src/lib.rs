//! OpenAI: chat completions (plain and streamed), `GET /models` and `POST /embeddings` on
//! `https://api.openai.com/v1`, or on any OpenAI-compatible server (vLLM, LM Studio, llama.cpp)
//! that `OPENAI_BASE_URL` names. The wire format lives in [`codexcontinue_sdk::openai`]; this
//! crate only describes the API.

use codexcontinue_sdk::export_provider;
use codexcontinue_sdk::openai::{Api, Auth, Compatible, Vendor, config_headers};

/// OpenAI's API, with the optional organization and project headers of its official clients.
struct OpenAi;

impl Api for OpenAi {
    const VENDOR: Vendor = Vendor {
        name: "OpenAI",
        base_url: "https://api.openai.com/v1",
        default_model: "gpt-4.1-mini",
        embedding_model: Some("text-embedding-3-small"),
        auth: Auth::Bearer("OPENAI_API_KEY"),
        stream_usage: true,
    };

    /// `OpenAI-Organization` and `OpenAI-Project` pick which of a key's organizations and
    /// projects a call is billed to; they are identifiers, not secrets.
    fn extra_headers() -> Vec<(String, String)> {
        config_headers(&[("OpenAI-Organization", "organization"), ("OpenAI-Project", "project")])
    }
}

export_provider!(Compatible<OpenAi>);
