//! GitHub Models: the OpenAI-style inference API at `https://models.github.ai/inference` (or an
//! organization's `.../orgs/{org}/inference`), authenticated with a GitHub token that has the
//! `models: read` permission. Chat and embeddings use OpenAI's wire format from
//! [`codexcontinue_sdk::openai`]; the model list comes from GitHub's own catalog.

use codexcontinue_sdk::openai::{self, Api, Auth, Compatible, Vendor};
use codexcontinue_sdk::{ModelInfo, ProviderError, export_provider};
use serde_json::Value;

/// The GitHub REST API version the inference and catalog endpoints are documented under.
const API_VERSION: &str = "2022-11-28";

/// GitHub Models.
struct GitHub;

impl Api for GitHub {
    const VENDOR: Vendor = Vendor {
        name: "GitHub Models",
        base_url: "https://models.github.ai/inference",
        default_model: "openai/gpt-4o-mini",
        embedding_model: Some("openai/text-embedding-3-small"),
        auth: Auth::Bearer("GITHUB_TOKEN"),
        stream_usage: true,
    };

    /// GitHub's REST conventions: its media type and a pinned API version.
    fn extra_headers() -> Vec<(String, String)> {
        vec![
            ("accept".to_owned(), "application/vnd.github+json".to_owned()),
            ("x-github-api-version".to_owned(), API_VERSION.to_owned()),
        ]
    }

    fn models() -> Result<Vec<ModelInfo>, ProviderError> {
        parse_catalog(&openai::get::<Self>(&catalog_url(&Self::base_url()))?.bytes()?)
    }
}

/// The catalog sits at the root of the inference host, beside `/inference` and `/orgs/...`.
fn catalog_url(base_url: &str) -> String {
    let after_scheme = base_url.find("://").map_or(0, |i| i + 3);
    let origin_end = base_url[after_scheme..].find('/').map_or(base_url.len(), |i| after_scheme + i);
    format!("{}/catalog/models", &base_url[..origin_end])
}

/// Parses `GET /catalog/models`: an array of `{id, capabilities, limits: {max_input_tokens,
/// max_output_tokens}, supported_input_modalities, supported_output_modalities, tags, ...}`.
/// Vision is an `image` input modality; reasoning a `reasoning` capability or tag (o-series,
/// DeepSeek-R1, Phi-4-reasoning).
fn parse_catalog(body: &[u8]) -> Result<Vec<ModelInfo>, ProviderError> {
    let catalog: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Other(format!("the GitHub Models catalog is not a list we can read: {e}")))?;
    let has = |entry: &Value, field: &str, word: &str| {
        entry.get(field).and_then(Value::as_array).is_some_and(|list| list.iter().any(|v| v.as_str() == Some(word)))
    };
    let limit = |entry: &Value, field: &str| {
        entry.pointer(&format!("/limits/{field}")).and_then(Value::as_u64).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Ok(catalog
        .iter()
        .filter_map(|entry| {
            Some(ModelInfo {
                id: entry.get("id")?.as_str()?.to_owned(),
                context_window: limit(entry, "max_input_tokens"),
                max_output_tokens: limit(entry, "max_output_tokens"),
                supports_embeddings: has(entry, "supported_output_modalities", "embeddings"),
                supports_tools: has(entry, "capabilities", "tool-calling"),
                supports_vision: has(entry, "supported_input_modalities", "image"),
                supports_reasoning: has(entry, "capabilities", "reasoning") || has(entry, "tags", "reasoning"),
            })
        })
        .collect())
}

export_provider!(Compatible<GitHub>);

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog URL drops the inference path, for the public and organization endpoints.
    #[test]
    fn catalog_urls() {
        assert_eq!(catalog_url("https://models.github.ai/inference"), "https://models.github.ai/catalog/models");
        assert_eq!(
            catalog_url("https://models.github.ai/orgs/acme/inference"),
            "https://models.github.ai/catalog/models"
        );
        assert_eq!(catalog_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000/catalog/models");
    }

    /// Catalog entries map their limits and capabilities; entries without an id are skipped.
    #[test]
    fn catalog_entries() {
        let body = serde_json::json!([
            {"id": "openai/gpt-4o-mini", "name": "OpenAI GPT-4o mini", "publisher": "OpenAI", "registry": "azure-openai",
             "rate_limit_tier": "low", "capabilities": ["streaming", "tool-calling"],
             "limits": {"max_input_tokens": 131072, "max_output_tokens": 4096},
             "supported_input_modalities": ["text", "image"], "supported_output_modalities": ["text"],
             "tags": ["multipurpose"], "version": "2024-07-18"},
            {"id": "openai/text-embedding-3-small", "capabilities": [], "limits": {"max_input_tokens": 8191},
             "supported_output_modalities": ["embeddings"]},
            {"id": "openai/o4-mini", "capabilities": ["streaming", "tool-calling"], "tags": ["reasoning", "coding"],
             "limits": {"max_input_tokens": 200000, "max_output_tokens": 100000},
             "supported_input_modalities": ["text", "image"], "supported_output_modalities": ["text"]},
            {"name": "no id"},
        ]);
        let models = parse_catalog(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            models,
            [
                ModelInfo {
                    id: "openai/gpt-4o-mini".into(),
                    context_window: Some(131072),
                    max_output_tokens: Some(4096),
                    supports_embeddings: false,
                    supports_tools: true,
                    supports_vision: true,
                    supports_reasoning: false,
                },
                ModelInfo {
                    id: "openai/text-embedding-3-small".into(),
                    context_window: Some(8191),
                    max_output_tokens: None,
                    supports_embeddings: true,
                    supports_tools: false,
                    supports_vision: false,
                    supports_reasoning: false,
                },
                ModelInfo {
                    id: "openai/o4-mini".into(),
                    context_window: Some(200_000),
                    max_output_tokens: Some(100_000),
                    supports_embeddings: false,
                    supports_tools: true,
                    supports_vision: true,
                    supports_reasoning: true,
                },
            ]
        );
        assert!(parse_catalog(b"{\"data\": []}").is_err());
    }
}
