//! `GET /openapi.json` describes the API the server actually serves.

mod common;

use common::{Setup, TestServer};
use serde_json::Value;

#[tokio::test]
async fn the_document_matches_the_routes() {
    let server = TestServer::start(Setup::default()).await;
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations.push((method.to_uppercase(), path.clone(), op["operationId"].as_str().unwrap().to_string()));
        }
    }
    // Every route of the API is documented, once.
    let mut documented: Vec<String> = operations.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    documented.sort();
    let expected = [
        "DELETE /memory/facts/{fact_id}",
        "DELETE /memory/{session_id}",
        "DELETE /v1/responses/{response_id}",
        "DELETE /workspaces/{workspace_id}",
        "DELETE /workspaces/{workspace_id}/files/{file_name}",
        "GET /healthz",
        "GET /memory/facts",
        "GET /memory/{session_id}",
        "GET /sessions",
        "GET /status",
        "GET /v1/models",
        "GET /v1/responses/{response_id}",
        "GET /v1/responses/{response_id}/input_items",
        "GET /workspaces/{workspace_id}/files",
        "POST /admin/plugins/reload",
        "POST /chat",
        "POST /memory/facts",
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
        "POST /v1/messages",
        "POST /v1/messages/count_tokens",
        "POST /v1/responses",
        "POST /workspaces/{workspace_id}/files",
    ];
    assert_eq!(documented, expected);
    let mut ids: Vec<&str> = operations.iter().map(|(_, _, id)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), operations.len(), "operation ids must be unique");

    // And every documented operation is served: none falls through to the 404/405 fallbacks.
    for (method, path, id) in &operations {
        let url = server.url(&path.replace("{session_id}", "s1").replace("{workspace_id}", "w1"));
        let response = server.client.request(method.parse().unwrap(), url).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(!matches!(code, "not_found" | "method_not_allowed"), "{id}: {method} {path} -> {status} {body}");
    }

    // Schemas that errors and bodies refer to exist.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["ErrorResponse", "ChatBody", "ChatReply", "History", "Sessions", "Status", "ModelList"] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    server.stop().await;
}
