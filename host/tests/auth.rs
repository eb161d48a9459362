//! Client API keys: with `CODEXCONTINUE_API_KEYS` set, every API route needs a key, the key
//! decides the user, and the open routes stay open.

mod common;

use codexcontinue::auth::ApiKeys;
use common::{Setup, TestServer, error_code, response};
use serde_json::json;

const ALICE: &str = "sk-alice-0123456789abcdef";
const BOB: &str = "sk-bob-0123456789abcdef";

async fn server() -> TestServer {
    TestServer::start(Setup {
        configure: |c| c.api_keys = ApiKeys::parse(&format!("alice:{ALICE},bob:{BOB}")).unwrap(),
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn every_api_route_needs_a_valid_key() {
    let server = server().await;
    let routes = [
        ("POST", "/chat"),
        ("GET", "/memory/abc"),
        ("DELETE", "/memory/abc"),
        ("GET", "/sessions"),
        ("GET", "/workspaces/w/files"),
        ("GET", "/status"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("POST", "/v1/embeddings"),
    ];
    for (method, path) in routes {
        let request = |auth: Option<&str>| {
            let mut r = server.client.request(method.parse().unwrap(), server.url(path)).json(&json!({}));
            if let Some(auth) = auth {
                r = r.header("authorization", auth);
            }
            r.send()
        };
        let missing = request(None).await.unwrap();
        assert_eq!(missing.headers()["www-authenticate"], "Bearer");
        let (status, body) = response(missing).await;
        assert_eq!((status, error_code(&body)), (401, "missing_api_key"), "{method} {path}");

        let (status, body) = response(request(Some("Bearer sk-wrong-0123456789abcdef")).await.unwrap()).await;
        assert_eq!((status, error_code(&body)), (401, "invalid_api_key"), "{method} {path}");
        assert!(!body.to_string().contains("sk-"), "the error echoes the key: {body}");

        // Schemes are case-insensitive; past auth, the empty body is the handler's problem.
        let (status, _) = response(request(Some(&format!("bearer {ALICE}"))).await.unwrap()).await;
        assert_ne!(status, 401, "{method} {path}");
    }
    // Open routes: the page, probes, metrics; unknown routes stay 404.
    for path in ["/", "/healthz", "/metrics"] {
        assert_eq!(server.get(path).await.0, 200, "{path}");
    }
    assert_eq!(server.get("/nope").await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn the_key_decides_the_user() {
    let server = server().await;
    let chat = |key: &'static str, body: serde_json::Value| {
        server.client.post(server.url("/chat")).bearer_auth(key).json(&body).send()
    };
    let (status, reply) = response(chat(ALICE, json!({"message": "alice's secret plan"})).await.unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    let session = reply["session_id"].as_str().unwrap().to_string();

    // Alice sees her chat, also with X-Api-Key; Bob neither sees nor deletes it.
    let get = |key: &'static str, path: String| server.client.get(server.url(&path)).header("x-api-key", key).send();
    let (status, history) = response(get(ALICE, format!("/memory/{session}")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(history["messages"][0]["content"], "alice's secret plan");
    let (_, sessions) = response(get(ALICE, "/sessions".into()).await.unwrap()).await;
    assert_eq!(sessions["user_id"], "alice");
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);

    let (status, _) = response(get(BOB, format!("/memory/{session}")).await.unwrap()).await;
    assert_eq!(status, 404);
    let (_, sessions) = response(get(BOB, "/sessions".into()).await.unwrap()).await;
    assert_eq!(sessions["user_id"], "bob");
    assert!(sessions["sessions"].as_array().unwrap().is_empty());
    let deleted = server.client.delete(server.url(&format!("/memory/{session}"))).bearer_auth(BOB).send().await;
    assert_eq!(deleted.unwrap().status(), 404);

    // Naming another user is refused, whether in the body, the query or the header; naming
    // yourself is fine.
    let (status, body) = response(chat(BOB, json!({"message": "hi", "user_id": "alice"})).await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (403, "user_mismatch"));
    let (status, body) = response(get(BOB, "/sessions?user_id=alice".into()).await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (403, "user_mismatch"));
    let r = server.client.get(server.url("/sessions")).bearer_auth(BOB).header("x-user-id", "alice").send().await;
    assert_eq!(response(r.unwrap()).await.0, 403);
    let (status, _) = response(chat(BOB, json!({"message": "hi", "user_id": "bob"})).await.unwrap()).await;
    assert_eq!(status, 200);

    // The OpenAI-compatible API: the SDK's own key header works, and `user` is only a tag.
    let r = server
        .client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(ALICE)
        .header("x-session-id", &session)
        .json(&json!({"model": "echo", "user": "end-user-42", "messages": [{"role": "user", "content": "again"}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = response(r).await;
    assert_eq!(status, 200, "{body}");
    let (_, history) = response(get(ALICE, format!("/memory/{session}")).await.unwrap()).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 4, "{history}");
    server.stop().await;
}
