//! Our requests as Cohere v2 bodies: Chat takes system, user, assistant and tool messages as
//! they are (v2 accepts a system role), `top_p` is `p`, `stop` is `stop_sequences`, tools take
//! the function shape; Embed asks for float vectors of documents.

use codexcontinue_sdk::vendor::{function_tool, request_body, role_name};
use codexcontinue_sdk::{ChatRequest, Message, ProviderError, ToolCall};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
struct Chat<'a> {
    model: &'a str,
    messages: Vec<Turn<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Turn<'a> {
    role: &'static str,
    /// Absent on an assistant turn that only calls tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// The v2 Chat body for `request`; `stream` asks for server-sent events.
pub fn chat(request: &ChatRequest, stream: bool) -> Result<Value, ProviderError> {
    let tools = request.tools.iter().map(function_tool).collect::<Result<Vec<_>, _>>()?;
    let body = Chat {
        model: &request.model,
        messages: request.messages.iter().map(turn).collect(),
        stream,
        temperature: request.temperature,
        p: request.top_p,
        max_tokens: request.max_tokens,
        stop_sequences: &request.stop,
        // v2 knows only REQUIRED and NONE; leaving it out is `auto`, and a named tool cannot
        // be forced, so the model chooses among all tools.
        tool_choice: match request.tool_choice.as_deref() {
            Some("required") if !tools.is_empty() => Some("REQUIRED"),
            Some("none") if !tools.is_empty() => Some("NONE"),
            _ => None,
        },
        tools,
    };
    request_body(&body, request.extra_json.as_deref())
}

fn turn(message: &Message) -> Turn<'_> {
    let text = message.text();
    let calls_only = !message.tool_calls.is_empty() && text.is_empty();
    Turn {
        role: role_name(message.role),
        content: (!calls_only).then_some(text),
        tool_calls: message.tool_calls.iter().map(tool_call).collect(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

fn tool_call(call: &ToolCall) -> Value {
    json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
}

/// The v2 Embed body: float vectors of `inputs` embedded as documents to search.
pub fn embed(model: &str, inputs: &[String]) -> Value {
    json!({"model": model, "texts": inputs, "input_type": "search_document", "embedding_types": ["float"]})
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::{Role, ToolSpec};

    use super::*;

    /// Roles pass through in order; options take Cohere's names.
    #[test]
    fn chat_body() {
        let mut r = ChatRequest::new(
            "command-r-plus-08-2024",
            vec![Message::system("be brief"), Message::user("hi"), Message::assistant("hello"), Message::user("bye")],
        );
        r.temperature = Some(0.3);
        r.top_p = Some(0.75);
        r.max_tokens = Some(100);
        r.stop = vec!["\n\n".into()];
        assert_eq!(
            chat(&r, true).unwrap(),
            json!({
                "model": "command-r-plus-08-2024",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
                "stream": true,
                "temperature": 0.3,
                "p": 0.75,
                "max_tokens": 100,
                "stop_sequences": ["\n\n"],
            })
        );
        r.extra_json = Some(r#"{"seed":1}"#.into());
        assert_eq!(chat(&r, false).unwrap()["seed"], 1);
    }

    /// Tools, tool calls and tool results take the v2 shapes.
    #[test]
    fn tools() {
        let mut call = Message::assistant("");
        call.tool_calls =
            vec![ToolCall { id: "c1".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }];
        let mut result = Message::new(Role::Tool, "12°C");
        result.tool_call_id = Some("c1".into());
        let mut r = ChatRequest::new("m", vec![Message::user("weather?"), call, result]);
        r.tools = vec![ToolSpec { name: "weather".into(), description: None, parameters: "{}".into() }];
        r.tool_choice = Some("required".into());
        let body = chat(&r, false).unwrap();
        assert_eq!(body["tool_choice"], "REQUIRED");
        assert_eq!(body["tools"][0]["function"]["name"], "weather");
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]})
        );
        assert_eq!(body["messages"][2], json!({"role": "tool", "content": "12°C", "tool_call_id": "c1"}));
    }

    /// Embeddings are float vectors of search documents.
    #[test]
    fn embed_body() {
        assert_eq!(
            embed("embed-english-v3.0", &["a".into()]),
            json!({"model": "embed-english-v3.0", "texts": ["a"], "input_type": "search_document", "embedding_types": ["float"]})
        );
    }
}
