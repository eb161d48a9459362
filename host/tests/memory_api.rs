//! Memory through the API: decisions recalled after the window has moved past them, rolling
//! summaries, embeddings, workspaces, and what `GET /memory` shows. The dummy plugin's `prompt`
//! model replies with the prompt it was given, so tests can read what memory put there.

mod common;

use std::time::Duration;

use codexcontinue::config::Config;
use common::{Setup, TestServer, error_code};
use serde_json::{Value, json};

fn small_window(c: &mut Config) {
    c.memory.window_messages = 6;
    c.providers.default = Some("dummy".into());
}

/// Recall from the workspace and the session only: the prompt-echoing model's replies repeat
/// whole prompts, which recall from other chats would bring back.
fn own_chat_only(c: &mut Config) {
    small_window(c);
    c.memory.recall_across_sessions = false;
}

async fn server(configure: fn(&mut Config)) -> TestServer {
    TestServer::start(Setup { plugins: vec!["echo", "dummy"], configure, ..Setup::default() }).await
}

/// Sends `messages` as turns of one session (model `ok`), returning the session id.
async fn conversation(server: &TestServer, messages: &[&str]) -> String {
    let (status, first) = server.chat(messages[0], json!({ "model": "ok" })).await;
    assert_eq!(status, 200, "{first}");
    let session = first["session_id"].as_str().unwrap().to_string();
    for m in &messages[1..] {
        let (status, body) = server.chat(m, json!({ "session_id": session, "model": "ok" })).await;
        assert_eq!(status, 200, "{body}");
    }
    session
}

/// Polls `GET /memory/{session}` until `check` holds.
async fn memory_until(server: &TestServer, session: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (_, body) = server.get(&format!("/memory/{session}")).await;
        if check(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("memory of {session} never reached the expected state");
}

/// A decision from the first turn is recalled once a dozen turns have pushed it out of the
/// short-term window, and the reply says memory was used.
#[tokio::test]
async fn decisions_are_recalled_after_the_window_moves_on() {
    let server = server(small_window).await;
    let mut turns = vec!["We decided to use Postgres for the audit log."];
    turns.extend([
        "How is the weather?",
        "Any lunch plans?",
        "Did the build pass?",
        "Who reviews the PR?",
        "What time is standup?",
        "Is the coffee machine fixed?",
    ]);
    let session = conversation(&server, &turns).await;

    let (status, body) = server
        .chat("Which database did we pick for the audit log?", json!({ "session_id": session, "model": "prompt" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let prompt = body["reply"].as_str().unwrap();
    let (long_term, window) = prompt.split_once("\nuser:").unwrap_or((prompt, ""));
    assert!(
        long_term.contains("long-term memory") && long_term.contains("we decided to use postgres for the audit log."),
        "{prompt}"
    );
    assert!(!window.contains("we decided to use postgres"), "the decision is no longer in the window: {prompt}");
    assert!(body["memory"]["recalled"].as_u64().unwrap() >= 1, "{body}");
    server.stop().await;
}

/// Long sessions get a rolling summary, written in the background by the session's provider,
/// shown by `GET /memory` and included in later prompts; embeddings are indexed too.
#[tokio::test]
async fn summaries_and_embeddings_are_kept() {
    let server = server(small_window).await;
    let turns: Vec<String> = (0..8).map(|i| format!("turn number {i}")).collect();
    let turns: Vec<&str> = turns.iter().map(String::as_str).collect();
    let session = conversation(&server, &turns).await;
    let memory = memory_until(&server, &session, |m| {
        m["summary"]["through_message_id"].as_u64() >= Some(10) && m["index"]["embedded_messages"].as_u64() >= Some(16)
    })
    .await;
    // The dummy answers `ok` to the summarising prompt too.
    assert_eq!(memory["summary"]["text"], "ok");
    assert_eq!(memory["index"]["embedding_model"], "dummy-embed");

    let (_, body) = server.chat("anything else?", json!({ "session_id": session, "model": "prompt" })).await;
    assert!(body["reply"].as_str().unwrap().contains("summary: ok"), "{body}");
    assert_eq!(body["memory"]["summary"], true);
    server.stop().await;
}

/// Files attached to a workspace are recalled into that workspace's chats; a new upload of the
/// same file replaces the old one; deleting the workspace removes it.
#[tokio::test]
async fn workspace_files_are_recalled() {
    let server = server(own_chat_only).await;
    let notes = "# Runbook\n\nThe deploy key lives in the team vault under infra/deploy.\n\nRollbacks use the previous image tag.";
    let (status, body) =
        server.post("/workspaces/infra/files", json!({ "name": "runbook.md", "content": notes })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["name"].as_str(), body["chunks"].as_u64()), (Some("runbook.md"), Some(1)));

    let ask = json!({ "model": "prompt", "workspace_id": "infra" });
    let (_, body) = server.chat("where does the deploy key live?", ask.clone()).await;
    let prompt = body["reply"].as_str().unwrap();
    assert!(prompt.contains("file runbook.md") && prompt.contains("team vault under infra/deploy"), "{prompt}");

    let newer = "The deploy key moved to the cloud secret manager.";
    server.post("/workspaces/infra/files", json!({ "name": "runbook.md", "content": newer })).await;
    let (_, body) = server.chat("where does the deploy key live now?", ask).await;
    let prompt = body["reply"].as_str().unwrap();
    assert!(prompt.contains("cloud secret manager") && !prompt.contains("team vault"), "{prompt}");

    let (status, files) = server.get("/workspaces/infra/files").await;
    assert_eq!(status, 200);
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    let (_, sessions) = server.get("/sessions").await;
    assert!(
        sessions["sessions"].as_array().unwrap().iter().all(|s| !s["id"].as_str().unwrap().starts_with("ws:")),
        "{sessions}"
    );
    let (status, _) = server.delete("/workspaces/infra").await;
    assert_eq!(status, 204);
    let (status, body) = server.get("/workspaces/infra/files").await;
    assert_eq!((status, error_code(&body)), (404, "workspace_not_found"));
    // Other users never see it.
    server.post("/workspaces/infra/files", json!({ "name": "a.md", "content": "secret plans" })).await;
    let (status, _) = server.get("/workspaces/infra/files?user_id=mallory").await;
    assert_eq!(status, 404);
    // Binary content and malformed ids are refused, on every workspace route alike.
    let (status, body) =
        server.post("/workspaces/infra/files", json!({ "name": "x.png", "content": "PNG\u{0}\u{1}" })).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_parameter"), "{body}");
    for (status, body) in [
        server.post("/workspaces/a%20b/files", json!({ "name": "a.md", "content": "x" })).await,
        server.get("/workspaces/a%20b/files").await,
        server.delete("/workspaces/a%20b").await,
    ] {
        assert_eq!((status, error_code(&body)), (422, "invalid_parameter"), "{body}");
    }
    server.stop().await;
}

/// OpenAI clients that send their whole history get only the long-term section added.
#[tokio::test]
async fn v1_clients_with_their_own_history_get_memory_added() {
    let server = server(small_window).await;
    server
        .post("/workspaces/docs/files", json!({ "name": "style.md", "content": "Indent Rust with four spaces." }))
        .await;
    let body = json!({ "model": "dummy/prompt", "messages": [
        { "role": "system", "content": "you are helpful" },
        { "role": "user", "content": "hi" },
        { "role": "assistant", "content": "hello" },
        { "role": "user", "content": "how do I indent rust?" },
    ] });
    let r = server
        .client
        .post(server.url("/v1/chat/completions"))
        .header("x-workspace-id", "docs")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, reply) = common::response(r).await;
    assert_eq!(status, 200, "{reply}");
    let prompt = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let lines: Vec<&str> = prompt.lines().collect();
    assert_eq!(lines[0], "system: you are helpful");
    assert!(lines[1].starts_with("system: long-term memory"), "{prompt}");
    assert!(prompt.contains("indent rust with four spaces"), "{prompt}");
    assert!(prompt.ends_with("user: hi\nassistant: hello\nuser: how do i indent rust?"), "{prompt}");
    server.stop().await;
}
