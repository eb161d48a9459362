//! The `azure-openai` plugin against a mock speaking Azure OpenAI: the shared OpenAI-family
//! suite on the v1 API (the default: `/openai/v1/...`, deployment as `model`, `api-key` header),
//! plus deployment URLs under a dated api-version, deployment and version from the environment,
//! content filtering, `retry-after-ms`, and the model list.

mod common;

use common::mock::{MockServer, Reply};
use common::openai_wire::{self, Dialect, Failure, Style, completion};
use common::vendor::{self, Vendor};
use serde_json::json;

const KEY: &str = "azure-test-key-0123456789";

const AZURE: Dialect = Dialect {
    vendor: Vendor {
        id: "azure-openai",
        env: |url| vec![("AZURE_OPENAI_API_KEY", KEY.into()), ("AZURE_OPENAI_ENDPOINT", url.into())],
    },
    key: KEY,
    default_model: "gpt-4.1-mini",
    answering_model: "gpt-4.1-mini",
    chat_path: |_| "/openai/v1/chat/completions".into(),
    model_in_body: true,
    stream_usage: true,
    headers: &[("api-key", "azure-test-key-0123456789")],
    stream_accept: "text/event-stream",
    style: Style::Azure,
    failure,
};

/// Azure's error replies: `{"error": {"code", "message"}}`, codes as strings.
fn failure(failure: Failure, _model: &str) -> Reply {
    let (status, code, message) = match failure {
        Failure::Unauthorized => (
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key \
             for an active subscription and use a correct regional API endpoint for your resource.",
        ),
        Failure::UnknownModel => (
            404,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the deployment within the last 5 \
             minutes, please wait a moment and try again.",
        ),
        Failure::RateLimited => (
            429,
            "429",
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded \
             token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds.",
        ),
        Failure::ServerError => (500, "InternalServerError", "The server had an error while processing your request."),
        Failure::Overloaded => (
            503,
            "ServiceUnavailable",
            "The service is temporarily unable to process your request. Please try again later.",
        ),
    };
    Reply::json(status, json!({"error": {"code": code, "message": message}}))
}

openai_wire_suite!(AZURE);

/// By default chats go to the v1 API, `/openai/v1/chat/completions` with no api-version, naming
/// the deployment (from `AZURE_OPENAI_DEPLOYMENT`) as the model in the body.
#[tokio::test]
async fn v1_api_is_the_default_and_names_the_deployment_in_the_body() {
    let request = openai_wire::chat_under(&AZURE, &[("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-prod")]).await;
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/openai/v1/chat/completions"));
    assert_eq!(request.header("api-key"), Some(KEY));
    assert_eq!(request.json(), json!({"model": "gpt-4o-prod", "messages": [{"role": "user", "content": "hi"}]}));
}

/// A dated `OPENAI_API_VERSION` keeps the deployment-style API: `AZURE_OPENAI_DEPLOYMENT` and the
/// version shape the URL, and the body names no model.
#[tokio::test]
async fn deployment_and_version_from_the_environment() {
    let request = openai_wire::chat_under(
        &AZURE,
        &[("OPENAI_API_VERSION", "2024-06-01"), ("AZURE_OPENAI_DEPLOYMENT", "chat-prod")],
    )
    .await;
    assert_eq!(request.uri, "/openai/deployments/chat-prod/chat/completions?api-version=2024-06-01");
    assert!(request.json().get("model").is_none());
}

/// A reply cut by Azure's content filter says `content_filter`; a prompt the filter refuses
/// (400 `content_filter`) is 400 `upstream_bad_request`.
#[tokio::test]
async fn content_filter() {
    let filtered = completion(Style::Azure, "gpt-4.1-mini", "", "content_filter", (20, 0));
    let refused = json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's \
        content management policy.", "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": false, "severity": "safe"}, "violence": {"filtered": true, "severity": "medium"}}}}});
    let mock = MockServer::start(vendor::script(vec![Reply::json(200, filtered), Reply::json(400, refused)])).await;
    let server = AZURE.vendor.server(&mock).await;
    let (status, body) = AZURE.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!((status, &body["finish_reason"], &body["reply"]), (200, &json!("content_filter"), &json!("")), "{body}");
    let (status, body) = AZURE.vendor.chat(&server, "hi", json!({})).await;
    assert_eq!((status, common::error_code(&body)), (400, "upstream_bad_request"), "{body}");
    server.stop().await;
}

/// Azure's `retry-after-ms` is preferred over its rounder `retry-after`.
#[tokio::test]
async fn retry_after_ms_wins() {
    let throttled =
        failure(Failure::RateLimited, "gpt-4.1-mini").header("retry-after-ms", "2500").header("retry-after", "9");
    vendor::check_errors(&AZURE.vendor, vec![(throttled, 429, "rate_limited")], "3").await;
}

/// `/v1/models` lists the configured deployments without calling Azure, whose data-plane API
/// cannot list them.
#[tokio::test]
async fn models_are_the_configured_deployments() {
    let mock = MockServer::start(|_| Reply::json(500, json!({"error": "not expected"}))).await;
    let server = AZURE.vendor.server(&mock).await;
    let (status, models) = server.get("/v1/models").await;
    assert_eq!(status, 200, "{models}");
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4.1-mini", "text-embedding-3-small"]);
    assert!(mock.requests().is_empty());
    server.stop().await;
}
