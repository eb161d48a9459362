//! Mistral AI: chat completions (plain and streamed), models and embeddings on
//! `https://api.mistral.ai/v1`, whose API follows OpenAI's wire format closely enough for
//! [`codexcontinue_sdk::openai`]. It refuses unknown body fields with 422, so streamed calls do
//! not send `stream_options` (Mistral reports usage in its last chunk unasked).

use codexcontinue_sdk::export_provider;
use codexcontinue_sdk::openai::{Api, Auth, Compatible, Vendor};

/// Mistral's API: OpenAI's layout with a stricter request schema.
struct Mistral;

impl Api for Mistral {
    const VENDOR: Vendor = Vendor {
        name: "Mistral AI",
        base_url: "https://api.mistral.ai/v1",
        default_model: "mistral-small-latest",
        embedding_model: Some("mistral-embed"),
        auth: Auth::Bearer("MISTRAL_API_KEY"),
        stream_usage: false,
    };
}

export_provider!(Compatible<Mistral>);
