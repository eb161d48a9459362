//! Memory through the API: decisions recalled after the window has moved past them, rolling
//! summaries, embeddings, workspaces, facts, and what `GET /memory` shows. The dummy plugin's
//! `prompt` model replies with the prompt it was given, so tests can read what memory put there.

mod common;

use std::time::Duration;

use codexcontinue::config::Config;
use common::mock::{MockServer, Recorded, Reply};
use common::openai_wire::{self, Style};
use common::{Setup, TestServer, error_code, plugin_with};
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
    // One file removed, by its URL-encoded name; the other stays.
    server.post("/workspaces/infra/files", json!({ "name": "on call/rota.md", "content": "Tomas is on call." })).await;
    let (status, _) = server.delete("/workspaces/infra/files/on%20call%2Frota.md").await;
    assert_eq!(status, 204);
    let (status, body) = server.delete("/workspaces/infra/files/on%20call%2Frota.md").await;
    assert_eq!((status, error_code(&body)), (404, "file_not_found"));
    let (_, files) = server.get("/workspaces/infra/files").await;
    assert_eq!(files["files"][0]["name"], "runbook.md", "{files}");
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    let (status, body) = server.delete("/workspaces/nowhere/files/a.md").await;
    assert_eq!((status, error_code(&body)), (404, "workspace_not_found"));
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

/// Workspace files over the user's quota are refused with 413 and a message saying why.
#[tokio::test]
async fn workspace_quota_is_enforced() {
    let server = server(|c| c.memory.workspace_quota_mb = 0).await;
    let (status, body) = server.post("/workspaces/infra/files", json!({ "name": "a.md", "content": "notes" })).await;
    assert_eq!((status, error_code(&body)), (413, "workspace_quota_exceeded"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("quota of 0.0 MiB"), "{body}");
    let (status, body) = server.get("/workspaces/infra/files").await;
    assert_eq!((status, error_code(&body)), (404, "workspace_not_found"), "nothing was stored");
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

/// The facts a new chat's first prompt states for `message`, as the prompt-echoing model saw
/// them (lowercased), one line each. Earlier echoed prompts recalled from other chats are not
/// facts: only the lines under the section's own heading are.
async fn stated_facts(server: &TestServer, message: &str) -> Vec<String> {
    let (status, body) = server.chat(message, json!({ "model": "prompt" })).await;
    assert_eq!(status, 200, "{body}");
    let prompt = body["reply"].as_str().unwrap();
    let Some(rest) = prompt.strip_prefix("system: long-term memory (said before the recent messages below):\nfacts")
    else {
        return Vec::new();
    };
    rest.lines().skip(1).take_while(|l| l.starts_with("- ")).map(str::to_string).collect()
}

/// Facts: "remember that …" keeps one, a newer statement about the same subject replaces it
/// (the old one stays as history, and the prompt names it as replaced), current facts reach a
/// new chat's first message, `POST` adds one, "forget …" and `DELETE` remove them for good.
#[tokio::test]
async fn facts_are_kept_replaced_recalled_and_forgotten() {
    let server = server(small_window).await;
    let session = conversation(&server, &["Remember that the audit log database is Postgres."]).await;
    let (status, body) = server.get("/memory/facts").await;
    assert_eq!(status, 200, "{body}");
    let fact = &body["facts"][0];
    assert_eq!(fact["id"], "audit-log-database", "{body}");
    assert_eq!(fact["statement"], "The audit log database is Postgres.");
    assert_eq!(
        (fact["source"]["session_id"].as_str(), fact["source"]["message_id"].as_u64()),
        (Some(&*session), Some(1))
    );
    let stated = stated_facts(&server, "Which database holds the audit log?").await;
    assert!(stated.len() == 1 && stated[0].starts_with("- the audit log database is postgres. (since "), "{stated:?}");

    conversation(&server, &["OK, please remember that the audit log database is MySQL now. Thanks!"]).await;
    let (_, body) = server.get("/memory/facts").await;
    let facts = body["facts"].as_array().unwrap();
    assert_eq!(facts.len(), 1, "{body}");
    assert_eq!(facts[0]["statement"], "The audit log database is MySQL now.");
    assert_eq!(facts[0]["history"][0]["statement"], "The audit log database is Postgres.");
    assert_eq!(facts[0]["history"][0]["valid_until"], facts[0]["valid_from"]);
    let stated = stated_facts(&server, "Which database holds the audit log?").await;
    assert_eq!(stated.len(), 1, "{stated:?}");
    assert!(stated[0].starts_with("- the audit log database is mysql now. (since "), "{stated:?}");
    assert!(stated[0].ends_with("; replaced: \u{201c}the audit log database is postgres.\u{201d})"), "{stated:?}");

    let (status, body) = server.post("/memory/facts", json!({ "statement": "my cat is named Biscuit" })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["id"].as_str(), body["statement"].as_str()), (Some("cat"), Some("My cat is named Biscuit.")));
    let stated = stated_facts(&server, "hello").await;
    assert_eq!(stated.len(), 2, "the newest facts fill free places: {stated:?}");
    assert!(stated.iter().any(|l| l.starts_with("- my cat is named biscuit.")), "{stated:?}");
    conversation(&server, &["Please forget my cat's name."]).await;
    let (_, body) = server.get("/memory/facts").await;
    assert_eq!(body["facts"].as_array().unwrap().len(), 1, "{body}");
    let stated = stated_facts(&server, "what is my cat called?").await;
    assert!(stated.len() == 1 && stated[0].contains("mysql"), "{stated:?}");

    let (status, _) = server.delete("/memory/facts/audit-log-database").await;
    assert_eq!(status, 204);
    let (status, body) = server.delete("/memory/facts/audit-log-database").await;
    assert_eq!((status, error_code(&body)), (404, "fact_not_found"));
    let (_, body) = server.get("/memory/facts").await;
    assert_eq!(body["facts"], json!([]));
    assert_eq!(stated_facts(&server, "Which database holds the audit log?").await, Vec::<String>::new());
    // Facts are the user's own, and never listed as chats.
    let (_, body) = server.post("/memory/facts", json!({ "statement": "The deploy day is Tuesday." })).await;
    assert_eq!(body["id"], "deploy-day");
    let (_, theirs) = server.get("/memory/facts?user_id=mallory").await;
    assert_eq!(theirs["facts"], json!([]));
    let (_, sessions) = server.get("/sessions").await;
    assert!(sessions["sessions"].as_array().unwrap().iter().all(|s| !s["id"].as_str().unwrap().starts_with("facts:")));
    for bad in [
        json!({ "statement": "  " }),
        json!({ "statement": "x".repeat(301) }),
        json!({ "statement": "a b", "subject": "--" }),
    ] {
        let (status, body) = server.post("/memory/facts", bad).await;
        assert_eq!((status, error_code(&body)), (422, "invalid_parameter"), "{body}");
    }
    server.stop().await;
}

/// Whether the mock vendor was asked for facts rather than a reply.
fn is_extraction(request: &Recorded) -> bool {
    request.json()["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.starts_with("You keep a memory of durable facts"))
}

/// The mock vendor: the JSON the extraction instructions ask for, or a plain reply.
fn extraction_reply(request: &Recorded) -> Reply {
    let text = match is_extraction(request) {
        true => json!({"facts": [{"subject": "staging region", "statement": "The staging region is eu-west-3"}]})
            .to_string(),
        false => "Sounds good.".to_string(),
    };
    Reply::json(200, openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", &text, "stop", (9, 1)))
}

/// Facts extracted by the chat's own model (`facts_from_model`), end to end: the openai plugin
/// talks to a mock speaking OpenAI's Chat Completions, which answers the background extraction
/// request with JSON; the fact then reaches a new chat's first prompt as the vendor receives it.
#[tokio::test]
async fn the_model_extracts_facts_that_reach_a_new_chat() {
    let mock = MockServer::start(|request| match request.uri.ends_with("/embeddings") {
        true => Reply::json(404, json!({"error": {"message": "no embeddings here", "type": "invalid_request_error"}})),
        false => extraction_reply(request),
    })
    .await;
    let setup = Setup {
        plugins: Vec::new(),
        custom: vec![plugin_with("openai", |m| m)],
        env: vec![
            ("OPENAI_API_KEY", "sk-test-key-0123456789abcdef".into()),
            ("OPENAI_BASE_URL", format!("{}/v1", mock.url)),
        ],
        configure: |c| c.memory.facts_from_model = true,
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let mut session = Value::Null;
    for message in ["We run staging in Paris now, eu-west-3.", "Can you check the latency?", "Thanks."] {
        let (status, body) = server.chat(message, json!({ "session_id": session })).await;
        assert_eq!(status, 200, "{body}");
        session = body["session_id"].clone();
    }
    let mut facts = Value::Null;
    for _ in 0..400 {
        facts = server.get("/memory/facts").await.1;
        if facts["facts"].as_array().is_some_and(|f| !f.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let fact = &facts["facts"][0];
    assert_eq!(
        (fact["id"].as_str(), fact["statement"].as_str()),
        (Some("staging-region"), Some("The staging region is eu-west-3.")),
        "{facts}"
    );
    assert_eq!(fact["source"]["session_id"], session);
    let extraction = mock.requests().into_iter().find(is_extraction).expect("the model was asked for facts");
    let asked = extraction.json()["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(asked.contains("User: We run staging in Paris now, eu-west-3."), "{asked}");

    let (status, _) = server.chat("Where is staging?", json!({})).await;
    assert_eq!(status, 200);
    let last =
        mock.requests().into_iter().rev().find(|r| r.uri.ends_with("/chat/completions") && !is_extraction(r)).unwrap();
    let system = last.json()["messages"][0]["content"].as_str().unwrap_or_default().to_string();
    assert!(system.contains("- The staging region is eu-west-3. (since "), "the vendor saw: {system}");
    server.stop().await;
}
