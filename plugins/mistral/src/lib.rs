//! Mistral AI: chat completions (plain and streamed), models and embeddings on
//! `https://api.mistral.ai/v1`, whose API follows OpenAI's wire format closely enough for
//! [`codexcontinue_sdk::openai`]. It refuses unknown body fields with 422, so streamed calls do
//! not send `stream_options` (Mistral reports usage in its last chunk unasked) and `name` goes
//! on tool messages only. Magistral's thinking arrives as content lists, which the SDK splits
//! into reasoning and text; `reasoning_effort` and other options pass through `extra-json`.

use codexcontinue_sdk::openai::{Api, Auth, Compatible, Vendor, get, parse_models};
use codexcontinue_sdk::{ModelInfo, ProviderError, export_provider};
use serde_json::Value;

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
    const NAMES_ON_TOOL_MESSAGES_ONLY: bool = true;

    /// `GET /models` as for any OpenAI-style list (context window, `function_calling`), plus
    /// Mistral's `capabilities.vision`, and reasoning for the Magistral models, which Mistral's
    /// list does not flag otherwise. It reports no output limit.
    fn models() -> Result<Vec<ModelInfo>, ProviderError> {
        let body = get::<Self>(&format!("{}/models", Self::base_url()))?.bytes()?;
        with_capabilities(parse_models(&body)?, &body)
    }
}

/// `models` (parsed from `body`) with vision and reasoning set from Mistral's entries.
fn with_capabilities(models: Vec<ModelInfo>, body: &[u8]) -> Result<Vec<ModelInfo>, ProviderError> {
    let json: Value = serde_json::from_slice(body).map_err(|e| ProviderError::Other(format!("model list: {e}")))?;
    let entries = json.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let vision = |id: &str| {
        entries
            .iter()
            .any(|e| e["id"] == id && e.pointer("/capabilities/vision").and_then(Value::as_bool) == Some(true))
    };
    Ok(models
        .into_iter()
        .map(|m| ModelInfo { supports_vision: vision(&m.id), supports_reasoning: m.id.starts_with("magistral"), ..m })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Vision comes from `capabilities.vision`, reasoning from the Magistral name, tools and
    /// context windows as for any OpenAI-style list.
    #[test]
    fn model_capabilities() {
        let body = json!({"object": "list", "data": [
            {"id": "mistral-small-latest", "capabilities": {"completion_chat": true, "function_calling": true, "vision": true}, "max_context_length": 131072},
            {"id": "magistral-medium-latest", "capabilities": {"completion_chat": true, "function_calling": true, "vision": false}, "max_context_length": 40960},
            {"id": "mistral-embed", "capabilities": {"completion_chat": false, "function_calling": false}, "max_context_length": 8192},
        ]})
        .to_string();
        let models = with_capabilities(parse_models(body.as_bytes()).unwrap(), body.as_bytes()).unwrap();
        let caps: Vec<_> = models
            .iter()
            .map(|m| (m.id.as_str(), m.context_window, m.supports_tools, m.supports_vision, m.supports_reasoning))
            .collect();
        assert_eq!(
            caps,
            [
                ("mistral-small-latest", Some(131_072), true, true, false),
                ("magistral-medium-latest", Some(40_960), true, false, true),
                ("mistral-embed", Some(8192), false, false, false)
            ]
        );
    }
}

export_provider!(Compatible<Mistral>);
