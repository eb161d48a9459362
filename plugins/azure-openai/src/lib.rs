//! Azure OpenAI: chat completions (plain and streamed) and embeddings on a resource's endpoint,
//! by default on the version-less v1 API (`/openai/v1/...`, the deployment named as `model` in
//! the body), or per deployment with a dated `api-version` (`/openai/deployments/{deployment}/
//! ...?api-version=...`) when `OPENAI_API_VERSION` names one. The wire format is OpenAI's, from
//! [`codexcontinue_sdk::openai`]; the key travels in Azure's `api-key` header.

use codexcontinue_sdk::openai::{Api, Auth, Compatible, Target, Vendor};
use codexcontinue_sdk::{ModelInfo, Provider, ProviderError, config, export_provider};

/// The `api-version` value that selects the v1 API, which is also the default: Azure's current
/// GA surface, which needs no dated version and takes new models (gpt-5, o-series) as soon as
/// they are deployed. A dated `OPENAI_API_VERSION` (e.g. `2024-10-21`) keeps the older
/// per-deployment URLs.
const V1: &str = "v1";

/// An Azure OpenAI resource.
struct Azure;

impl Api for Azure {
    const VENDOR: Vendor = Vendor {
        name: "Azure OpenAI",
        // Unused: every URL is built from the `endpoint` config below.
        base_url: "",
        default_model: "gpt-4.1-mini",
        embedding_model: Some("text-embedding-3-small"),
        auth: Auth::Header("api-key", "AZURE_OPENAI_API_KEY"),
        stream_usage: true,
    };

    fn chat_target(model: &str) -> Result<Target, ProviderError> {
        Ok(target(&endpoint()?, &api_version(), model, "chat/completions"))
    }

    fn embeddings_target(model: &str) -> Result<Target, ProviderError> {
        Ok(target(&endpoint()?, &api_version(), model, "embeddings"))
    }

    /// The configured deployments: Azure's data-plane API cannot list deployments (that takes
    /// the management API and an Entra ID token), and its model list names base models, which
    /// a call cannot use unless a deployment happens to share the name.
    fn models() -> Result<Vec<ModelInfo>, ProviderError> {
        let info = Compatible::<Azure>::info();
        let deployment = |id: String, embeddings: bool| ModelInfo {
            id,
            context_window: None,
            max_output_tokens: None,
            supports_embeddings: embeddings,
            supports_tools: !embeddings,
            supports_vision: false,
            supports_reasoning: false,
        };
        Ok(std::iter::once(deployment(info.default_model, false))
            .chain(info.embedding_model.map(|id| deployment(id, true)))
            .collect())
    }
}

/// The resource's endpoint, e.g. `https://myres.openai.azure.com`.
fn endpoint() -> Result<String, ProviderError> {
    config::get("endpoint").filter(|e| !e.trim().is_empty()).ok_or_else(|| {
        ProviderError::Other(
            "set AZURE_OPENAI_ENDPOINT to the resource's endpoint, e.g. https://myres.openai.azure.com".into(),
        )
    })
}

fn api_version() -> String {
    config::get("api_version").filter(|v| !v.trim().is_empty()).unwrap_or_else(|| V1.to_owned())
}

/// Where `operation` (`chat/completions`, `embeddings`) for `deployment` goes.
fn target(endpoint: &str, api_version: &str, deployment: &str, operation: &str) -> Target {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if api_version.trim() == V1 {
        return Target::new(format!("{endpoint}/openai/v1/{operation}"));
    }
    Target {
        url: format!(
            "{endpoint}/openai/deployments/{}/{operation}?api-version={}",
            encode(deployment),
            encode(api_version.trim())
        ),
        model_in_body: false,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a deployment name or
/// version can neither leave its path segment nor add query parameters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

export_provider!(Compatible<Azure>);

#[cfg(test)]
mod tests {
    use super::*;

    /// Dated versions address the deployment in the path and leave the model out of the body.
    #[test]
    fn deployment_urls() {
        let chat = target("https://myres.openai.azure.com/", "2024-10-21", "gpt-4o", "chat/completions");
        assert_eq!(
            chat,
            Target {
                url: "https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
                    .into(),
                model_in_body: false,
            }
        );
        let embed = target("https://myres.openai.azure.com", "2024-10-21", "emb", "embeddings");
        assert_eq!(
            embed.url,
            "https://myres.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
    }

    /// The v1 API has one path for every model, named in the body, and no api-version.
    #[test]
    fn v1_urls() {
        let chat = target("https://myres.openai.azure.com", "v1", "gpt-4o", "chat/completions");
        assert_eq!(chat, Target::new("https://myres.openai.azure.com/openai/v1/chat/completions"));
    }

    /// Odd deployment names stay inside their path segment.
    #[test]
    fn names_are_encoded() {
        let url = target("https://r.openai.azure.com", "2024-10-21&x=1", "a/b c?", "chat/completions").url;
        assert_eq!(
            url,
            "https://r.openai.azure.com/openai/deployments/a%2Fb%20c%3F/chat/completions?api-version=2024-10-21%26x%3D1"
        );
    }
}
