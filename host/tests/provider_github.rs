//! The `github` plugin against a mock speaking GitHub Models' inference API: the shared
//! OpenAI-family suite with GitHub's headers and Azure-style replies (an unknown model is 400
//! `unknown_model`), the organization endpoint, and the model catalog.

mod common;

use common::mock::{MockServer, Reply};
use common::openai_wire::{self, Dialect, Failure, Style};
use common::vendor::Vendor;
use serde_json::json;

const GITHUB: Dialect = Dialect {
    vendor: Vendor {
        id: "github",
        env: |url| {
            vec![
                ("GITHUB_TOKEN", "github_pat_test-key_0123456789".into()),
                ("GITHUB_MODELS_BASE_URL", format!("{url}/inference")),
            ]
        },
    },
    key: "github_pat_test-key_0123456789",
    default_model: "openai/gpt-4o-mini",
    answering_model: "gpt-4o-mini-2024-07-18",
    chat_path: |_| "/inference/chat/completions".into(),
    model_in_body: true,
    stream_usage: true,
    headers: &[
        ("authorization", "Bearer github_pat_test-key_0123456789"),
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", "2022-11-28"),
    ],
    stream_accept: "application/vnd.github+json",
    style: Style::Azure,
    failure,
};

/// GitHub Models' error replies: `{"error": {"code", "message", "details"}}`.
fn failure(failure: Failure, model: &str) -> Reply {
    let (status, code, message) = match failure {
        Failure::Unauthorized => (401, "unauthorized", "Bad credentials".to_owned()),
        Failure::UnknownModel => (400, "unknown_model", format!("Unknown model: {model}")),
        Failure::RateLimited => (
            429,
            "RateLimitReached",
            "Rate limit of 15 per 60s exceeded for UserByModelByMinute. Please wait 7 seconds before retrying.".into(),
        ),
        Failure::ServerError => (500, "InternalServerError", "An internal server error occurred.".into()),
        Failure::Overloaded => (503, "ServiceUnavailable", "The service is temporarily unavailable.".into()),
    };
    Reply::json(status, json!({"error": {"code": code, "message": message, "details": message}}))
}

openai_wire_suite!(GITHUB);

/// Pointing `GITHUB_MODELS_BASE_URL` at an organization's endpoint sends chats there, so usage
/// is attributed to the organization.
#[tokio::test]
async fn organization_endpoint() {
    let request = openai_wire::chat_under(&GITHUB, &[("GITHUB_MODELS_BASE_URL", "{url}/orgs/acme/inference")]).await;
    assert_eq!(request.uri, "/orgs/acme/inference/chat/completions");
    assert_eq!(request.header("authorization"), Some("Bearer github_pat_test-key_0123456789"));
}

/// `/v1/models` lists GitHub's catalog (`GET /catalog/models` beside `/inference`), with
/// context windows and embedding models.
#[tokio::test]
async fn models_come_from_the_catalog() {
    let catalog = json!([
        {"id": "openai/gpt-4o-mini", "name": "OpenAI GPT-4o mini", "publisher": "OpenAI", "registry": "azure-openai",
         "summary": "An affordable, efficient AI solution for diverse text and image tasks.", "html_url": "https://github.com/marketplace/models/azure-openai/gpt-4o-mini",
         "version": "2024-07-18", "capabilities": ["streaming", "tool-calling"], "rate_limit_tier": "low",
         "limits": {"max_input_tokens": 131_072, "max_output_tokens": 4096},
         "supported_input_modalities": ["text", "image"], "supported_output_modalities": ["text"], "tags": ["multipurpose"]},
        {"id": "openai/text-embedding-3-small", "name": "OpenAI Text Embedding 3 (small)", "publisher": "OpenAI",
         "capabilities": [], "rate_limit_tier": "embeddings", "limits": {"max_input_tokens": 8191, "max_output_tokens": null},
         "supported_input_modalities": ["text"], "supported_output_modalities": ["embeddings"], "tags": ["rag"]},
    ]);
    let mock = MockServer::start(move |_| Reply::json(200, catalog.clone())).await;
    let server = GITHUB.vendor.server(&mock).await;
    let (status, models) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{models}");
    let listed: Vec<(&str, u64, bool)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap(),
                m["context_window"].as_u64().unwrap(),
                m["supports_embeddings"].as_bool().unwrap(),
            )
        })
        .collect();
    // `github` is never the default provider unless configured, so its models carry its prefix.
    assert_eq!(
        listed,
        [("github/openai/gpt-4o-mini", 131_072, false), ("github/openai/text-embedding-3-small", 8191, true)]
    );
    let request = &mock.requests()[0];
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/catalog/models"));
    assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
    server.stop().await;
}
