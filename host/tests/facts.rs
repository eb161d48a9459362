//! Facts extracted by the chat's own model (`[memory] facts_from_model`), end to end: the openai
//! plugin talks to a mock speaking OpenAI's Chat Completions, which answers chats with a plain
//! reply and the background extraction request with the JSON the instructions ask for. The
//! fact then reaches a new chat's first prompt, as the vendor receives it.

mod common;

use std::time::Duration;

use common::mock::{MockServer, Recorded, Reply};
use common::openai_wire::{self, Style};
use common::{Setup, TestServer, plugin_with};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key-0123456789abcdef";

fn is_extraction(request: &Recorded) -> bool {
    request.json()["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.starts_with("You keep a memory of durable facts"))
}

fn reply(request: &Recorded) -> Reply {
    let text = match is_extraction(request) {
        true => json!({"facts": [{"subject": "staging region", "statement": "The staging region is eu-west-3"}]})
            .to_string(),
        false => "Sounds good.".to_string(),
    };
    Reply::json(200, openai_wire::completion(Style::OpenAi, "gpt-4.1-mini", &text, "stop", (9, 1)))
}

#[tokio::test]
async fn the_model_extracts_facts_that_reach_a_new_chat() {
    let mock = MockServer::start(|request| match request.uri.ends_with("/embeddings") {
        true => Reply::json(404, json!({"error": {"message": "no embeddings here", "type": "invalid_request_error"}})),
        false => reply(request),
    })
    .await;
    let setup = Setup {
        plugins: Vec::new(),
        custom: vec![plugin_with("openai", |m| m)],
        env: vec![("OPENAI_API_KEY", KEY.into()), ("OPENAI_BASE_URL", format!("{}/v1", mock.url))],
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
